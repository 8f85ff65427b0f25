"""Which way a body is fired: what the config asks, what the body offers (probed at connect) and its quirks.

`capture` waits for each shot; `trigger` fires the next shot as soon as the body has named the last one's file, so
the download overlaps the exposure; `native` starts the body's own continuous burst and downloads as the frames
come. `auto` takes the fastest the body allows.
"""

from __future__ import annotations

from medianscan.capture.camera.base import CameraError
from medianscan.capture.camera.burst.link import Capabilities, Choice
from medianscan.capture.camera.burst.quirks import Quirk
from medianscan.vocabulary import StrategyChoice

__all__ = ["Choice", "choose"]

FIXED_COUNT = ("nikon-burstnumber",)  # continuous bursts whose length is set before they start


def choose(
    configured: StrategyChoice, caps: Capabilities, quirk: Quirk, where: str, *, adaptive: bool = False
) -> Choice:
    """The strategy for a body with `caps` and `quirk` when the config says `configured`; a CameraError names what
    the body lacks when the config asks for it. The quirk, if any, is said too. An `adaptive` burst (its length
    decided as it runs, `frames: auto`) cannot use a continuous burst of a fixed count (Nikon's burstnumber)."""
    if adaptive and caps.native in FIXED_COUNT:
        caps = Capabilities(caps.trigger, None, f"{caps.native} shoots a count set beforehand, and frames: auto "
                            "decides as it goes")  # fmt: skip
    choice = _choose(configured, caps, quirk, where)
    if quirk.note and quirk.note not in choice.why:
        return Choice(choice.strategy, f"{choice.why} (quirk: {quirk.note})")
    return choice


def _choose(configured: StrategyChoice, caps: Capabilities, quirk: Quirk, where: str) -> Choice:
    if configured == "native" and caps.native is None:
        raise CameraError(
            f"camera.strategy is native, but the camera ({where}) offers no host-started continuous burst that "
            f"libgphoto2 drives ({caps.why}); use auto, trigger or capture"
        )
    if configured == "trigger" and not caps.trigger:
        raise CameraError(
            f"camera.strategy is trigger, but libgphoto2 cannot trigger the camera ({where}) without waiting for "
            "each shot; use auto or capture"
        )
    if configured != "auto":
        return Choice(configured, "as camera.strategy says")
    if quirk.strategy is not None:
        return Choice(quirk.strategy, quirk.note or "as its quirk says")
    if caps.native is not None and quirk.native:
        return Choice("native", f"its own continuous burst ({caps.native}): the body's frame rate")
    if caps.trigger:
        overlap = "downloads overlap the next exposure" if quirk.overlap else "downloads between shots (quirk)"
        return Choice("trigger", f"no host-started burst ({caps.why}); triggered, {overlap}")
    return Choice("capture", f"no trigger and no host-started burst ({caps.why}): one capture per frame")
