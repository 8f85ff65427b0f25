"""glibc's heap: the one owner of its calls, which are nothing on another C library. Before glibc 2.33 (no
mallinfo2) `give_back_freed` trims whatever the amount.

Frames and tiles are tens of megabytes, made and freed by the band or by the frame, and what glibc keeps of them
after a free is memory the process holds. The blend and the stitch share a worker process and want different
mmap thresholds of it, so each sets its own at its start (`map_from`; the blend's in `blend.reading.shelf`, the
stitch's in `stitch.threads.settle`). The stitch's limit of one arena (`one_arena`) lasts for the process: glibc
fixes its arena limit the first time a thread consults it, and the blends after a stitch in that worker run their
threads on the arenas already made: measured on nine CR2s as `MALLOC_ARENA_MAX=1` against glibc's default, a blend
took 2.1-2.4 s and 396-398 MB where it took 2.2-2.6 s and 394-400 MB (four runs each): the blend's large buffers
are mapped on their own, and its threads' small ones are few.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools

_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt's parameter numbers (malloc.h)
TRIM_FROM = 32 << 20  # freed heap bytes worth giving back


def map_from(size: int) -> None:
    """Blocks of `size` bytes or more are mapped on their own, and unmapped when freed (a fixed threshold: glibc
    no longer slides it)."""
    _mallopt(_M_MMAP_THRESHOLD, size)


def one_arena() -> None:
    """Threads that start from now on allocate from arenas already made (the main one, or one a thread that ended
    left free), not from a new arena each."""
    _mallopt(_M_ARENA_MAX, 1)


def give_back_freed(least: int = TRIM_FROM) -> None:
    """Return the heap's freed pages to the system (malloc_trim, every arena), when they come to `least` bytes or
    more: below that, touching them again would cost more than holding them. The stitch calls it before a tile's
    decode and a pair's windows (freed bands and cell planes, 60-70 MB at 24 MP, that they would add to)."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    info = getattr(libc, "mallinfo2", None)
    if trim is None or (info is not None and info().fordblks < least):
        return
    trim(0)


def _mallopt(parameter: int, value: int) -> None:
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.mallopt(parameter, value)


class _MallInfo2(ctypes.Structure):
    _fields_ = [  # what glibc fills, in its order
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # TypeError: Windows has no process handle for None
        return None
    if getattr(libc, "mallinfo2", None) is not None:
        libc.mallinfo2.restype = _MallInfo2
    return libc
