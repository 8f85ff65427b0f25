"""What happens to the raws once their blend is verified: kept (the default), deleted, or moved to an archive.

One rule for the capture daemon (per stack folder, recorded in its manifest) and the hot folder (per planned
stack): only the frames the blend read or rejected are released, never a file it left out, and nothing at all
before the blend's output has been read back and compared.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from medianscan.atomic import atomic_path, fsync_dir
from medianscan.records import BlendRecord
from medianscan.vocabulary import Retention


def blended_raws(record: BlendRecord) -> list[Path]:
    """The raws the blend read and those it rejected, as they are on disk now."""
    raws = [*record.frames, *(d.path for d in record.dropped)]
    return [p for p in dict.fromkeys(raws) if p.is_file()]


def release(raws: Sequence[Path], policy: Retention, archive_to: Path | None) -> str:
    """Apply `policy` to `raws` (one folder's) and say what was done; `archive_to` is the folder they move to."""
    if policy == "keep" or not raws:
        return "kept" if policy == "keep" else "nothing to release"
    folder = raws[0].parent
    if policy == "delete":
        for raw in raws:
            raw.unlink(missing_ok=True)
        fsync_dir(folder)
        return f"deleted {len(raws)} raws"
    if archive_to is None:
        raise ValueError("retention 'archive' needs an archive folder")
    archive_to.mkdir(parents=True, exist_ok=True)
    for raw in raws:
        move_file(raw, archive_to / raw.name)
    fsync_dir(folder)
    return f"moved {len(raws)} raws to {archive_to}"


def move_file(src: Path, dst: Path) -> None:
    """Move a file without a window where it exists nowhere: rename, or copy + fsync + rename, then unlink."""
    try:
        src.replace(dst)
    except OSError:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        src.unlink()
    fsync_dir(dst.parent)
