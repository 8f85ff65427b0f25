"""Bursts cut off with frames still on the body: a `kill -9` mid-burst, a body that dropped off the bus. Once the
camera is here again, what it still holds is fetched into its stack (capture.camera.burst.leftover), on the camera
thread; a stack that then has all its frames is blended as if nothing had happened, one still short stays
incomplete with a note that says what was found and what was gone."""

from __future__ import annotations

import logging
from pathlib import Path

from medianscan.capture.camera import Camera
from medianscan.capture.camera.burst.journal import forget
from medianscan.errors import MedianscanError
from medianscan.library.contents import BURST_JOURNAL
from medianscan.library.manifest import State, read_manifest
from medianscan.library.recovery import cut_off_note
from medianscan.library.rolls import raw_files
from medianscan.service.capture.parts import CaptureDaemon

log = logging.getLogger(__name__)


def left_a_journal(stack: Path) -> bool:
    """The stack's burst was cut off while the body still held files it had named."""
    return (stack / BURST_JOURNAL).is_file()


def fetch_cut_off(d: CaptureDaemon, camera: Camera) -> None:
    """Fetch what each cut-off burst of `d.cut_off` left on `camera`; the stacks done with leave the set."""
    for stack in sorted(d.cut_off):
        try:
            manifest = read_manifest(stack)
            if manifest.bracket:  # a bracket's frames are named per exposure: left for `medianscan blend --force`
                d.cut_off.discard(stack)
                continue
            fetched = camera.fetch_left(stack, stack.name, manifest.frames_expected)
        except (MedianscanError, OSError) as exc:
            log.warning("%s: the frames its cut-off burst left on the camera cannot be fetched yet: %s", stack, exc)
            return  # the camera, or the disk, is not well: the next turn tries again
        d.cut_off.discard(stack)
        if fetched.frames or fetched.gone:
            on_disk = len(raw_files(stack))
            if on_disk >= manifest.frames_expected:
                d.library.mark(stack, State.CAPTURED, note=fetched.said(), error=None)
                log.info("%s: whole again (%s): queued for blending", stack.name, fetched.said())
                with d.lock:
                    d.backlog.append(stack)
            else:
                note = f"{cut_off_note(on_disk, manifest.frames_expected)}; {fetched.said()}"
                d.library.mark(stack, State.INCOMPLETE, note=note)
        forget(stack)  # recorded: the journal has served
