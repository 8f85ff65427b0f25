"""The `base` action on the camera thread: a burst of clear film (the leader or the rebate in the holder) shot on
purpose into `<roll>/base/base-NNN/`, measured as the roll's film base (medianscan.library.film_base), recorded
in roll.json and handed to the editors' sidecars of the roll's blends (medianscan.outputs.editors.roll_base).
The burst is kept, never blended; the answer says what was measured, per colour, against the base before."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Protocol

from medianscan.capture.camera import Camera, CameraError
from medianscan.capture.events import Answer
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.library import base_shots, film_base
from medianscan.library.rolls import Library
from medianscan.outputs.editors.roll_base import record_base
from medianscan.service.capture.camera_link import CameraLink
from medianscan.service.capture.state import DaemonState

log = logging.getLogger(__name__)


class BaseShooter(Protocol):
    """The camera thread's side the base burst needs."""

    state: DaemonState
    link: CameraLink
    config: Callable[[], Config]
    library: Callable[[], Library]

    def ready_camera(self, doing: str) -> Camera: ...

    def check_space(self) -> None: ...

    def burst_under_way(self, why: str, label: str) -> contextlib.AbstractContextManager[None]: ...


def shoot_base(shooter: BaseShooter) -> Answer:
    """A burst of clear film for the roll's base; whole and measured, or set aside with the reason."""
    if shooter.state.paused:
        return Answer.paused("base")
    camera = shooter.ready_camera("shoot the film base")
    shooter.check_space()
    cfg, roll = shooter.config(), shooter.library().roll
    shot = base_shots.shooting_folder(roll)
    try:
        with shooter.burst_under_way("a burst of clear film is under way", "the film base"):
            record = camera.burst(cfg.flat_frames(), shot, base_shots.BASE_STEM)
    except CameraError as exc:
        kept = base_shots.set_aside(shot)
        if not camera.connected:
            shooter.link.drop(str(exc))
        raise MedianscanError(f"film base not shot ({exc}); its frames are kept in {kept}") from exc
    folder = base_shots.keep(roll, shot)
    frames = [folder / frame.name for frame in record.frames]
    where = f"{roll.name}/{base_shots.BASES}/{folder.name}"
    with _named(where):
        base = film_base.clear_film(frames, film_base.SOURCE_CLEAR)
        done = record_base(roll, base, cfg.outputs.editors)
    shooter.state.clear_message()
    text = f"{done.said()}; {len(frames)} frames of clear film in {record.seconds:.1f} s kept in {where}"
    log.info("%s", text)
    return Answer(True, "base", text, stack=folder.name)


@contextlib.contextmanager
def _named(where: str) -> Iterator[None]:
    """A base that cannot be measured or recorded says where its frames are kept (they are never deleted)."""
    try:
        yield
    except MedianscanError as exc:
        raise MedianscanError(f"film base not recorded: {exc} (the frames are kept in {where})") from exc
