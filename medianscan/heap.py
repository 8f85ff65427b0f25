"""glibc's heap, the one owner of its calls (elsewhere, or with an older glibc, each is nothing).

Frames and tiles are tens of megabytes, made and freed by the band or by the frame, and what glibc keeps of them
after a free is memory the process holds. Two jobs share a worker process and want different things of it, so
each sets its own at its start (`map_from`): the blend maps every buffer of 1 MiB or more on its own, so that a
long-lived worker gives each frame back (`blend.reading.shelf`); the stitch maps from 32 MiB, what glibc's own
sliding threshold comes to once a tile's buffer is freed, since mapping each band on its own cost it 40 % more time
in page faults (`stitch.threads.settle`).
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
    except OSError:
        return None
    if getattr(libc, "mallinfo2", None) is not None:
        libc.mallinfo2.restype = _MallInfo2
    return libc
