"""`medianscan scan-tiles [NEGATIVE]`: a negative larger than the view shot in tiles on the XY stage. With a capture
daemon running, it asks the daemon (the socket verb `scan-tiles`: the roll's next negative, its run on the daemon's
camera thread, blended and stitched by its service) and prints each tile as the run goes; with none, the camera
and the rig are opened here, the tiles shot into NEGATIVE, then blended and stitched into
`NEGATIVE/NEGATIVE_median.dng` (capture.rig.tile_run; the stitch by the services' own job)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medianscan.capture.control_client import capture_daemon, request
from medianscan.capture.rig import calibrate_rig
from medianscan.capture.rig.tile_plan import Wanted, make_plan
from medianscan.capture.rig.tile_run import RunSettings, TileRun
from medianscan.cli.following import scan_tiles
from medianscan.cli.tiles_parts import (
    ANOTHER_CONFIG,
    RESUME_FILE,
    Eyes,
    Printer,
    camera_and_rig,
    load_resume,
    load_saved,
    no_daemon,
    save,
    stitch,
)
from medianscan.cli.tiles_strip import run_on_strip, run_strip
from medianscan.config.loader import load_config
from medianscan.errors import MedianscanError


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
    parser.add_argument("--strip", action=argparse.BooleanOptionalAction, default=None,
                        help="a strip of 120: after each negative, find the next along the strip in live view and go "
                        "on to the strip's end, each negative a folder of its own (NEGATIVE the first; the next "
                        "named by negative_template); run again, it carries on the unfinished negative, then the "
                        "next ones (default: tiles.strip)")  # fmt: skip
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    daemon = args.socket or capture_daemon(cfg)
    if daemon is not None:
        return _through(daemon, args)
    if args.strip if args.strip is not None else cfg.tiles.strip:
        return run_strip(args, cfg)
    if args.negative is None:
        raise MedianscanError(f"scan-tiles: {no_daemon(cfg)} to name the negative: give the negative's folder "
                              f"(medianscan scan-tiles NEGATIVE), or start the daemon {ANOTHER_CONFIG}")  # fmt: skip
    negative = args.negative.expanduser().resolve()
    resume_file = calibrate_rig.calibration_path(cfg.library).with_name(RESUME_FILE)
    saved = load_saved(resume_file)
    if saved is not None and saved[1].on_strip and (saved[0] == negative or saved[0].parent == negative.parent):
        return run_on_strip(args, cfg, saved, negative)  # a strip run left the stage there: on along the strip
    calibration = calibrate_rig.load(cfg.library)
    plan = make_plan(Wanted.of(cfg.tiles), calibration.scale())
    print(f"{negative.name}: {plan.said()}")
    with camera_and_rig(cfg) as (camera, rig, stop):
        settings = RunSettings(cfg.rig.settle_seconds, cfg.tiles.wait_without_live_view_seconds)
        resume = load_resume(resume_file, negative)
        tile_run = TileRun(rig, Eyes(camera, cfg), plan, calibration.scale(), negative, stop=stop,
                           progress=Printer(), settings=settings, resume=resume)  # fmt: skip
        summary = tile_run.run()
        save(resume_file, negative, tile_run.resume())
    print(summary.said())
    if not summary.complete:
        return 1
    if not args.no_stitch:
        stitch(negative, cfg)
    return 0


def _through(path: Path, args: argparse.Namespace) -> int:
    """The run asked of the daemon, each tile printed as the run is done with it; its summary at the end."""
    if args.negative is not None:
        raise MedianscanError(f"a running medianscan (its control socket is {path}) names the negative itself, as "
                              "a capture does: run `medianscan scan-tiles` without NEGATIVE, or stop the daemon to "
                              f"shoot into {args.negative}")  # fmt: skip
    try:
        reply = scan_tiles(path, args.timeout, args.strip)
    except KeyboardInterrupt:  # Ctrl-C: the daemon's run stops between tiles, as stop-tiles asks
        stopped = request(path, "stop-tiles")
        print(f"medianscan: {stopped.get('text') or stopped.get('error')}", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"medianscan: {reply.get('error', 'scan-tiles: the daemon refused it')}", file=sys.stderr)
        return 1
    print(reply.get("text", "scan-tiles: done"))
    return 0
