"""A press with `bracket:` shoots a burst at each shutter value: every value is checked against the camera's
own choices before any frame is shot, set and read back before its group (the burst's own lock), and the
locked shutter is put back after the last group, whatever happened. The frames of group k are
`<negative>_<shutter>_<NN>.<ext>`, so the folder says which exposure each is.

With `frames: auto` the longest exposure's group decides how many frames it needs, and the shorter groups shoot
the least: the merge takes the negative's dense parts (the positive's highlights, where the noise is) from the
longest exposure; a shorter one supplies only the thin parts the long one clips, where light is plenty and its
least frames already reach the target (its own densest tenth is never used, so counting for it would waste time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from medianscan.capture.camera import BurstError, BurstRecord, Camera, CameraError
from medianscan.capture.camera.burst.enough import FrameCount
from medianscan.capture.camera.settings import match_choice, parse_seconds
from medianscan.vocabulary import canonical_key

Progress = Callable[[int, int, str], None]  # (group, of groups, shutter)


def bracket_choices(camera: Camera, values: Sequence[str]) -> list[str]:
    """Each bracket value as the camera's own choice; CameraError, before any frame, for one it does not take."""
    shutter = next((s for s in camera.describe() if canonical_key(s.name) == "shutterspeed" and not s.readonly), None)
    if shutter is None:
        raise CameraError(
            "bracket: this camera has no shutter speed libgphoto2 can set; empty `bracket:` to shoot one burst"
        )
    chosen = []
    for value in values:
        choice = match_choice("shutterspeed", value, shutter.choices)
        if choice is None:
            some = ", ".join(shutter.choices[:: max(1, len(shutter.choices) // 12)])
            raise CameraError(f"bracket value {value!r} is not a shutter speed this camera offers (it has {some}, ...)")
        chosen.append(choice)
    return chosen


def shoot_bracket(
    camera: Camera,
    settings: dict[str, str],
    values: Sequence[str],
    frames: Callable[[bool], int | FrameCount],
    stack: Path,
    *,
    progress: Progress,
) -> BurstRecord:
    """A burst at each of `values` into `stack`, each of `frames(deciding)` frames, `deciding` for the longest
    exposure's group (see the module); `settings` is the camera's own settings dict (the
    bursts lock it), whose shutter is restored after. BurstError (with every frame kept) on a fault."""
    locked = settings.get("shutterspeed")
    before = next((s.value for s in camera.describe() if canonical_key(s.name) == "shutterspeed"), None)
    record = BurstRecord(stack=stack, started=time.time())
    start = time.perf_counter()
    longest = max(values, key=lambda v: parse_seconds(v) or 0.0)
    try:
        for i, value in enumerate(values, 1):
            progress(i, len(values), value)
            settings["shutterspeed"] = value
            stem = f"{stack.name}_{value.replace('/', '-').replace(' ', '')}"
            try:
                part = camera.burst(frames(value == longest), stack, stem)
            except BurstError as exc:
                _add(record, exc.record)
                raise BurstError(f"group {i} of {len(values)} ({value}): {exc}", record) from exc
            _add(record, part)
    finally:
        _restore(camera, settings, locked, before)
        record.seconds = time.perf_counter() - start
    return record


def _add(record: BurstRecord, part: BurstRecord) -> None:
    record.auto = part.auto or record.auto  # the deciding group's count
    record.frames += part.frames
    record.jpegs += part.jpegs
    record.sizes |= part.sizes
    record.per_frame_seconds += part.per_frame_seconds
    record.camera_files += part.camera_files
    record.camera = part.camera or record.camera
    record.settings = dict(part.settings)  # as read back before the last group


def _restore(camera: Camera, settings: dict[str, str], locked: str | None, before: str | None) -> None:
    """The shutter back to the locked value (or the body's own from before the bracket)."""
    if locked is not None:
        settings["shutterspeed"] = locked
    elif before is not None:
        settings["shutterspeed"] = before
    try:
        if camera.connected:
            camera.lock()
    finally:
        if locked is None:
            settings.pop("shutterspeed", None)
