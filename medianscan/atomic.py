"""Files appear whole or not at all: written to a temp name beside the target, fsynced, renamed.

A crash or `kill -9` at any moment leaves either the old file, the new file, or a `.*.part` temp that a later
scan removes; never a half-written file under a final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".part"


def owner_suffix() -> str:
    """How every temp of ours ends, a file or a folder: `.<pid>.part`, this process's, so that a scan after a
    crash (`remove_dead_temps`) tells a dead writer's leftovers from a live one's."""
    return f".{os.getpid()}{TEMP_SUFFIX}"


def temp_path(target: Path) -> Path:
    """The hidden temp name used while `target` is being written (same folder, so rename is atomic)."""
    return target.with_name(f".{target.name}{owner_suffix()}")


def is_temp(path: Path) -> bool:
    """True for a temp file left by an interrupted atomic write."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def _writer_alive(temp: Path) -> bool:
    """True if the process that owns a `.<name>.<pid>.part` temp still runs (another `medianscan blend`, a
    stitch's folder of tiles)."""
    try:
        pid = int(temp.name[: -len(".part")].rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return False
    return pid != os.getpid() and process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs. A zombie (killed, not reaped yet: its parent died with it) writes nothing,
    though `kill(pid, 0)` still succeeds on it; /proc tells them apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: the kernel's answer, which cannot tell a zombie
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # "pid (comm) S ...": Z is a zombie, X a dead process
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def remove_dead_temps(folder: Path, named: tuple[str, ...] = (".",)) -> list[Path]:
    """Remove the temps in `folder` whose writer is dead (a crash mid-write), files and folders; returns them.
    `named`: only those whose name starts so (a folder that is not the library's, where others write too)."""
    removed = []
    for path in folder.iterdir():
        if is_temp(path) and path.name.startswith(named) and not _writer_alive(path):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def fsync_dir(folder: Path) -> None:
    """Make a rename or create in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path to write `target` through; on success fsync it and rename it into place.

    For writers that want a file name (tifffile, libgphoto2's `file.save`). On error the temp is removed.
    """
    target = Path(target)
    tmp = temp_path(target)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(target: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file for writing and rename it to `target` once it is complete and on disk."""
    with atomic_path(target) as tmp, open(tmp, mode) as fh:  # noqa: PTH123 - mode is the caller's
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_bytes(target: Path, data: bytes) -> None:
    """Atomically replace `target` with `data`."""
    with atomic_open(target, "wb") as fh:
        fh.write(data)


def write_json(target: Path, obj: object) -> None:
    """Atomically replace `target` with `obj` as indented JSON."""
    write_bytes(target, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def room_problem(target: Path, need_bytes: int, what: str) -> str | None:
    """Before the work that makes `target`: why its folder cannot take it (missing, not writable, too little free
    space for `need_bytes`), as one sentence naming it, or None. The probe is a real file created and removed:
    permission bits alone say nothing to root or on a read-only mount."""
    folder = target.parent
    if not folder.is_dir():
        return f"{target}: the output folder {folder} does not exist"
    probe = folder / f".medianscan-probe{owner_suffix()}"
    try:
        probe.touch(exist_ok=False)
        probe.unlink()
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return f"{target}: cannot write into {folder} ({exc.strerror or exc})"
    if free < need_bytes:
        return (
            f"{target}: too little free space in {folder}: {free / 2**20:.0f} MiB free, "
            f"{need_bytes / 2**20:.0f} MiB needed for {what}"
        )
    return None
