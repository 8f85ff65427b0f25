"""`python -m bench` runs every bench/bench_*.py module's `main()` with its defaults, one after another.

`python -m bench NAME [ARGS...]` runs only bench_NAME with ARGS (e.g. `python -m bench combine --quick`).
`python -m bench --against REV [ARGS...]` times the blend benches' headline rows for this checkout and REV side by
side in one run (bench/compare.py).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path


def run(name: str, args: list[str]) -> int:
    module = importlib.import_module(f"bench.bench_{name}")
    main = module.main
    saved = sys.argv
    sys.argv = [f"bench_{name}", *args]
    try:
        result = main(args) if inspect.signature(main).parameters else main()
    finally:
        sys.argv = saved
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--against":
        from bench import compare

        return compare.main(argv[1:])
    if argv and not argv[0].startswith("-"):
        return run(argv[0], argv[1:])
    if argv:
        print(
            "usage: python -m bench [NAME [ARGS...] | --against REV [ARGS...]]  (options go to one named benchmark)",
            file=sys.stderr,
        )
        return 2
    names = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    status = 0
    for name in names:
        print(f"== bench_{name} ==", flush=True)
        status |= run(name, [])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
