"""`medianscan calibrate exposure`: pick the shutter speed that puts the clear film base just under clipping, on
the raw (medianscan.capture.calibrate), and with --apply write it into the config's camera.settings.
`medianscan calibrate rig`: measure an XY stage in live view (capture.rig.calibrate_rig) and record it in the
library, for `scan-tiles`."""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import yaml

from medianscan.atomic import atomic_path
from medianscan.capture.calibrate import Calibration, ExposureCalibration
from medianscan.capture.camera import Camera, NoLiveViewError, open_camera
from medianscan.capture.control_client import capture_daemon
from medianscan.config.loader import load_config
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.library.rolls import Library
from medianscan.wording import share

if TYPE_CHECKING:
    from medianscan.outputs.editors.roll_base import Rebased


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "calibrate",
        help="calibrate the exposure from the film base (ETTR on the raw), or an XY stage's moves",
        description="Measure what a set-up needs before a roll: the exposure that puts the clear film base just "
        "below the raw's clipping point; or how an XY stage moves the picture, for negatives shot in tiles.",
    )
    what = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    exposure = what.add_parser(
        "exposure",
        help="with the clear film base in the holder: the shutter speed that puts it just under clipping",
        description=(
            "Shoots raw probes of the clear film base (a blank frame or the rebate) at the locked settings, meters "
            "the brightest channel on the raw and picks the camera's own shutter speed closest to 90 % of the raw "
            "range without overshooting. Run it while the daemon is stopped (it needs the camera). The probes are "
            "not kept; with --apply, the final probe's film base is recorded as the current roll's (roll.json), "
            "for the editors' sidecars."
        ),
    )
    exposure.add_argument(
        "--config", type=Path, metavar="FILE", help="the camera and settings (and where --apply writes)"
    )
    exposure.add_argument("--json", action="store_true", help="print the result as JSON")
    exposure.add_argument(
        "--apply",
        action="store_true",
        help="write the speed into FILE's camera.settings, and the probe's film base into the current roll",
    )
    exposure.set_defaults(handler=run)
    rig = what.add_parser(
        "rig",
        help="with a negative on the XY stage: each axis's scale, angle to the sensor and backlash, in live view",
        description=(
            "Moves each axis of the XY stage (rig.axes: xy) out a known distance and back, measures the picture's "
            "shift in live view by phase correlation and on two raws, and records the photosites per mm of each "
            "axis, the axes' angle to the sensor and their backlash in LIBRARY/rig-calibration.json, where "
            "scan-tiles plans its tiles from. Put a negative with detail under the lens, centred; run it while "
            "the daemon is stopped (it needs the camera and the rig). The stage ends where it started."
        ),
    )
    rig.add_argument("--config", type=Path, metavar="FILE", help="the camera, the rig and the library")
    rig.add_argument("--json", action="store_true", help="print the result as JSON")
    rig.set_defaults(handler=run_rig)


@contextlib.contextmanager
def locked_camera(cfg: Config) -> Iterator[Camera]:
    """The configured camera, connected and locked for a calibration (none while a daemon holds it), closed after."""
    refuse_while_a_daemon_holds_the_camera(cfg)
    camera = open_camera(cfg.camera)
    camera.connect()
    try:
        camera.lock()
        yield camera
    finally:
        camera.close()


def run(args: argparse.Namespace) -> int:
    if args.apply and args.config is None:
        raise MedianscanError("--apply writes the speed into a configuration file: give it with --config")
    cfg = load_config(args.config)
    started = time.perf_counter()
    with locked_camera(cfg) as camera:
        start = cfg.camera.settings.get("shutterspeed") or next(
            (s.value for s in camera.describe() if s.key == "shutterspeed"), None
        )
        result = ExposureCalibration(camera, cfg.camera.settings).run(start)
    seconds = time.perf_counter() - started
    if args.apply:
        write_shutter(args.config, result.shutterspeed)
    rebased = roll_base(cfg, result) if args.apply else None
    if args.json:
        rolled = {} if not args.apply else {"roll_base": rebased if rebased is None else rebased.said()}
        print(json.dumps(result.to_json() | {"seconds": round(seconds, 2)} | rolled))
        return 0
    print(
        f"shutter speed {result.shutterspeed}: the film base's brightest channel ({result.brightest_channel}) at "
        f"{share(2**-result.headroom_ev)} of the raw range, {result.headroom_ev:.2f} EV under clipping "
        f"({len(result.probes)} probes, {seconds:.1f} s)"
    )
    if args.apply:
        print(f"written to {args.config} (camera.settings.shutterspeed); a running daemon takes it on reload")
        print(rebased.said() if rebased is not None else _no_roll_base(cfg, result))
    return 0


def run_rig(args: argparse.Namespace) -> int:
    from medianscan.capture.rig import calibrate_rig  # numpy's FFT and the rig: only for this
    from medianscan.capture.rig.open import open_rig

    cfg = load_config(args.config)
    started = time.perf_counter()
    with locked_camera(cfg) as camera, tempfile.TemporaryDirectory(prefix="medianscan-rig-") as scratch:
        still = _Stills(camera, Path(scratch))
        sensor = still.size()
        rig = open_rig(cfg)
        try:
            say = (lambda text: None) if args.json else print
            result = calibrate_rig.calibrate(rig, still.preview, sensor, still=still, say=say)
        finally:
            rig.close()
    path = calibrate_rig.save(result, cfg.library)
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(result.to_json() | {"file": str(path), "seconds": round(seconds, 2)}))
        return 0
    print(f"{result.said()} ({seconds:.0f} s)")
    print(f"recorded in {path}: scan-tiles plans its tiles from it")
    return 0


class _Stills:
    """The camera's live view (None where it has none) and single raws, for the rig's calibration."""

    def __init__(self, camera: Camera, scratch: Path) -> None:
        self.camera, self.scratch, self.count = camera, scratch, 0

    def preview(self) -> bytes | None:
        try:
            return self.camera.preview()
        except NoLiveViewError:
            return None

    def __call__(self) -> npt.NDArray[np.float32]:
        import rawpy

        self.count += 1
        record = self.camera.burst(1, self.scratch / f"still{self.count}", "rig-calibration")
        if not record.frames:
            raise MedianscanError("the camera gave no raw for the rig's calibration")
        with rawpy.imread(str(record.frames[0])) as raw:
            mosaic: npt.NDArray[np.float32] = raw.raw_image_visible.astype(np.float32)
        return mosaic

    def size(self) -> tuple[int, int]:
        """The sensor's width and height in photosites, from one raw."""
        h, w = self().shape
        return w, h


def roll_base(cfg: Config, result: Calibration) -> Rebased | None:
    """The final probe's film base made the current roll's (its sidecars follow), or None when there is no roll
    yet or the probe gave no base."""
    from medianscan.outputs.editors.roll_base import record_base  # rawpy and Exiv2: only when applying

    roll = Library.from_config(cfg).current_roll()
    if roll is None or result.base is None:
        return None
    return record_base(roll, result.base, cfg.outputs.editors)


def _no_roll_base(cfg: Config, result: Calibration) -> str:
    if result.base is None:
        return f"no film base recorded: the final probe gave none ({result.base_problem})"
    return f"no film base recorded: there is no roll in {cfg.library} yet (the first roll's blends will give one)"


def refuse_while_a_daemon_holds_the_camera(cfg: Config) -> None:
    """A capture daemon that answers on its control socket holds the camera (one process per body): say so in
    one sentence, before the probes would fight it for the body. A watcher holds none."""
    path = capture_daemon(cfg)
    if path is not None:
        raise MedianscanError(
            f"a running medianscan holds the camera (its control socket is {path}): stop it first "
            "(`systemctl stop medianscan`, or Ctrl-C in its terminal), calibrate, then start it again"
        )


def write_shutter(path: Path, value: str) -> None:
    """Set camera.settings.shutterspeed in the YAML file at `path`, changing nothing else in it (comments
    included): the value's own characters are replaced, or one line is added to an existing settings section."""
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text)
    camera = _child(root, "camera")
    settings = _child(camera, "settings") if camera is not None else None
    if not isinstance(settings, yaml.MappingNode) or settings.flow_style:
        raise MedianscanError(
            f'{path}: no block `settings:` section under `camera:` to write into; add `shutterspeed: "{value}"` '
            "under camera.settings yourself"
        )
    quoted = json.dumps(value)  # a YAML double-quoted scalar
    current = _child(settings, "shutterspeed")
    if current is not None:
        text = text[: current.start_mark.index] + quoted + text[current.end_mark.index :]
    else:
        first = settings.value[0][0] if settings.value else None
        if first is None:
            raise MedianscanError(f"{path}: camera.settings is empty; add `shutterspeed: {quoted}` to it yourself")
        line_start = text.rfind("\n", 0, first.start_mark.index) + 1
        indent = " " * first.start_mark.column
        text = text[:line_start] + f"{indent}shutterspeed: {quoted}\n" + text[line_start:]
    load_check = yaml.safe_load(text)
    if load_check["camera"]["settings"]["shutterspeed"] != value:  # pragma: no cover - the edit is exact
        raise MedianscanError(f"{path}: could not write the shutter speed safely; nothing was changed")
    mode = path.stat().st_mode & 0o777
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(mode)


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            found: yaml.Node = value_node
            return found
    return None
