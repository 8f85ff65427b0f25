"""The editors' sidecars beside each blend, so that every negative of a roll opens as a positive, inverted alike:
`<blend>.dng.xmp` for darktable (negadoctor), `<blend>.dng.pp3` for RawTherapee (Film Negative), both from the
roll's film base (medianscan.library.film_base). Which editors is the setting `outputs.editors`.

A sidecar the user has edited is never overwritten: ours carry a marker with the sha256 of what we wrote, and a
file whose marker is gone or no longer matches (the editor saved over it, the user typed in it) is left as it is.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rawpy

from medianscan.atomic import write_bytes
from medianscan.errors import MedianscanError
from medianscan.exiv2_once import Exiv2Error, exiv2, read_image
from medianscan.library import film_base, roll_record
from medianscan.library.contents import is_output_name
from medianscan.library.film_base import FilmBase
from medianscan.outputs.editors import darktable, rawtherapee

log = logging.getLogger(__name__)

EDITORS = ("darktable", "rawtherapee")
SUFFIXES = {"darktable": ".xmp", "rawtherapee": ".pp3"}
_MARKER = re.compile(r"medianscan sidecar sha256:([0-9a-f]{64})")
_POSITIVE_FILM = ("slide", "positive", "reversal")


@dataclass(frozen=True)
class Sidecar:
    """One editor's sidecar beside a blend: written, or kept because the user has edited it."""

    editor: str
    path: Path
    written: bool


def sidecar_path(output: Path, editor: str) -> Path:
    """Where `editor` looks for `output`'s sidecar: the full file name plus its suffix (`x.dng.xmp`)."""
    return output.with_name(output.name + SUFFIXES[editor])


def _marked(editor: str, body: str) -> str:
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    if editor == "rawtherapee":  # a comment line GLib's key files skip, first
        return f"# medianscan sidecar sha256:{digest}\n{body}"
    return f"{body}\n<!-- medianscan sidecar sha256:{digest} -->\n"  # after the packet's end, which Exiv2 reads


def is_ours(path: Path) -> bool:
    """Whether `path` is a sidecar we wrote and nobody has changed since (its marker matches its text)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    found = _MARKER.search(text)
    if found is None:
        return False
    if path.suffix == ".pp3":
        first, _, body = text.partition("\n")
        ok = _MARKER.search(first) is not None
    else:
        body, _, last = text.rpartition("\n<!--")
        ok = _MARKER.search(last) is not None
    return ok and hashlib.sha256(body.encode("utf-8")).hexdigest() == found.group(1)


def _camera_facts(dng: Path) -> tuple[tuple[float, float, float], float]:
    """The DNG's camera white balance (R, G, B multipliers, as LibRaw reads AsShotNeutral) and its
    BaselineExposure in EV (0 when it has none)."""
    try:
        with rawpy.imread(str(dng)) as raw:
            wb = list(raw.camera_whitebalance)
    except (rawpy.LibRawError, OSError) as exc:
        raise MedianscanError(f"{dng}: cannot be read for the editors' sidecars ({exc})") from exc
    if min(wb[:3]) <= 0:
        wb = [1.0, 1.0, 1.0]
    try:
        exif = read_image(dng).exifData()
        found = exif.findKey(exiv2.ExifKey("Exif.Image.BaselineExposure"))
        baseline = float(found.toFloat()) if found != exif.end() else 0.0
    except (Exiv2Error, ValueError):
        baseline = 0.0
    return (wb[0], wb[1], wb[2]), baseline


def write_editor_sidecars(output: Path, base: FilmBase | None, editors: Sequence[str]) -> list[Sidecar]:
    """Write each of `editors`' sidecar beside the blend `output` (a DNG) from the roll's `base`, atomically;
    a sidecar the user has edited is kept. Nothing when there is no base yet, no editor, or no DNG."""
    if base is None or not editors or output.suffix.lower() != ".dng":
        return []
    wb, baseline = _camera_facts(output)
    done = []
    for editor in editors:
        path = sidecar_path(output, editor)
        if path.exists() and not is_ours(path):
            log.info("%s: kept as it is (edited since medianscan wrote it)", path)
            done.append(Sidecar(editor, path, written=False))
            continue
        if editor == "rawtherapee":
            body = rawtherapee.profile(base, wb, baseline)
        elif editor == "darktable":
            body = darktable.packet(output, base)
        else:
            raise MedianscanError(f"outputs.editors: no such editor {editor!r} (choose from {', '.join(EDITORS)})")
        write_bytes(path, _marked(editor, body).encode("utf-8"))
        done.append(Sidecar(editor, path, written=True))
    return done


def roll_blends(roll: Path) -> list[Path]:
    """The blends (DNGs) of a roll's negatives: `<roll>/<negative>/<negative>_<method>.dng`, in name order."""
    return sorted(
        p
        for folder in roll.iterdir()
        if folder.is_dir()
        for p in folder.iterdir()
        if p.suffix.lower() == ".dng" and p.name.startswith(f"{folder.name}_") and is_output_name(p.name)
    )


def settle_roll_base(roll: Path, blend: Path | None = None) -> tuple[FilmBase | None, bool]:
    """The roll's base as recorded, brought up to date with `blend` (a new blend of the roll): a base from the
    roll's blends gives way to clearer film, and the density range widens to denser film. With no base recorded,
    the clearest film across the roll's blends is measured and recorded. Returns the base and whether it changed
    (so that the roll's other sidecars follow)."""
    recorded = roll_record.read_film_base(roll)
    if recorded is None:
        blends = roll_blends(roll)
        if not blends:
            return None, False
        found = film_base.clearest_film(blends)
        roll_record.record_film_base(roll, found)
        return found, True
    if blend is None:
        return recorded, False
    settled = recorded
    if recorded.source == film_base.SOURCE_BLENDS:
        here = film_base.clearest_film([blend])
        if here.base[1] > recorded.base[1]:
            settled = FilmBase(here.base, here.white, here.source, here.measured_from, recorded.density_range)
    widened = film_base.density_range(settled, [blend]).density_range
    old = settled.density_range
    if widened is not None:
        merged = widened if old is None else (max(old[0], widened[0]), max(old[1], widened[1]), max(old[2], widened[2]))
        settled = FilmBase(settled.base, settled.white, settled.source, settled.measured_from, merged)
    if settled == recorded:
        return recorded, False
    roll_record.record_film_base(roll, settled)
    return settled, True


def editor_sidecars(output: Path, stack: Path, editors: Sequence[str]) -> list[Sidecar]:
    """After a blend: the roll's base settled with it, `output`'s sidecars written, and, when the base changed,
    the roll's other blends' sidecars rewritten (ours only). A slide film's roll gets none (nothing to invert).
    A folder that is not a roll of the library (no roll.json: a stack blended by hand elsewhere, a hot folder)
    gets none. An editor's sidecar that cannot be written is named in one warning; the blend stands."""
    if not editors or output.suffix.lower() != ".dng":
        return []
    roll = stack.parent
    try:
        record = roll_record.read_roll_record(roll)
        if record is None or (record.film.film_type or "").lower() in _POSITIVE_FILM:
            return []  # a folder that is no roll of the library has no roll's base to hand over (and gets no roll.json)
        with roll_record.updating(roll):
            base, changed = settle_roll_base(roll, output)
            done = write_editor_sidecars(output, base, editors)
            if changed:
                for other in roll_blends(roll):
                    if other != output and any(is_ours(sidecar_path(other, e)) for e in editors):
                        write_editor_sidecars(other, base, editors)
        return done
    except MedianscanError as exc:
        log.warning("%s: the editors' sidecars were not written: %s", output, exc)
        return []
