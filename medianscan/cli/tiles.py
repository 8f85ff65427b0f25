"""`medianscan scan-tiles [NEGATIVE]`: a negative larger than the view shot in tiles on the XY stage. With a capture
daemon running, it asks the daemon (the socket verb `scan-tiles`: the roll's next negative, its run on the daemon's
camera thread, blended and stitched by its service) and prints each tile as the run goes; with none, the camera
and the rig are opened here, the tiles shot into NEGATIVE, then blended and stitched into
`NEGATIVE/NEGATIVE_median.dng` (capture.rig.tile_run; the stitch by the services' own job)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import numpy as np

from medianscan.capture.camera import Camera, NoLiveViewError, open_camera
from medianscan.capture.camera.burst.enough import Auto, FrameCount
from medianscan.capture.control_client import client_socket_paths, request
from medianscan.capture.events import Answer
from medianscan.capture.rig import calibrate_rig
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.tile_plan import Wanted, make_plan
from medianscan.capture.rig.tile_run import Resume, RunSettings, TileProgress, TileRun
from medianscan.cli.following import scan_tiles
from medianscan.config.loader import load_config
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError

RESUME_FILE = ".tile-run.npz"  # in the library: where a stopped run left the stage, for the next run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "scan-tiles",
        help="shoot a negative larger than the view in tiles on the XY stage, and stitch it into one raw",
        description=(
            "Plans the tiles from the config's `tiles` (a film format, a size in mm, or a grid) and the rig's "
            "calibration (`medianscan calibrate rig`), then for each tile moves the stage, waits until live view "
            "stands still and shoots a burst into NEGATIVE/tile-rRcC; NEGATIVE/tiles.json holds the plan. Once "
            "every tile is shot, each is blended and the negative stitched into NEGATIVE/NEGATIVE_median.dng. A "
            "fault stops the run in one sentence; the tiles shot stay, and running it again shoots the missing "
            "ones. Ctrl-C stops it after the tile under way. With the daemon running, it asks the daemon instead: "
            "the roll's next negative (or the last one, while tiles of it are missing) is shot on its camera "
            "thread and stitched by its service, each tile printed as the run goes; Ctrl-C, `medianscan "
            "stop-tiles` or a press stops it between tiles. Exits 0 when every tile is shot, 1 when the run "
            "stopped (the reason is printed)."
        ),
    )
    parser.add_argument("negative", type=Path, nargs="?", metavar="NEGATIVE",
                        help="the negative's folder (made if missing); with the daemon running, leave it out: the "
                        "daemon names the negative as a capture does")  # fmt: skip
    parser.add_argument("--socket", type=Path, metavar="PATH", help="the running daemon's control socket")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="seconds to wait for the daemon's answer (3600: a run may be long)")  # fmt: skip
    parser.add_argument("--config", type=Path, metavar="FILE", help="the camera, the rig, the tiles and the library")
    parser.add_argument("--no-stitch", action="store_true", help="leave the blends and the stitch to the service")
    parser.set_defaults(handler=run)


class _Eyes:
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


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    daemon = args.socket or capture_daemon(cfg)
    if daemon is not None:
        return _through(daemon, args)
    if args.negative is None:
        raise MedianscanError("scan-tiles: no running medianscan found to name the negative: give the negative's "
                              "folder (medianscan scan-tiles NEGATIVE), or start the daemon")  # fmt: skip
    calibration = calibrate_rig.load(cfg.library)
    plan = make_plan(Wanted.of(cfg.tiles), calibration.scale())
    negative = args.negative.expanduser().resolve()
    print(f"{negative.name}: {plan.said()}")
    resume_file = calibrate_rig.calibration_path(cfg.library).with_name(RESUME_FILE)
    camera = open_camera(cfg.camera)
    camera.connect()
    stop = threading.Event()
    before = signal.signal(signal.SIGINT, lambda n, f: _stop(stop, n, f))
    try:
        camera.lock()
        rig = open_rig(cfg)
        try:
            settings = RunSettings(cfg.rig.settle_seconds, cfg.tiles.wait_without_live_view_seconds)
            tile_run = TileRun(rig, _Eyes(camera, cfg), plan, calibration.scale(), negative, stop=stop,
                               progress=_Printer(), settings=settings, resume=_load(resume_file, negative))  # fmt: skip
            summary = tile_run.run()
            _save(resume_file, negative, tile_run.resume())
        finally:
            rig.close()
    finally:
        signal.signal(signal.SIGINT, before)
        camera.close()
    print(summary.said())
    if not summary.complete:
        return 1
    if not args.no_stitch:
        _stitch(negative, cfg)
    return 0


def capture_daemon(cfg: Config) -> Path | None:
    """The socket of a capture daemon answering on it (it holds the camera and the rig), or None (none runs, a
    stale socket, or a hot folder's, which holds no camera)."""
    for path in client_socket_paths(cfg):
        if not path.exists():
            continue
        try:
            status = request(path, "status", timeout=2.0).get("status")
        except MedianscanError:
            continue
        if isinstance(status, dict) and status.get("mode") != "watch":
            return path
    return None


def _through(path: Path, args: argparse.Namespace) -> int:
    """The run asked of the daemon, each tile printed as the run is done with it; its summary at the end."""
    if args.negative is not None:
        raise MedianscanError(f"a running medianscan (its control socket is {path}) names the negative itself, as "
                              "a capture does: run `medianscan scan-tiles` without NEGATIVE, or stop the daemon to "
                              f"shoot into {args.negative}")  # fmt: skip
    try:
        reply = scan_tiles(path, args.timeout)
    except KeyboardInterrupt:  # Ctrl-C: the daemon's run stops between tiles, as stop-tiles asks
        stopped = request(path, "stop-tiles")
        print(f"medianscan: {stopped.get('text') or stopped.get('error')}", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"medianscan: {reply.get('error', 'scan-tiles: the daemon refused it')}", file=sys.stderr)
        return 1
    print(reply.get("text", "scan-tiles: done"))
    return 0


def _stop(stop: threading.Event, signum: int, frame: FrameType | None) -> None:
    del signum, frame
    print("stopping after the tile under way (the stage stays where it is)", flush=True)
    stop.set()


class _Printer:
    """Each tile's line once it is shot."""

    def __init__(self) -> None:
        self.said: set[str] = set()

    def __call__(self, progress: TileProgress) -> None:
        for line in progress.tiles:
            if line.state in ("shot", "kept") and line.name not in self.said:
                self.said.add(line.name)
                print(f"  {line.said()}", flush=True)


def _stitch(negative: Path, cfg: Config) -> None:
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


def _save(path: Path, negative: Path, resume: Resume | None) -> None:
    """Where the stage was left, for the next run of this negative; nothing once it went home."""
    if resume is None:
        path.unlink(missing_ok=True)
        return
    view = resume.last_view if resume.last_view is not None else np.zeros((0, 0), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        np.savez(out, negative=str(negative), at=resume.at, slack=resume.slack, known=resume.known,
                 last_at=resume.last_at, last_view=view)  # fmt: skip


def _load(path: Path, negative: Path) -> Resume | None:
    """The last run's Resume when it was this negative's (another negative: put on the stage centred)."""
    try:
        with np.load(path) as data:
            if str(data["negative"]) != str(negative):
                return None
            view = data["last_view"]
            return Resume((float(data["at"][0]), float(data["at"][1])), (int(data["slack"][0]), int(data["slack"][1])),
                          bool(data["known"]), view if view.size else None,
                          (float(data["last_at"][0]), float(data["last_at"][1])))  # fmt: skip
    except (OSError, ValueError, KeyError):
        return None
