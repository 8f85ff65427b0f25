"""Shared fixtures: the real sample raw, found wherever this machine keeps it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_NAME = "IMG_5952.CR2"


def find_sample_raw() -> Path | None:
    """The Canon EOS 30D CR2: $MEDIANSCAN_SAMPLE_RAW, Debian's rawtran-doc, or the copy scripts/system-packages.sh
    takes from that package where the image keeps no /usr/share/doc. Never a folder beside the clone: a user's
    clone has nothing beside it, so the suite must not lean on one."""
    candidates = [
        os.environ.get("MEDIANSCAN_SAMPLE_RAW"),
        Path("/usr/share/doc/rawtran") / SAMPLE_NAME,
        ROOT / ".cache" / "samples" / SAMPLE_NAME,
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def sample_raw() -> Path:
    """Path of the real CR2; a missing sample is a failure, not a skip (CI must have it)."""
    path = find_sample_raw()
    if path is None:
        pytest.fail(
            f"sample raw {SAMPLE_NAME} not found: run make test (it installs Debian's rawtran-doc, which carries "
            "it) or set MEDIANSCAN_SAMPLE_RAW"
        )
    return path


_WARMERS: list[subprocess.Popen[bytes]] = []
_RUNTIME: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """A runtime folder of this test process's own ($XDG_RUNTIME_DIR): a daemon or watcher a test starts without a
    configured socket listens in it, so two test processes side by side (pytest -n 2, the Makefile's) or a
    developer's own daemon never meet at the user's default socket ("another medianscan is already listening")."""
    _RUNTIME.append(tempfile.mkdtemp(prefix="ms-run-"))
    os.environ["XDG_RUNTIME_DIR"] = _RUNTIME[-1]


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _RUNTIME:
        shutil.rmtree(folder, ignore_errors=True)


# The files that take longest (the editors' renders, the daemon's soak, the watcher's runs, the roll runs), run
# first: under `make test` (pytest -n 2 --dist loadfile) the two processes then end together, instead of one
# starting a long file when the other has nothing left. Only the order changes; every file runs, each in one process.
LONGEST_FIRST = ("test_renders.py", "test_daemon.py", "test_watch.py", "test_dng.py", "test_rig.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file's tests in their order


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the slowest kernels on the idle core meanwhile (tests/warm_kernels.py says why): once a run, from
    the process that runs the tests or, with pytest -n, from the one that hands them out (workers do not)."""
    if hasattr(session.config, "workerinput"):
        return
    warmer = subprocess.Popen(
        [sys.executable, "-m", "tests.warm_kernels"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.nice(5),  # noqa: PLW1509 - a nice level, set before exec
    )
    _WARMERS.append(warmer)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for warmer in _WARMERS:
        if warmer.poll() is None:
            warmer.terminate()
        warmer.wait(10)
