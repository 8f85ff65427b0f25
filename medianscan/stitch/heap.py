"""The stitch's dealings with glibc's heap: its arrays are tens of megabytes, made and freed by the band, and
what glibc keeps of them after a free is memory the process holds.

glibc gives each thread that meets a busy heap an arena of its own, and a freed block goes back to its arena, not
to the system: with the stitch's threads (`threads`) each kept its own 60-100 MB of freed bands (nine 24 MP
tiles peaked at 340-360 MB where one thread took 250). One arena for the whole process keeps what is freed in
one place for the next band to reuse (263-270 MB peak, the same speed: the stitch's threads make a few large
arrays a band, so they seldom wait on the arena's lock). Mapping every large array on its own (a fixed mmap
threshold, as the blend's frame shelf does) held the peak at 250 MB but cost 35-40 % more time in page faults.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools

_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


@functools.cache
def one_arena() -> None:
    """Every thread from now on allocates from the main arena (glibc only; elsewhere nothing)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).mallopt(_M_ARENA_MAX, 1)
