"""`medianscan config check FILE...` and `medianscan config show [FILE]`: catch a config mistake before the
service does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medianscan.capture.camera import CameraError, SettingError, open_camera
from medianscan.config.loader import config_to_yaml, load_config
from medianscan.config.schema import Config, ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("config", help="check a configuration file, or show the effective configuration")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    check = verbs.add_parser(
        "check",
        help="report unknown keys, wrong types and out-of-range values with file, line and key",
        description=(
            "Exit status 0 when every FILE is usable, 2 otherwise (each problem on one line). With --camera, also "
            "connect to the camera FILE names and lock its settings once (then put them back): a setting the "
            "body does not have, or a value it does not offer, is named with the nearest names it has."
        ),
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE", help="the configuration files to check")
    check.add_argument("--camera", action="store_true", help="also check camera.settings against the connected camera")
    check.set_defaults(handler=run_check)
    show = verbs.add_parser("show", help="print the configuration as loaded, defaults filled in (YAML)")
    show.add_argument(
        "file", nargs="?", type=Path, metavar="FILE", help="the configuration file (default: the built-in defaults)"
    )
    show.set_defaults(handler=run_show)


def run_check(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            for problem in str(exc).splitlines():  # every problem in the file, one a line
                print(f"medianscan: {problem}", file=sys.stderr)
            status = 2
            continue
        refused = camera_problem(cfg) if args.camera else None
        if refused is not None:
            print(f"medianscan: {path}: {refused}", file=sys.stderr)
            status = 2
            continue
        checked = ", settings locked on the camera" if args.camera else ""
        rig = "" if cfg.rig.port is None else f", rig {cfg.rig.protocol} on {cfg.rig.port}"
        print(
            f"{path}: ok ({cfg.mode} mode, {cfg.camera.backend} camera{rig}, {_frames(cfg)} per burst, "
            f"library {cfg.library}{checked})"
        )
        if cfg.rig.port not in (None, "simulated") and "://" not in cfg.rig.port and not Path(cfg.rig.port).exists():
            print(f"medianscan: {path}: rig.port {cfg.rig.port} does not exist now: plug the rig in before scan-roll",
                  file=sys.stderr)  # fmt: skip
    return status


def _frames(cfg: Config) -> str:
    auto = cfg.auto_frames
    return f"{cfg.frames} frames" if cfg.frames != "auto" else f"{auto.min} to {auto.max} frames for SNR {auto.snr:g}"


def camera_problem(cfg: Config) -> str | None:
    """Why the camera `cfg` names cannot take its settings (None: it takes them all); it is left as found."""
    camera = open_camera(cfg.camera)
    try:
        camera.connect()
        camera.lock()
    except SettingError as exc:
        return f"{exc}: fix camera.settings (or list it under camera.optional)"
    except CameraError as exc:
        return f"cannot check camera.settings: {exc}"
    finally:
        camera.close()
    return None


def run_show(args: argparse.Namespace) -> int:
    sys.stdout.write(config_to_yaml(load_config(args.file)))
    return 0
