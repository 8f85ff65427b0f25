"""A film base measured on purpose (clear film shot with `medianscan base`, or `calibrate exposure`'s probe) made
the roll's: its density range taken on the roll's blends, recorded in roll.json under the roll's lock (a blend
worker settling the base meanwhile waits), and the editors' sidecars of the roll's blends written from it (one
the user edited is kept). The daemon's base burst, `medianscan base SOURCE` and the probe all go through here, so
the operator is told the same things in the same words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medianscan.library import film_base, roll_record
from medianscan.library.film_base import FilmBase
from medianscan.outputs.editors import roll_blends, write_editor_sidecars
from medianscan.wording import counted


@dataclass(frozen=True)
class Rebased:
    """What recording a roll's base did: the base, the one recorded before (if any), the roll's blends, and the
    sidecars written and kept (edited by the user)."""

    roll: Path
    base: FilmBase
    before: FilmBase | None
    blends: int
    written: int
    kept: int
    editors: tuple[str, ...]

    def said(self) -> str:
        """What was measured and done, in one paragraph for the operator."""
        text = f"{self.roll.name}: {describe(self.base)}; {compared(self.base, self.before)}; recorded in roll.json"
        if self.editors and self.blends:
            text += (
                f"; {counted(self.written, 'sidecar')} ({', '.join(self.editors)}) written beside "
                f"{counted(self.blends, 'blend')}"
            )
            if self.kept:
                text += f", {counted(self.kept, 'sidecar')} you edited kept as it is"
        return text


def describe(base: FilmBase) -> str:
    """The base in one line, as the operator reads it."""
    r, g, b = base.base
    share = ", ".join(f"{s:.0%}" for s in base.share)
    line = f"film base R {r:.0f} G {g:.0f} B {b:.0f} over black ({share} of the raw range), from {base.source}"
    if base.density_range is not None:
        dr, dg, db = base.density_range
        line += f"; density range R {dr:.2f} G {dg:.2f} B {db:.2f}"
    return line


def compared(base: FilmBase, before: FilmBase | None) -> str:
    """How `base` compares with the base recorded before, per colour (or that none was)."""
    if before is None:
        return "no base was recorded before"
    change = ", ".join(
        f"{c} {(new / old - 1) * 100:+.1f} %"
        for c, new, old in zip(film_base.COLOURS, base.base, before.base, strict=True)
    )
    return f"against the base recorded before (from {before.source}): {change}"


def record_base(roll: Path, base: FilmBase, editors: Sequence[str]) -> Rebased:
    """Make `base` the roll's: its density range measured on the roll's blends, recorded in roll.json, and the
    blends' sidecars rewritten from it, all under the roll's lock. MedianscanError naming the file when a blend
    or the record cannot be read or written."""
    with roll_record.updating(roll):
        before = roll_record.read_film_base(roll)
        blends = roll_blends(roll)
        if blends:
            base = film_base.density_range(base, blends)
        roll_record.record_film_base(roll, base)
        written = kept = 0
        for blend in blends:
            for sidecar in write_editor_sidecars(blend, base, editors):
                written += sidecar.written
                kept += not sidecar.written
    return Rebased(roll, base, before, len(blends), written, kept, tuple(editors))
