"""Compile, on the core a test run leaves idle, the kernels that take longest the first time, before the tests
need them.

A cold run (a new machine, an empty kernel cache) spends minutes compiling (sigma-clip about 10 s for one N, the
others a few seconds), one kernel after another on one core while the other is mostly idle. The conftest starts this in
the background at the start of the session; a test that gets to a kernel first simply compiles it itself, and
with a warm cache this costs a load of each (a second). Nothing depends on it: it only moves work earlier.
"""

from __future__ import annotations

import numpy as np

from medianscan.blend.kernels.combine import warm_up

# (frames, method): the slowest first, as test_combine and the blends use them
SLOW = [
    (15, "sigma-clip"),
    (3, "sigma-clip"),
    (2, "sigma-clip"),
    (8, "sigma-clip"),
    (4, "sigma-clip"),
    (5, "sigma-clip"),
    (9, "sigma-clip"),
    (33, "median"),
    (31, "median"),
    (15, "winsorized"),
]


def main() -> None:
    for n, method in SLOW:
        warm_up(n, np.uint16, (method,))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
