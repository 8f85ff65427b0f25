"""`medianscan capture | retake | new-roll | flat | pause | resume | scan-roll | stop-roll | stop-tiles | status`:
talk to a running daemon through its control socket, from a shell, a script or a desktop shortcut."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medianscan.capture.control_client import client_socket_paths, request
from medianscan.capture.events import DEFAULT_WAIT, WAIT
from medianscan.cli.following import follow, tile_run_lines
from medianscan.config.loader import load_config
from medianscan.errors import MedianscanError
from medianscan.records import FilmRecord
from medianscan.vocabulary import FIRING, Request
from medianscan.wording import counted, unnamed


@dataclass(frozen=True)
class Command:
    request: Request  # what it asks the daemon
    help: str  # a phrase for `medianscan --help`
    description: str  # a sentence for `medianscan COMMAND --help`


COMMANDS: dict[str, Command] = {  # CLI name -> the command
    "capture": Command(
        "capture", "fire a burst, as the footswitch does", "Ask the running daemon to fire a burst, as a press does."
    ),
    "trigger": Command("capture", "the same as capture", "Ask the running daemon to fire a burst (as `capture`)."),
    "retake": Command(
        "retake",
        "set the last stack aside in discarded/, nothing deleted",
        "Ask the running daemon to set the roll's last stack aside in discarded/, to shoot that negative again.",
    ),
    "new-roll": Command(
        "new-roll",
        "start a new roll folder, with its film",
        "Ask the running daemon to start a new roll folder; the film given here goes into every DNG of the roll.",
    ),
    "flat": Command(
        "flat",
        "shoot a flat field (the bare light, no film) for this roll's later negatives",
        "Ask the running daemon to shoot a flat field: the bare light, no film in the holder.",
    ),
    "pause": Command(
        "pause", "ignore captures until resume", "Ask the running daemon to ignore captures until resume."
    ),
    "resume": Command("resume", "accept captures again", "Ask the running daemon to accept captures again."),
    "scan-roll": Command(
        "scan-roll",
        "run the strip on the rig: advance, find, centre, burst, to its end",
        "Ask the running daemon to run the strip under the lens on its rig (rig: in the config): advance, let the "
        "view settle, find the frame in live view, centre it, shoot its burst, and on until the strip ends. "
        "Prints a line per strip frame as the run finishes with it (found, centred, shot, blended; a blank "
        "skipped), then the run's summary; exits 0 when the strip ended by itself, 1 when the run stopped (the reason "
        "is printed; fix it and run scan-roll again: it carries on from the frame in view).",
    ),
    "stop-roll": Command(
        "stop-roll",
        "stop the roll run between frames",
        "Ask the running daemon to stop its roll run after the frame under way; the film stays where it is.",
    ),
    "stop-tiles": Command(
        "stop-tiles",
        "stop the tile run between tiles",
        "Ask the running daemon to stop its tile run (scan-tiles) after the tile under way; the stage stays where "
        "it is, the tiles shot stay, and scan-tiles again shoots the missing ones.",
    ),
    "status": Command(
        "status",
        "what the running daemon is doing: camera, roll, next negative, queue, the last stacks",
        "Show what the running daemon is doing: its camera and locked settings, the roll (where it is, its flat "
        "field), the next negative, the blend queue, the free disk and the last stacks.",
    ),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, command in COMMANDS.items():
        action = command.request
        parser = sub.add_parser(name, help=f"{command.help} (running daemon)", description=command.description)
        parser.add_argument(
            "--socket", type=Path, metavar="PATH", help="the daemon's control socket (default: found automatically)"
        )
        parser.add_argument(
            "--config", type=Path, metavar="FILE", help="read triggers.socket and library from this file"
        )
        wait = DEFAULT_WAIT.get(action, WAIT)
        why = (
            ": a roll run may be long" if action == "scan-roll" else ": a burst may be long" if action in FIRING else ""
        )
        parser.add_argument(
            "--timeout", type=float, metavar="SECONDS", help=f"seconds to wait for the daemon's answer ({wait:g}{why})"
        )
        if name == "status":
            parser.add_argument("--json", action="store_true", help="print the daemon's answer as JSON")
        if name == "new-roll":
            for f in dataclasses.fields(FilmRecord):
                flag = "--" + f.name.replace("_", "-")
                kind, metavar = (int, "NUMBER") if f.name == "iso" else (str, "TEXT")
                parser.add_argument(flag, dest=f"film_{f.name}", type=kind, metavar=metavar, help=_FILM_HELP[f.name])
        parser.set_defaults(handler=run, control=name)


_FILM_HELP = {
    "film": 'the film, e.g. "Ilford HP5 Plus 400" (in every DNG of the roll, as AnalogExif XMP)',
    "film_maker": "its maker",
    "film_type": '"B&W negative", "color negative" or "slide"',
    "iso": "the speed it was shot at",
    "camera": "the film camera",
    "lens": "the lens it was shot with",
    "developer": 'e.g. "ID-11 1+1"',
    "process": 'e.g. "C-41" or "push +1"',
    "lab": "who developed it",
    "notes": "anything else",
}


def film_of(args: argparse.Namespace) -> FilmRecord:
    """The film fields given on the command line (the config's `film` fills the rest, in the daemon), checked
    here, where they enter: a byte that is not UTF-8 or a control character is refused with the reason."""
    given = {f.name: getattr(args, f"film_{f.name}", None) for f in dataclasses.fields(FilmRecord)}
    try:
        return FilmRecord.from_json({k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise MedianscanError(f"new-roll: {exc}") from None


def find_socket(args: argparse.Namespace) -> Path:
    """--socket, else the first socket that exists where a daemon would put it."""
    if args.socket is not None:
        return Path(args.socket)
    candidates = client_socket_paths(load_config(args.config))
    for path in candidates:
        if path.exists():
            return path
    looked = ", ".join(str(p) for p in candidates)
    run_it = "medianscan run" + (f" --config {args.config}" if args.config else "")
    point = (
        "give its socket with --socket PATH"
        if args.config
        else ("point at it with --config FILE (the config it runs with, for its triggers.socket) or --socket PATH")
    )
    raise MedianscanError(
        f"no running medianscan found (looked for {looked}); start it (`systemctl start medianscan` or "
        f"`{run_it}`), or if it runs elsewhere, {point}"
    )


def run(args: argparse.Namespace) -> int:
    """Print the daemon's own answer: what it did, queued or ignored; non-zero when it did not do it."""
    action = COMMANDS[args.control].request
    fields: dict[str, Any] = {}
    if action == "new-roll" and (film := film_of(args).to_json()):
        fields["film"] = film
    path = find_socket(args)
    if action == "scan-roll":
        reply = scan_roll(path, args.timeout)
    else:
        reply = request(path, action, timeout=args.timeout, **fields)
    if not reply.get("ok"):  # the daemon's answers are sentences of their own: no prefix to double
        print(f"medianscan: {reply.get('error', f'{action}: the daemon refused it')}", file=sys.stderr)
        return 1
    if action != "status":
        print(reply.get("text", f"{action}: done"))
        return 0
    status = reply.get("status", {})
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        sys.stdout.write(render_status(status))
    return 0


def scan_roll(path: Path, timeout: float | None) -> dict[str, Any]:
    """`scan-roll`: the run's answer, with a line printed for each strip frame as the run finishes with it (found,
    centred, shot, blended; a blank skipped), read from the daemon's status while the answer is awaited."""
    before = _roll_frames(path)[0]  # the last run's start: its frames are not this run's
    said: set[int] = set()
    return follow(path, "scan-roll", timeout, lambda over: _say_frames(path, before, said, every=over))


def _roll_frames(path: Path) -> tuple[float | None, list[dict[str, Any]]]:
    """(the roll run's start, its frames) from the daemon's status; (None, []) from a daemon that says neither."""
    try:
        status = request(path, "status").get("status") or {}
    except MedianscanError:
        return None, []
    frames = status.get("roll_frames")
    return status.get("roll_run_started"), [f for f in frames if isinstance(f, dict)] if isinstance(
        frames, list
    ) else []


def _say_frames(path: Path, before: float | None, said: set[int], *, every: bool) -> None:
    """Print this run's frames not printed yet, in order, up to the first not settled (blended, failed, a blank
    skipped), or `every` one at the run's end (a blend still under way says so)."""
    started, frames = _roll_frames(path)
    if started is None or started == before:
        return
    for frame in frames:  # in strip order: a blank skipped waits for the blend of the frame before it
        number = frame.get("strip_frame")
        if not isinstance(number, int) or number in said:
            continue
        if not (every or frame.get("settled")):
            return
        said.add(number)
        print(frame.get("text"), flush=True)


def _seconds(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else "-"


def _bytes(value: Any) -> str:
    if not isinstance(value, int | float):
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{value:.0f} B"
        value /= 1000
    return ""  # pragma: no cover - the loop always returns


def render_status(status: dict[str, Any]) -> str:
    """The daemon's status as lines for a person; keys this version does not know are shown as they are, and
    what is not there (no console, no bracket under way) is left out, never shown as "None"."""
    rest = {k: v for k, v in status.items() if v is not None}
    lines = _watch_lines(rest)
    cam = rest.pop("camera", None)
    if isinstance(cam, dict):
        lines.append(("camera", _camera_text(cam)))
    settings = rest.pop("settings", None)
    if isinstance(settings, dict):
        lines.append(("settings", ", ".join(f"{k}={v}" for k, v in settings.items()) or "none locked"))
    if "library" in rest:
        lines.append(("library", str(rest.pop("library"))))
    if {"roll", "negative", "frame", "next_negative"} & rest.keys():
        lines += _roll_lines(rest, knows_flat="flat" in status)
    group = rest.pop("bracket_group", None)
    flags = [name for name in ("paused", "busy") if rest.pop(name, False)]
    if flags:
        state = ", ".join("capturing" if f == "busy" else f for f in flags)
        lines.append(("state", state + (f" (bracket group {group[0]} of {group[1]}, {group[2]})" if group else "")))
    q = rest.pop("queue", None)
    if isinstance(q, dict):
        lines.append(("queue", _queue_text(q)))
    if "disk_free_bytes" in rest:
        lines.append(("disk free", _bytes(rest.pop("disk_free_bytes"))))
    if "console" in rest:
        lines.append(("console", str(rest.pop("console"))))
    message = rest.pop("message", None)
    if message:
        lines.append(("message", str(message)))
    recent = rest.pop("recent", None)
    attention = rest.pop("attention", None)
    waiting = rest.pop("waiting", None)
    rest.pop("roll_run_started", None)
    roll_frames = rest.pop("roll_frames", None)
    run_lines = _roll_frame_lines(roll_frames, under_way="roll_run" in rest) + tile_run_lines(
        rest.pop("tile_run", None)
    )
    for key, value in rest.items():
        lines.append((key.replace("_", " "), json.dumps(value) if isinstance(value, dict | list) else str(value)))
    width = max((len(k) for k, _ in lines), default=0)
    out = [f"{k:<{width}}  {v}" for k, v in lines]
    return "\n".join([*out, *run_lines, *_stack_lists(attention, waiting, recent)]) + "\n"


def _roll_frame_lines(frames: Any, *, under_way: bool) -> list[str]:
    """The roll run's frames, a line each: the run under way, or the last one."""
    if not isinstance(frames, list | tuple) or not frames:
        return []
    head = "roll run, frame by frame:" if under_way else "last roll run, frame by frame:"
    return [head, *(f"  {f.get('text')}" for f in frames if isinstance(f, dict))]


def _roll_lines(rest: dict[str, Any], *, knows_flat: bool) -> list[tuple[str, str]]:
    """The roll (where it is, its flat field: said when the daemon is one that reports it) and its negatives (the
    last, the next, raws per burst)."""
    roll = rest.pop("roll", None)
    folder = rest.pop("roll_folder", None)
    flat = rest.pop("flat", None)
    negative = rest.pop("negative", None) or rest.pop("frame", None)  # "frame": what older daemons call it
    upcoming = rest.pop("next_negative", None)
    per = rest.pop("frames_per_burst", None)
    if roll is None:
        text = "none yet (the first press starts one)"
    else:
        text = str(roll) + (f" in {folder}" if folder else "")
        if knows_flat:
            text += f"; flat field {flat}" if flat else "; no flat field"
    negatives = (
        ", ".join([*([f"last {negative}"] if negative else []), *([f"next {upcoming}"] if upcoming else [])])
        or "none yet"
    )
    if isinstance(per, int) or str(per).isdigit():  # an older daemon says the bare number
        per = f"{per} raws per burst"
    return [("roll", text), ("negatives", negatives + (f" ({per})" if per else ""))]


def _stack_lists(attention: Any, waiting: Any, recent: Any) -> list[str]:
    """The stacks that need the operator, the folders that wait, and the last stacks, a line each."""
    out = []
    if isinstance(attention, list | tuple) and attention:
        out.append("need attention (failed or cut off):")
        out += [f"  {e.get('stack')}  {e.get('state')}: {_reason(e)}" for e in attention if isinstance(e, dict)]
    if isinstance(waiting, dict) and waiting:
        out.append("waiting:")
        out += [f"  {folder}: {why}" for folder, why in waiting.items()]
    if isinstance(recent, list | tuple) and recent:
        out.append("last stacks:")
        out += ["  " + _stack_line(entry) for entry in recent]
    return out


def _reason(entry: dict[str, Any]) -> str:
    """Why a stack needs attention, its name said once (an older daemon's reason repeats it)."""
    return unnamed(str(entry.get("reason")), Path(str(entry.get("stack"))).name)


def _watch_lines(rest: dict[str, Any]) -> list[tuple[str, str]]:
    """A hot folder's own lines: what it watches, and its tally since it started."""
    lines: list[tuple[str, str]] = [(key, str(rest.pop(key))) for key in ("mode", "folder", "group") if key in rest]
    if "blends" not in rest:
        return lines
    waiting = rest.get("waiting")
    more = f", {len(waiting)} waiting (listed below)" if isinstance(waiting, dict) and waiting else ""
    return [*lines, ("stacks", _watch_stacks_text(rest) + more)]


def _watch_stacks_text(rest: dict[str, Any]) -> str:
    """The hot folder's tally since it started: blends written (and of them, blended again), stacks found done
    (the queue line says what is blending, the attention list what failed)."""
    started = rest.pop("blends", 0)
    blended, again, before = rest.pop("blended", None), rest.pop("reblended", 0), rest.pop("blended_before", 0)
    if blended is None:  # an older watcher: blends started only
        return f"{counted(started, 'blend')} started"
    text = f"{blended} blended" + (f" ({again} of them again: their files changed)" if again else "")
    return text + (f", {before} skipped (blended before, unchanged)" if before else "")


def _camera_text(cam: dict[str, Any]) -> str:
    where = f" ({cam['port']})" if cam.get("port") else ""
    text = f"{cam.get('model') or 'no camera'}{where}: {cam.get('state', 'state unknown')}"
    text += f", battery {cam['battery']}" if cam.get("battery") else ""
    return text + (f": {cam['error']}" if cam.get("error") else "")


def _queue_text(q: dict[str, Any]) -> str:
    text = f"{q.get('waiting', 0)} waiting, {q.get('blending', 0)} blending"
    text += (f", {q['stitching']} stitching" if q.get("stitching") else "") + f" (room for {q.get('capacity', '?')})"
    return text + ("; FULL: captures wait for the blends" if q.get("full") else "")


# A tiled negative's stitch state (library.tile_set.StitchState) as its line in the last stacks says it.
_STITCH = {"pending": "not stitched yet", "stitching": "stitching", "stitched": "stitched", "failed": "stitch failed"}


def _stack_line(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    tiles = entry.get("tiles")
    if isinstance(tiles, int):  # a negative shot in tiles: each tile a burst of its own, the negative stitched
        parts = [f"{entry.get('stack', '?')}: {counted(tiles, 'tile')}, {_STITCH.get(str(entry.get('state')), '?')}"]
    else:
        parts = [str(entry.get("stack", "?")), str(entry.get("state", "?"))]
    if entry.get("frames") is not None:
        parts.append(f"{entry['frames']} frames")
    if entry.get("capture_seconds") is not None:
        parts.append(f"capture {_seconds(entry['capture_seconds'])}")
    if entry.get("blend_seconds") is not None:
        parts.append(f"{'stitch' if isinstance(tiles, int) else 'blend'} {_seconds(entry['blend_seconds'])}")
    if isinstance(entry.get("noise_ratio"), int | float):
        parts.append(f"noise x{entry['noise_ratio']:.2f}")
    if isinstance(entry.get("snr"), int | float):
        target = entry.get("snr_target")
        of = f" of {target:.0f}" if isinstance(target, int | float) else ""
        parts.append(f"SNR {entry['snr']:.0f}{of} in the raws' darkest tenth")  # a negative's densest: its noisiest
    if entry.get("snr_short"):
        parts.append(str(entry["snr_short"]))
    for key in ("error", "note"):
        if entry.get(key):
            parts.append(f"{key}: {entry[key]}")
    return "  ".join(parts)
