"""`medianscan calibrate exposure`: pick the shutter speed that puts the clear film base just under clipping, on
the raw (medianscan.capture.calibrate), and with --apply write it into the config's camera.settings."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from medianscan.atomic import atomic_path
from medianscan.capture.calibrate import Calibration, ExposureCalibration
from medianscan.capture.camera import open_camera
from medianscan.capture.control_client import client_socket_paths, request
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
        help="calibrate the exposure from the film base (ETTR on the raw)",
        description="Measure what a set-up needs before a roll: the exposure that puts the clear film base just "
        "below the raw's clipping point.",
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


def run(args: argparse.Namespace) -> int:
    if args.apply and args.config is None:
        raise MedianscanError("--apply writes the speed into a configuration file: give it with --config")
    cfg = load_config(args.config)
    refuse_while_a_daemon_holds_the_camera(cfg)
    camera = open_camera(cfg.camera)
    started = time.perf_counter()
    camera.connect()
    try:
        camera.lock()
        start = cfg.camera.settings.get("shutterspeed") or next(
            (s.value for s in camera.describe() if s.key == "shutterspeed"), None
        )
        result = ExposureCalibration(camera, cfg.camera.settings).run(start)
    finally:
        camera.close()
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
    for path in client_socket_paths(cfg):
        if not path.exists():
            continue
        try:
            status = request(path, "status", timeout=2.0).get("status")
        except MedianscanError:
            continue  # a stale socket: nobody holds the camera through it
        if isinstance(status, dict) and status.get("mode") != "watch":
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
