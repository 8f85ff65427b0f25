"""`medianscan camera list|show|burst`: find the camera, see what it can lock, shoot one burst by hand."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medianscan.capture.camera import (
    BurstError,
    BurstRecord,
    Camera,
    CameraError,
    SettingError,
    list_cameras,
    open_camera,
)
from medianscan.capture.camera.burst.enough import Auto, FrameCount
from medianscan.capture.camera.faults import NO_CAMERA_FIX
from medianscan.config.loader import load_config
from medianscan.config.schema import CameraConfig, Config
from medianscan.errors import MedianscanError
from medianscan.vocabulary import STRATEGY_CHOICES
from medianscan.wording import counted

MAX_CHOICES_SHOWN = 12


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "camera",
        help="list cameras, show their settings, or shoot one burst",
        description="The camera alone, without the daemon: which bodies are on the bus, what each setting is and can "
        "be (the names camera.settings takes), and one locked burst into a folder to try a set-up.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE", help="take the camera section from this file")
    common.add_argument(
        "--backend",
        choices=("gphoto2", "simulated"),
        help="a real body through libgphoto2, or the simulated camera (default: the config's, else gphoto2)",
    )
    common.add_argument("--model", help="pick the camera by model name (substring)")
    common.add_argument("--port", help="pick the camera by port, e.g. usb:001,004")
    common.add_argument("--serial", help="pick the camera by serial number")

    listing = verbs.add_parser(
        "list",
        parents=[common],
        help="the cameras on the bus: model, port, serial",
        description="List the cameras libgphoto2 finds on the bus, with the port and serial to pick one by.",
    )
    listing.set_defaults(handler=run_list)

    show = verbs.add_parser(
        "show",
        parents=[common],
        help="every setting: current value, choices, read-only",
        description="Show every setting of the camera: its name (what camera.settings takes), the current value, "
        "the choices and whether it is read-only.",
    )
    show.add_argument("--json", action="store_true", help="one JSON object per setting")
    show.set_defaults(handler=run_show)

    burst = verbs.add_parser(
        "burst",
        parents=[common],
        help="lock the settings and shoot one burst into DIR",
        description="Lock the configured settings (and those given with --set), read them back, and shoot one "
        "burst into DIR as the daemon would: every file written to a temp name, fsynced, then renamed.",
    )
    burst.add_argument(
        "--frames",
        type=_frames,
        metavar="N|auto",
        help="frames to shoot, or auto: as many as the negative needs (the config's auto_frames; default: the "
        "config's frames)",
    )
    burst.add_argument("--out", type=Path, required=True, metavar="DIR", help="the stack folder to fill")
    burst.add_argument("--stem", help="frame names <stem>_<NN>.<ext> (default: DIR's name)")
    burst.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="lock this setting too (repeatable), e.g. --set aperture=8",
    )
    burst.add_argument(
        "--strategy",
        choices=STRATEGY_CHOICES,
        help="how the burst is fired: auto (the fastest the body allows; `camera show` says which), capture (one "
        "call per frame, waiting for each), trigger (the next shot fired as soon as the body names a file, "
        "downloads overlapping exposures) or native (the body's own continuous burst); default: the config's",
    )
    burst.add_argument("--json", action="store_true", help="print the burst record as JSON")
    burst.set_defaults(handler=run_burst)


def setting_fix(key: str, from_flags: set[str]) -> str:
    """Where to fix a setting the body refused: the `--set` it came from, or the config's camera.settings."""
    if key in from_flags:
        return f"fix or drop --set {key}=..."
    return "fix camera.settings in the config (or list it under camera.optional)"


def _frames(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of frames, or auto") from None


def camera_config(args: argparse.Namespace) -> tuple[CameraConfig, Config]:
    """The camera section of --config (or the defaults: the real camera) overridden by the options, and the whole
    configuration it came from."""
    cfg = load_config(args.config)
    camera = cfg.camera
    for name in ("backend", "model", "port", "serial", "strategy"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(camera, name, value)
    for item in getattr(args, "set", []):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MedianscanError(f"--set {item!r}: write it as KEY=VALUE, e.g. --set aperture=8")
        camera.settings[key.strip()] = value.strip()
    return camera, cfg


def run_list(args: argparse.Namespace) -> int:
    cfg, _ = camera_config(args)
    cameras = list_cameras(cfg.backend)
    if not cameras:
        print(f"medianscan: no camera found: {NO_CAMERA_FIX}", file=sys.stderr)
        return 1
    for cam in cameras:
        print(f"{cam.model}\t{cam.port}\tserial {cam.serial or '?'}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    cfg, _ = camera_config(args)
    cam = open_camera(cfg)
    try:
        identity = cam.connect()
        infos = cam.describe()
        try:
            choice = cam.strategy()
            strategy = f"{choice.strategy}: {choice.why}"
        except CameraError as exc:  # camera.strategy asks for what this body lacks
            strategy = f"none: {exc}"
    finally:
        cam.close()
    if args.json:
        for info in infos:
            print(json.dumps(vars(info)))
        return 0
    print(f"{identity.model} on {identity.port} (serial {identity.serial or '?'})")
    print(f"bursts ({cfg.strategy}): {strategy}")
    section = None
    for info in infos:
        if info.section != section:
            section = info.section
            print(f"[{section}]")
        alias = f" (config key: {info.key})" if info.key != info.name else ""
        flags = "  read-only" if info.readonly else ""
        choices = info.choices[:MAX_CHOICES_SHOWN] + (["..."] if len(info.choices) > MAX_CHOICES_SHOWN else [])
        shown = f"  choices: {', '.join(choices)}" if choices else ""
        print(f"  {info.name}{alias} = {info.value!r}{flags}{shown}")
    return 0


def _report(record: BurstRecord) -> None:
    for frame in record.frames + record.jpegs:
        print(frame)
    per_frame = record.seconds / len(record.frames) if record.frames else 0.0
    why = f" ({record.auto.said()})" if record.auto is not None else ""
    print(
        f"{counted(len(record.frames), 'frame')}{why} in {record.seconds:.2f} s ({per_frame:.2f} s per frame); "
        f"settings: {', '.join(f'{k}={v}' for k, v in record.settings.items()) or 'none locked'}",
        file=sys.stderr,
    )


def _set_keys(args: argparse.Namespace) -> set[str]:
    return {item.partition("=")[0].strip() for item in getattr(args, "set", [])}


def run_burst(args: argparse.Namespace) -> int:
    cfg, whole = camera_config(args)
    wanted = args.frames if args.frames is not None else whole.frames
    if wanted == "auto":
        frames: int | FrameCount = Auto(whole.auto_frames, whole.blend)
    elif int(wanted) < 1:
        raise MedianscanError(f"--frames {wanted}: shoot at least one frame")
    else:
        frames = int(wanted)
    out: Path = args.out.expanduser()
    stem = args.stem or out.resolve().name
    cam: Camera = open_camera(cfg)
    try:
        record = cam.burst(frames, out, stem)
    except BurstError as exc:
        if args.json:
            print(json.dumps(exc.record.to_json(), indent=2))
        elif exc.record.frames:
            _report(exc.record)
        cause = exc.__cause__
        fix = f": {setting_fix(cause.key, _set_keys(args))}" if isinstance(cause, SettingError) else ""
        print(f"medianscan: {exc}{fix}", file=sys.stderr)
        return 1
    finally:
        cam.close()
    if args.json:
        print(json.dumps(record.to_json(), indent=2))
    else:
        _report(record)
    return 0
