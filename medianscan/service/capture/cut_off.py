"""Bursts cut off with frames still on the body: a `kill -9` mid-burst, a body that dropped off the bus. Once the
camera is here again, what it still holds is fetched into its stack (capture.camera.burst.leftover), on the camera
thread; a stack that then has all its frames is blended as if nothing had happened, one still short stays
incomplete with a note that says what was found and what was gone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from medianscan.capture.camera import Camera
from medianscan.capture.camera.burst.journal import forget
from medianscan.errors import MedianscanError
from medianscan.library.contents import BURST_JOURNAL
from medianscan.library.manifest import State, read_manifest
from medianscan.library.recovery import cut_off_note
from medianscan.library.rolls import Library, raw_files

log = logging.getLogger(__name__)


def left_a_journal(stack: Path) -> bool:
    """The stack's burst was cut off while the body still held files it had named."""
    return (stack / BURST_JOURNAL).is_file()


def fetch_cut_off(stacks: set[Path], camera: Camera, library: Library, queue: Callable[[Path], None]) -> None:
    """Fetch what each cut-off burst of `stacks` left on `camera`; the stacks done with leave the set, and those
    whole again are recorded in `library` and given to `queue` (for blending)."""
    for stack in sorted(stacks):
        try:
            manifest = read_manifest(stack)
            if manifest.bracket:  # a bracket's frames are named per exposure: left for `medianscan blend --force`
                stacks.discard(stack)
                continue
            fetched = camera.fetch_left(stack, stack.name, manifest.frames_expected)
        except (MedianscanError, OSError) as exc:
            log.warning("%s: the frames its cut-off burst left on the camera cannot be fetched yet: %s", stack, exc)
            return  # the camera, or the disk, is not well: the next turn tries again
        stacks.discard(stack)
        if fetched.frames or fetched.gone:
            on_disk = len(raw_files(stack))
            if on_disk >= manifest.frames_expected:
                library.mark(stack, State.CAPTURED, note=fetched.said(), error=None)
                log.info("%s: whole again (%s): queued for blending", stack.name, fetched.said())
                queue(stack)
            else:
                note = f"{cut_off_note(on_disk, manifest.frames_expected)}; {fetched.said()}"
                library.mark(stack, State.INCOMPLETE, note=note)
        forget(stack)  # recorded: the journal has served
