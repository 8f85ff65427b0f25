"""Frames a burst left on the body: a body that dropped off the bus and came back, a host killed mid-burst. The
stack's journal says which files the body named and were not deleted; those it still holds are fetched into the
stack (as the frames they were, or the next frames in order), then deleted from it; those it no longer holds are
named. A shot the body took but had not named yet when the host died is there too: numbered after the last file
the journal names, in the same folder (up to the frames the burst still lacked)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from medianscan.capture.camera.burst.journal import LeftOnBody, all_named, left_on_body
from medianscan.capture.camera.burst.link import Announced, BodyLink
from medianscan.capture.camera.burst.writer import write_download
from medianscan.capture.camera.files import FileKind, classify, frame_name
from medianscan.capture.camera.freshness import file_number
from medianscan.config.schema import CameraConfig
from medianscan.library.contents import SPARES, candidates

log = logging.getLogger(__name__)


@dataclass
class Fetched:
    """What was found of a cut-off burst on the body."""

    frames: list[Path] = field(default_factory=list)  # raws fetched into the stack
    jpegs: list[Path] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # files the journal names that the body no longer holds

    def said(self) -> str:
        """'2 frames fetched from the camera after the burst was cut off; 1 was gone from it (/DCIM/...)'."""
        parts = []
        if self.frames:
            parts.append(f"{len(self.frames)} fetched from the camera after the burst was cut off")
        if self.gone:
            parts.append(f"{len(self.gone)} named by the camera were gone from it ({', '.join(self.gone[:3])})")
        return "; ".join(parts)


def fetch_left(link: BodyLink, stack: Path, stem: str, frames_expected: int, cfg: CameraConfig) -> Fetched:
    """Fetch into `stack` what its cut-off burst left on the body. The journal stays until the caller has
    recorded what was found (`journal.forget`): a crash meanwhile finds the files on disk and only deletes them."""
    found = Fetched()
    numbers = len([p for p in candidates(stack) if p.stem.startswith(f"{stem}_")])
    left = left_on_body(stack)
    lacking = frames_expected - numbers - sum(1 for item in left if not (stack / item.target).is_file())
    left += _unnamed_shots(link, stack, lacking)
    if not left:
        return found
    for item in left:
        target = stack / item.target if item.target else None
        if target is not None and target.exists():  # written before the cut: only the delete was missing
            if cfg.delete_from_camera and link.exists(item.file):
                link.delete(item.file)
            continue
        if not link.exists(item.file):
            found.gone.append(item.file.path)
            continue
        download = link.download(item.file)
        kind = classify(item.file.name, bytes(download.data[:65536]))
        if target is None:
            target, numbers = _target(stack, stem, kind, numbers, expected=frames_expected, keep_jpeg=cfg.keep_jpeg)
        if target is not None:
            write_download(target, download)
            if target.parent == stack:  # a spare or a file set aside stays where the burst meant it to be
                (found.frames if kind.kind == "raw" else found.jpegs).append(target)
        if cfg.delete_from_camera:
            link.delete(item.file)
    if found.frames or found.gone:
        log.info("%s: %s", stack.name, found.said())
    return found


def _target(
    stack: Path, stem: str, file: FileKind, numbers: int, *, expected: int, keep_jpeg: bool
) -> tuple[Path | None, int]:
    """Where a file the journal named, not placed yet, goes (None: a JPEG not kept), and the frames numbered
    after it: a raw is the next frame, or past the frames expected, a spare (a continuous burst's late shot)."""
    if file.kind == "jpeg" and not keep_jpeg:
        return None, numbers
    if file.kind != "raw":
        return stack / frame_name(stem, numbers, expected, file.ext), numbers
    numbers += 1
    target = stack / (SPARES if numbers > expected else "") / frame_name(stem, numbers, expected, file.ext)
    target.parent.mkdir(exist_ok=True)
    return target, numbers


def _unnamed_shots(link: BodyLink, stack: Path, lacking: int) -> list[LeftOnBody]:
    """Files the body holds in the folder of the journal's last named file, numbered after it: shots of the burst
    the host did not hear of before it died (at most the `lacking` frames)."""
    named = all_named(stack)
    if not named or lacking <= 0:
        return []
    last = max(named, key=lambda f: file_number(f.name) or 0)
    top = file_number(last.name) or 0
    later = sorted(
        (n for n in link.listing(last.folder) if (file_number(n) or 0) > top), key=lambda n: file_number(n) or 0
    )
    return [LeftOnBody(Announced(last.folder, name), "") for name in later[:lacking]]
