# Two commands do all set-up on a fresh machine:
#   make demo   -> installs what is missing, builds the blend kernels, then runs the daemon on the simulated camera
#                  (make demo DEMO_ARGS=--console leaves the operator console up at http://127.0.0.1:8631/)
#   make test   -> installs what is missing, builds the blend kernels, then ruff, mypy and the whole test suite
# `make test-fast` runs the tests not marked slow (pytest -m "not slow": no real-time roll runs, watches, daemons
#                  as processes or fuzzing), a couple of minutes on two cores; CI runs `make test`, every test.
# `make bench` runs the benchmarks (it also installs the peer tools they compare against).
# `make bench-compare BASE=<revision>` times the blend benches' headline rows for this checkout and BASE side by side
#                  in one run, interleaved, and prints the ratios (BASE installed under .bench/; default HEAD, i.e.
#                  what the uncommitted changes cost). Run it before closing anything that touches blend/, outputs/
#                  or the burst. COMPARE_ARGS passes options (--ours REV, --rows, --repeats; python -m bench --against -h).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench bench-compare system-packages screenshot kernels

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

system-packages:
	bash scripts/system-packages.sh test

# The blend kernels for stacks of 3 to 16 frames, compiled once on every core (no blend waits for a compile).
kernels: $(STAMP)
	$(BIN)/medianscan kernels

demo: $(STAMP) kernels
	$(BIN)/medianscan demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two test processes (pytest-xdist), a file each at a time: the suite waits on daemons, rigs and bodies in real
# time, so two keep both cores busy; a file stays in one process (its module fixtures are made once).
test: $(STAMP) system-packages lint kernels
	$(BIN)/pytest -n 2 --dist loadfile

test-fast: $(STAMP) system-packages kernels
	$(BIN)/pytest -m "not slow"

bench: $(STAMP)
	bash scripts/system-packages.sh bench
	$(BIN)/python -m bench

BASE ?= HEAD
bench-compare: $(STAMP)
	$(BIN)/python -m bench --against $(BASE) $(COMPARE_ARGS)

# The documents' pictures: the console on the simulated camera (its browser test, in headless Chromium), the
# flat-field before/after, the DNG beside its source, and a roll as the editors develop it with their sidecars.
screenshot: $(STAMP) system-packages
	MEDIANSCAN_SCREENSHOT=docs/console.png $(BIN)/pytest -q tests/test_console_browser.py
	$(BIN)/python -m scripts.flat_picture
	$(BIN)/python -m scripts.editor_pair
	$(BIN)/python -m scripts.editors_strip
	$(BIN)/python -m scripts.stitch_picture
	$(BIN)/python -m scripts.house_map
