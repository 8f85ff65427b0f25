"""What happens to the raws once their blend is verified: kept (the default), deleted, or moved to an archive.

One rule for the capture daemon (per stack folder, recorded in its manifest) and the hot folder (per planned
stack): only the frames the blend read or rejected are released, with the stack's spares, never a file it left
out, and nothing at all before the blend's output has been read back and compared.

Spares (`spares/`) are a continuous burst's shots past the frames wanted: more shots of the same negative, of
no more use once it is blended than its frames, so they go where the frames go (an archive keeps them in a
`spares/` of their own). The stack's `set-aside/` is kept whatever the policy: those are camera files that are
not this negative's (a shot left in the body's buffer, a press on its own button), so no blend speaks for them,
and the operator decides.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from medianscan.atomic import atomic_path, fsync_dir
from medianscan.formats import kind_by_name
from medianscan.library.contents import SPARES, candidates, is_kept_apart
from medianscan.records import BlendRecord
from medianscan.vocabulary import Retention
from medianscan.wording import counted


def blended_raws(record: BlendRecord) -> list[Path]:
    """The raws a verified blend releases, as they are on disk now: those it read, those it rejected, and the
    stack's spares of the kind it read (a spare raw's companion JPEG stays, as the frames' JPEGs do)."""
    raws = [*record.frames, *(d.path for d in record.dropped), *_spares(record)]
    return [p for p in dict.fromkeys(raws) if p.is_file()]


def _spares(record: BlendRecord) -> list[Path]:
    folder = record.stack / SPARES
    kinds = {kind_by_name(p.name) for p in record.frames} - {None}
    return [p for p in candidates(folder) if kind_by_name(p.name) in kinds] if folder.is_dir() else []


def release(raws: Sequence[Path], policy: Retention, archive_to: Path | None) -> str:
    """Apply `policy` to `raws` (one stack's, its spares among them) and say what was done; `archive_to` is the
    folder they move to (the spares to its `spares/`). A spares folder left empty goes too."""
    if policy == "keep" or not raws:
        return "kept" if policy == "keep" else "nothing to release"
    spares = [raw for raw in raws if is_kept_apart(raw.parent)]
    done = f"{len(raws) - len(spares)} raws" + (f" and {counted(len(spares), 'spare')}" if spares else "")
    if policy == "delete":
        for raw in raws:
            raw.unlink(missing_ok=True)
        _emptied({raw.parent for raw in raws})
        return f"deleted {done}"
    if archive_to is None:
        raise ValueError("retention 'archive' needs an archive folder")
    for raw in raws:
        target = archive_to / SPARES if raw in spares else archive_to
        target.mkdir(parents=True, exist_ok=True)
        move_file(raw, target / raw.name)
    _emptied({raw.parent for raw in raws})
    return f"moved {done} to {archive_to}"


def _emptied(folders: set[Path]) -> None:
    """Make the removals in `folders` durable; a spares folder they left empty is removed."""
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        gone = is_kept_apart(folder) and not any(folder.iterdir())
        if gone:
            folder.rmdir()
        fsync_dir(folder.parent if gone else folder)


def move_file(src: Path, dst: Path) -> None:
    """Move a file without a window where it exists nowhere: rename, or copy + fsync + rename, then unlink."""
    try:
        src.replace(dst)
    except OSError:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        src.unlink()
    fsync_dir(dst.parent)
