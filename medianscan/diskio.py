"""Big pixel blocks straight to and from the disk (O_DIRECT), past the page cache.

A blended TIFF is 144 MB at 24 MP. Written through the page cache it costs a copy into as many fresh pages
(which a busy machine, or a VM that hands freed memory back to its host, faults in slowly) and then the same
bytes again at fsync; read back through the page cache, it only proves what the cache holds. Direct I/O copies
the pixels through small aligned buffers to the disk and reads them back from the disk itself.

The writer is a short pipeline: while the caller produces the next bytes (a blend, band by band), threads hash
what was given, write it, and read it back from the disk and hash that, so the check costs little more than the
write and the write little more than producing the bytes.

Direct I/O wants the file offset, the length and the memory aligned to the device's block: the writer lays the
pixel block out at an aligned offset, page-aligned buffers carry the bytes, and the last partial block goes
through the page cache as usual. Filesystems without O_DIRECT (tmpfs on older kernels, some network mounts) get
the ordinary path, and the read-back is then from the page cache.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

ALIGN = 4096  # a multiple of every common logical block size
_CHUNK = 8 << 20
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_buffers = threading.local()


@dataclass(frozen=True)
class Written:
    """What `write_stream` wrote: where, how many bytes, their sha256 as given and as then read from the disk."""

    offset: int
    size: int
    sha256: str
    stored_sha256: str


def _buffer(slot: int = 0) -> mmap.mmap:
    """This thread's page-aligned transfer buffer number `slot` (anonymous mmap memory is page-aligned), kept for
    the next call: fresh memory is slow to touch."""
    kept: dict[int, mmap.mmap] = _buffers.__dict__.setdefault("kept", {})
    if slot not in kept:
        kept[slot] = mmap.mmap(-1, _CHUNK)
    return kept[slot]


@contextlib.contextmanager
def _direct_fd(path: Path, flags: int) -> Iterator[int | None]:
    """A file descriptor opened with O_DIRECT, or None where the filesystem refuses it."""
    if not _O_DIRECT:
        yield None
        return
    try:
        fd = os.open(path, flags | _O_DIRECT)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def _bytes(chunk: npt.NDArray[np.generic]) -> memoryview:
    return memoryview(np.ascontiguousarray(chunk).reshape(-1).view(np.uint8).data)


def write_stream(path: Path, offset: int, chunks: Iterable[npt.NDArray[np.generic]]) -> Written:
    """Write the chunks' bytes (C order, one after another) into the existing file `path` from `offset`, where
    its writer left room, and read them back. The caller fsyncs the file afterwards.

    Chunks can be produced as they are written (a blend band by band), so the whole never has to be in memory;
    each chunk may be reused by its producer once the next one is asked for.
    """
    with (
        _direct_fd(path, os.O_RDWR) if offset % ALIGN == 0 else contextlib.nullcontext() as fd,
        path.open("r+b") as fh,
    ):
        if fd is None:
            digest = hashlib.sha256()
            position = offset
            for chunk in chunks:
                data = _bytes(chunk)
                digest.update(data)
                fh.seek(position)
                fh.write(data)
                position += len(data)
            fh.flush()
            return Written(offset, position - offset, digest.hexdigest(), sha256_at(path, offset, position - offset))
        return _DirectWriter(fd, fh, offset).run(chunks)


class _DirectWriter:
    """Aligned buffers take turns: while the caller fills one, the one before is hashed (a thread), written (a
    thread) and then read back from the disk and hashed (a thread). Each thread works in order, so both hashes
    see the bytes in file order."""

    SLOTS = 3

    def __init__(self, fd: int, fh: IO[bytes], offset: int) -> None:
        self.fd, self.fh, self.start, self.position = fd, fh, offset, offset
        self.given, self.stored = hashlib.sha256(), hashlib.sha256()
        self.busy: list[list[Future[None]]] = [[] for _ in range(self.SLOTS)]
        self.checks: list[Future[None]] = []

    def run(self, chunks: Iterable[npt.NDArray[np.generic]]) -> Written:
        # the writer is shut down first (it hands finished writes to the checker), the hasher last
        with (
            ThreadPoolExecutor(1) as self.hasher,
            ThreadPoolExecutor(1) as self.checker,
            ThreadPoolExecutor(1) as self.writer,
        ):
            slot, filled = 0, 0
            buffer = _buffer(slot)
            for chunk in chunks:
                data, used = _bytes(chunk), 0
                while used < len(data):
                    take = min(_CHUNK - filled, len(data) - used)
                    buffer[filled : filled + take] = data[used : used + take]
                    filled, used = filled + take, used + take
                    if filled == _CHUNK:
                        self._flush(slot, _CHUNK)
                        slot, filled = (slot + 1) % self.SLOTS, 0
                        self._wait(slot)
                        buffer = _buffer(slot)
            whole = filled - filled % ALIGN
            if whole:
                self._flush(slot, whole)
            if filled > whole:  # the last partial block goes through the page cache
                tail = bytes(buffer[whole:filled])
                self.busy[slot].append(self.hasher.submit(self.given.update, tail))
                self.busy[slot].append(self.writer.submit(self._write_tail, tail, self.position))
                self.position += len(tail)
        for pending in [*(f for futures in self.busy for f in futures), *self.checks]:
            pending.result()  # a failed write or read-back raises here
        return Written(self.start, self.position - self.start, self.given.hexdigest(), self.stored.hexdigest())

    def _flush(self, slot: int, size: int) -> None:
        view = memoryview(_buffer(slot))[:size]
        self.busy[slot] = [
            self.hasher.submit(self.given.update, view),
            self.writer.submit(self._write, view, self.position),
        ]
        self.position += size

    def _wait(self, slot: int) -> None:
        """The buffer in `slot` is free again once its bytes are hashed and written."""
        for pending in self.busy[slot]:
            pending.result()
        self.busy[slot] = []

    def _write(self, view: memoryview, position: int) -> None:
        written = os.pwrite(self.fd, view, position)
        if written != len(view):
            raise OSError(errno.EIO, f"short direct write ({written} of {len(view)} bytes)")
        self.checks.append(self.checker.submit(self._check, position, len(view)))

    def _write_tail(self, tail: bytes, position: int) -> None:
        self.fh.seek(position)
        self.fh.write(tail)
        self.fh.flush()
        self.checks.append(self.checker.submit(self._check, position, len(tail)))

    def _check(self, position: int, size: int) -> None:
        """Read `size` bytes at `position` back from the disk (whole blocks, into this thread's buffer) and hash
        them."""
        buffer = _buffer()
        want = size + (-size) % ALIGN
        got = os.preadv(self.fd, [memoryview(buffer)[:want]], position)
        if got < size:
            raise OSError(errno.EIO, f"read back {got} of {size} bytes")
        self.stored.update(memoryview(buffer)[:size])


def sha256_at(path: Path, offset: int, count: int) -> str:
    """sha256 of `count` bytes of `path` from `offset`, read from the disk itself where the filesystem allows."""
    digest = hashlib.sha256()
    start = offset - offset % ALIGN
    with _direct_fd(path, os.O_RDONLY) as fd:
        if fd is not None:
            buffer = _buffer()
            view = memoryview(buffer)
            position, skip, left = start, offset - start, count
            while left > 0:
                got = os.preadv(fd, [buffer], position)
                if got <= skip:
                    raise OSError(errno.EIO, f"{path}: ends {left} bytes early")
                take = min(got - skip, left)
                digest.update(view[skip : skip + take])
                position, skip, left = position + got, 0, left - take
            view.release()
            return digest.hexdigest()
    with path.open("rb") as fh:
        fh.seek(offset)
        left = count
        while left > 0:
            chunk = fh.read(min(_CHUNK, left))
            if not chunk:
                raise OSError(errno.EIO, f"{path}: ends {left} bytes early")
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()
