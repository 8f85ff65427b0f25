"""The stitch's second core: LibRaw's decode and NumPy's and SciPy's array work release the GIL, so a stitch runs
its independent pieces (the next tile's decode, two overlaps' registration, two parts of an output band) on
threads of one process, a bounded number ahead so that memory stays what one piece at a time would take, times
`WORKERS`; and its heap (`settle`), which those threads share.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from medianscan import heap

In = TypeVar("In")
Out = TypeVar("Out")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


WORKERS = max(1, min(2, _cores()))  # beyond two, the bands' memory grows and the disk is the limit


def settle() -> None:
    """The stitch's heap, set at its start (a blend before it in the process sets its own):
    - blocks of 32 MiB and more mapped on their own: the most glibc's sliding threshold can reach on 64 bits,
      so the bands and planes come from the heap and are reused. The blend fixes it at 1 MiB, which maps every
      band on its own: a stitch after a blend in a worker took 40 % longer (nine 24 MP tiles 7.1-7.8 -> 10.2-10.4
      s, page faults), and as quick as a fresh process (7.6 s, 250 MB) with this;
    - the threads on arenas already made (`heap.one_arena`): with a new arena a thread, each kept its own freed
      bands (nine 24 MP tiles peaked at 340-360 MB where one thread took 250); on one, what is freed is reused by
      the next part (244 MB, the same speed). In a worker whose blends' threads left arenas free, the stitch's
      threads take those, one each, and the peak was the same (244-245 MB)."""
    heap.map_from(32 << 20)
    heap.one_arena()


def pool(workers: int | None = None) -> ThreadPoolExecutor:
    """Threads for the stitch (`workers`, else WORKERS as it is then), on the stitch's heap (`settle`, before the
    first one starts)."""
    settle()
    return ThreadPoolExecutor(max_workers=workers or WORKERS, thread_name_prefix="medianscan-stitch")


def in_order(work: Callable[[In], Out], items: Iterable[In], *, ahead: int = WORKERS) -> Generator[Out]:
    """`work` of each item, in the items' order, at most `ahead` running or done and not yet taken: a lazy
    `map` on `WORKERS` threads. An exception is raised where its item's result would have been. A generator: a
    consumer that stops early closes it (contextlib.closing) to cancel what has not started."""
    if ahead <= 1 or WORKERS == 1:
        yield from map(work, items)
        return
    with pool() as workers:
        pending: deque[Future[Out]] = deque()
        try:
            for item in items:
                if len(pending) >= ahead:
                    yield pending.popleft().result()
                pending.append(workers.submit(work, item))
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # an error or a consumer that stopped early: nothing more starts
                future.cancel()
