"""The standalone tile run's parts (`medianscan scan-tiles` with no daemon): the camera's eyes for the run, each
tile's line printed, where a stopped run left the stage kept in the library for the next, Ctrl-C, and each
negative blended and stitched by the services' own job; shared by one negative's run (cli.tiles) and a strip's
(cli.tiles_strip)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import numpy as np

from medianscan.atomic import atomic_open
from medianscan.capture.camera import Camera, NoLiveViewError
from medianscan.capture.camera.burst.enough import Auto, FrameCount
from medianscan.capture.events import Answer
from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.tile_run import Resume, TileProgress
from medianscan.config.schema import Config
from medianscan.wording import counted

RESUME_FILE = ".tile-run.npz"  # in the library: where a stopped run left the stage, for the next run


def no_daemon(cfg: Config) -> str:
    """Where no daemon answered, for the sentence that asks for a NEGATIVE: an operator whose daemon was started
    with another config (another socket) is told why it was not found."""
    from medianscan.capture.control_client import client_socket_paths

    paths = ", ".join(str(p) for p in client_socket_paths(cfg))
    return f"no running medianscan answered on {paths}"


ANOTHER_CONFIG = "(a daemon started with another --config: give scan-tiles the same --config, or --socket)"


class Eyes:
    """The camera's live view (None where it has none) and each tile's burst at the configured frames."""

    def __init__(self, camera: Camera, cfg: Config) -> None:
        self.camera, self.cfg = camera, cfg

    def preview(self) -> bytes | None:
        try:
            return self.camera.preview()
        except NoLiveViewError:
            return None

    def shoot(self, stack: Path) -> Answer:
        cfg = self.cfg
        frames: int | FrameCount = cfg.frames if cfg.frames != "auto" else Auto(cfg.auto_frames, cfg.blend)
        record = self.camera.burst(frames, stack, stack.name)
        return Answer(True, "capture", f"{len(record.frames)} frames in {record.seconds:.1f} s", stack=str(stack))


def stop_on_signal(stop: threading.Event, signum: int, frame: FrameType | None) -> None:
    del signum, frame
    print("stopping after the tile under way (the stage stays where it is)", flush=True)
    stop.set()


@contextlib.contextmanager
def camera_and_rig(cfg: Config) -> Iterator[tuple[Camera, Rig, threading.Event]]:
    """The configured camera (connected, locked) and rig for one standalone run, with the stop Ctrl-C sets (between
    tiles); the rig, Ctrl-C's handler and the camera given back in that order after."""
    from medianscan.capture.camera import open_camera
    from medianscan.capture.rig.open import open_rig

    camera = open_camera(cfg.camera)
    camera.connect()
    stop = threading.Event()
    before = signal.signal(signal.SIGINT, lambda n, f: stop_on_signal(stop, n, f))
    try:
        camera.lock()
        rig = open_rig(cfg)
        try:
            yield camera, rig, stop
        finally:
            rig.close()
    finally:
        signal.signal(signal.SIGINT, before)
        camera.close()


class Printer:
    """Each tile's line once it is shot (a strip's with its negative's name)."""

    def __init__(self) -> None:
        self.said: set[tuple[str, str]] = set()

    def __call__(self, progress: TileProgress) -> None:
        for line in progress.tiles:
            if line.state in ("shot", "kept") and (progress.negative, line.name) not in self.said:
                self.said.add((progress.negative, line.name))
                print(f"  {progress.negative + ' ' if progress.strip else ''}{line.said()}", flush=True)


def stitch(negative: Path, cfg: Config) -> None:
    """Blend each tile, then the services' own stitch job (its record written into tiles.json)."""
    from medianscan.blend.options import BlendOptions  # numba, rawpy: only now
    from medianscan.blend.pipeline import blend_stack
    from medianscan.library.tile_set import StitchState, StitchStatus, read_tile_set, record_stitch
    from medianscan.service.stitch_job import stitch_job
    from medianscan.service.tiled import TiledNegatives, tile_blend

    started = time.perf_counter()
    options = BlendOptions.from_config(cfg.blend)
    for folder in read_tile_set(negative).folders():
        if tile_blend(folder, options.method) is None:
            blend_stack(folder, options)
    service = TiledNegatives(lambda: options.method)
    service.check(negative)
    if not service.due:
        print(f"{negative.name}: stitched already from these blends ({read_tile_set(negative).output.name})")
        return
    task = service.due[0]
    record = stitch_job(task.key, task)
    seconds = time.perf_counter() - started
    record_stitch(negative, StitchStatus(StitchState.STITCHED, output=record.output.name, inputs=task.inputs,
                                         seconds=seconds, width=record.width, height=record.height))  # fmt: skip
    print(f"{record.output}: {len(record.tiles)} tiles blended and stitched, {record.width}x{record.height} "
          f"photosites, in {seconds:.1f} s")  # fmt: skip
    alone = record.placed_alone
    if alone:
        names = ", ".join(t.source.parent.name for t in alone)
        by = "the plan's places" if task.positions is not None else "the grid"
        print(f"medianscan: warning: {negative.name}: no overlap registered for {counted(len(alone), 'tile')} "
              f"({names}): placed by {by} alone, so look at their seams before trusting the stitch",
              file=sys.stderr)  # fmt: skip


def save(path: Path, negative: Path, resume: Resume | None) -> None:
    """Where the stage was left, for the next run of this negative; nothing once it went home."""
    if resume is None:
        path.unlink(missing_ok=True)
        return
    view = resume.last_view if resume.last_view is not None else np.zeros((0, 0), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as out:  # whole or not at all: a half-written place would be read as the stage's
        np.savez(out, negative=str(negative), at=resume.at, slack=resume.slack, known=resume.known,
                 last_at=resume.last_at, last_view=view, on_strip=resume.on_strip)  # fmt: skip


def load_resume(path: Path, negative: Path) -> Resume | None:
    """The last run's Resume when it was this negative's (another negative: put on the stage centred)."""
    saved = load_saved(path)
    return saved[1] if saved is not None and saved[0] == negative else None


def load_saved(path: Path) -> tuple[Path, Resume] | None:
    """Where the last run left the stage, and from which negative's centre; a saved place that cannot be read is
    forgotten (removed) and said: the stage's place is then unknown, found again as at a start."""
    try:
        with np.load(path) as data:
            view = data["last_view"]
            at, slack = (float(data["at"][0]), float(data["at"][1])), (int(data["slack"][0]), int(data["slack"][1]))
            last_at = (float(data["last_at"][0]), float(data["last_at"][1]))
            on_strip = bool(data["on_strip"]) if "on_strip" in data.files else False
            resume = Resume(at, slack, bool(data["known"]), view if view.size else None, last_at, on_strip)
            return Path(str(data["negative"])), resume
    except FileNotFoundError:
        return None
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError, TypeError) as exc:
        path.unlink(missing_ok=True)
        why = str(exc) or type(exc).__name__
        print(f"medianscan: warning: {path} (where the last run left the stage) cannot be read ({why}): "
              "forgotten, so the stage's place is unknown: put the negative under the lens, centred, as at a start",
              file=sys.stderr)  # fmt: skip
        return None
