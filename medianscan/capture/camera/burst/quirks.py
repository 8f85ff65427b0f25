"""What particular bodies need beyond their class, as data: the built-in table below, from the figures and
threads users reported, and the config's `camera.quirks` on top (the first rule whose `model` matches wins, the
config's before the table's)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from medianscan.config.schema import QuirkConfig
from medianscan.vocabulary import Strategy


@dataclass(frozen=True)
class Quirk:
    """One body's needs. `after_shot_seconds`: events drained this long after each shot's files, before the next
    trigger; `buffer_frames`: raws it holds before it refuses to shoot (0: no limit known); `overlap`: whether a
    download may run while it exposes the next shot; `native`: whether its continuous burst may be used;
    `strategy`: forced for `auto`."""

    after_shot_seconds: float = 0.0
    buffer_frames: int = 0
    overlap: bool = True
    native: bool = True
    strategy: Strategy | None = None
    note: str = ""


BUILT_IN: tuple[tuple[str, Quirk], ...] = (
    # Fuji X bodies: after each shot the body sends a burst of property events; a trigger before they are drained
    # is lost (NegPy #674: a 300 ms drain), and the X-T5 refuses to shoot once 12 raws wait (NegPy #658).
    (
        r"X-T5|X-H2",
        Quirk(0.3, 12, note="Fuji: 0.3 s event drain after each shot (NegPy #674); 12-raw buffer (NegPy #658)"),
    ),
    (r"\bX-|GFX", Quirk(0.3, note="Fuji: 0.3 s event drain after each shot (NegPy #674)")),
    # Nikons stay busy after a host-fired shot (libgphoto2 #968: never more than 1 shot/s; libgphoto2 waits for
    # them itself): their own continuous burst (burstnumber) is the way to their frame rate.
    (r"Nikon", Quirk(note="Nikon: about 1 host-fired shot a second (libgphoto2 #968); its burstnumber is faster")),
    # Sony bodies keep the last image in their buffer and hand it over at the next capture (libgphoto2 #1124):
    # freshness sets such files aside; a download overlapping the next exposure is fine.
    (r"Sony|ILCE|DSC-RX", Quirk(note="Sony: may hand over the previous shot's file (libgphoto2 #1124)")),
)


def _from_config(rule: QuirkConfig) -> Quirk:
    base = Quirk()
    return Quirk(
        base.after_shot_seconds if rule.after_shot_seconds is None else rule.after_shot_seconds,
        base.buffer_frames if rule.buffer_frames is None else rule.buffer_frames,
        base.overlap if rule.overlap is None else rule.overlap,
        base.native if rule.native is None else rule.native,
        rule.strategy,
        rule.note or "from camera.quirks",
    )


def quirk_for(model: str, configured: Sequence[QuirkConfig] = ()) -> Quirk:
    """The quirk of the body called `model`: the config's first matching rule, else the table's, else none."""
    rules = [(rule.model, _from_config(rule)) for rule in configured] + list(BUILT_IN)
    for pattern, quirk in rules:
        if pattern and re.search(pattern, model, flags=re.IGNORECASE):
            return quirk
    return Quirk()
