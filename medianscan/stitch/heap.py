"""The stitch's dealings with glibc's heap: its arrays are tens of megabytes, made and freed by the band, and
what glibc keeps of them after a free is memory the process holds.

- **One arena** (`settle`). glibc gives each thread that meets a busy heap an arena of its own, and a freed block
  goes back to its arena, not to the system: with the stitch's threads (`threads`) each kept its own freed bands
  (nine 24 MP tiles peaked at 340-360 MB where one thread took 250). With one arena for the process what is
  freed is reused by the next band (263-270 MB, the same speed: a few large arrays a band seldom wait on its lock).
- **A fixed mmap threshold of 32 MiB** (`settle`): what glibc's own sliding threshold comes to once a stitch has
  freed a tile's buffer, set at the start of every stitch. A blend in the same worker process fixes it at 1 MiB
  (`blend.reading.shelf`), which maps every band on its own: the stitch after it took 40 % longer (nine 24 MP
  tiles 7.1-7.8 -> 10.2-10.4 s, all of it page faults), where 32 MiB is as quick and as small as a fresh
  process (7.6-7.7 s, 250 MB). Each blend sets its own again.
- **Freed pages given back** (`give_back_freed`) before a tile's decode, when they come to TRIM_FROM or more.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools

TRIM_FROM = 32 << 20  # freed heap bytes worth giving back before a decode
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt's parameter numbers (malloc.h)
_MMAP_FROM = 32 << 20  # glibc's largest sliding threshold on 64 bits (DEFAULT_MMAP_THRESHOLD_MAX)


def settle() -> None:
    """The stitch's heap: one arena for all its threads (set before the first starts) and blocks of 32 MiB and
    more mapped on their own (glibc only; elsewhere nothing)."""
    libc = _libc()
    if libc is None:
        return
    with contextlib.suppress(AttributeError):
        libc.mallopt(_M_ARENA_MAX, 1)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM)


def give_back_freed(least: int = TRIM_FROM) -> None:
    """Return the heap's freed pages to the system (glibc's malloc_trim), when they come to `least` or more. Freed
    bands and cell planes stay in the heap, 60-70 MB at 24 MP that the next tile's decode would add to; below
    `least` the pages stay: touching them again would cost more."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    info = getattr(libc, "mallinfo2", None)
    if trim is None or (info is not None and info().fordblks < least):
        return
    trim(0)


class _MallInfo2(ctypes.Structure):
    _fields_ = [  # what glibc fills, in its order
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if getattr(libc, "mallinfo2", None) is not None:
        libc.mallinfo2.restype = _MallInfo2
    return libc
