"""The configuration as typed dataclasses: every option with its default, so an empty file is a working
configuration: the real camera (libgphoto2), a library in ~/Scans. The simulated camera is used only when asked
for (`camera.backend: simulated`, `medianscan demo`). `config/medianscan.yaml` documents each option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from medianscan.errors import MedianscanError
from medianscan.records import FilmRecord
from medianscan.vocabulary import Action, FlatPolicy, Method, Retention, Strategy, StrategyChoice, WhiteLevelFrom

Backend = Literal["gphoto2", "simulated"]
Editor = Literal["darktable", "rawtherapee"]


@dataclass
class SimulatedTiming:
    """How fast the simulated body is, in real time, so that a burst's wall-clock time means something. A
    `preset` gives a real body's figures (capture.camera.simulated.timing lists them); a field set here overrides
    it. Without either: shots at `seconds_per_frame`, an instant link, no continuous burst."""

    preset: str | None = None
    trigger_seconds: float | None = None  # a host-fired shot: command -> the body announces its file
    shot_seconds: float | None = None  # the interval of a host-started continuous burst
    buffer_frames: int | None = None  # raws the body holds (not yet downloaded and deleted) before it stops
    file_megabytes: float | None = None  # one raw
    link_megabytes_per_second: float | None = None  # the link, one download at a time (0: instant)
    native_burst: bool | None = None  # the body offers a host-started continuous burst
    late_shots: int | None = None  # its continuous burst stops a random 0 to this many shots after the release


@dataclass
class StripConfig:
    """A strip of negatives on the simulated copy stand, moved by the simulated rig (`rig.port: simulated`): each
    frame a picture of its own, clear film base between them and along the edges; the camera sees one frame with
    part of both neighbouring gaps. `frames: 0`: no strip (one negative per press, as without a rig)."""

    frames: int = 0
    pitch_mm: float = 38.0  # frame to frame along the strip (35 mm film: 38)
    gap_mm: float = 2.0  # the clear base between two pictures
    slip: float = 0.0  # each move's random error, as a fraction of its length (so of the pitch, for an advance)
    blank: list[int] = field(default_factory=list)  # 1-based frames left unexposed (clear base, like a gap)
    seed: int = 1
    start_mm: float = 0.0  # where frame 1 is at the start, off the centre of the view


@dataclass
class SheetConfig:
    """A sheet negative (or a 120 frame) on the simulated XY stage, larger than the camera's view: the simulated
    rig (`rig.port: simulated`) moves the stage in X and Y. The view is the sensor at the picture's scale (one
    photosite sees `mm_per_pixel` of the sheet). `picture`: a 16-bit TIFF the sheet shows (its transmission:
    grey, or RGB per photosite colour; centred on the sheet); without it a generated negative with detail
    everywhere. The stage's faults: `slip` (each move's random error per axis, a fraction of its length),
    `rotation_degrees` (its axes off square to the sensor), `backlash_mm` (lost on each reversal of an axis).
    `width_mm: 0` and no picture: no sheet."""

    width_mm: float = 0.0  # 0 with a picture: the picture's width
    height_mm: float = 0.0
    picture: Path | None = None
    mm_per_pixel: float = 0.02  # the picture's scale, so the view's mm per photosite
    slip: float = 0.0
    rotation_degrees: float = 0.0
    backlash_mm: float = 0.0
    seed: int = 1
    # a strip of 120 film along X (`negatives` above 1): each negative width_mm x height_mm (its own picture),
    # gaps of `gap_mm` +- `gap_variation_mm` (seeded) between them, the film `film_mm` high (its clear rebate above
    # and below), `leader_mm` of clear base before the first and after the last, then the bare light
    negatives: int = 1
    gap_mm: float = 4.0
    gap_variation_mm: float = 1.5
    film_mm: float = 61.0
    leader_mm: float = 15.0
    blank: list[int] = field(default_factory=list)  # 1-based negatives of the strip left unexposed

    @property
    def present(self) -> bool:
        return self.width_mm > 0 or self.picture is not None


@dataclass
class SimulatedConfig:
    """The simulated camera: a film-negative-like scene with realistic noise, deterministic by seed."""

    seed: int = 1
    width: int = 1536
    height: int = 1024
    seconds_per_frame: float = 0.0  # a shot's time when `timing` says none (cadence demos)
    timing: SimulatedTiming = field(default_factory=SimulatedTiming)
    card: Path | None = None  # where the body keeps its shots until they are deleted (default: a folder of its own)
    flicker_frame: int | None = None  # 1-based frame of each burst whose level jumps
    shifted_frame: int | None = None  # 1-based frame of each burst shifted by 2 px
    dead_after_frames: int | None = None  # the camera "drops off the bus" after this many frames
    preview_fps: float = 15.0  # live-view frames per second, as a body delivers them
    preview_focus_period_seconds: float = 8.0  # the live view drifts through focus this often (0: always sharp)
    light: float = 1.0  # the light panel's brightness (1: negatives well exposed at 1/125 s, ISO 100, f/8)
    strip: StripConfig = field(default_factory=StripConfig)
    sheet: SheetConfig = field(default_factory=SheetConfig)


@dataclass
class QuirkConfig:
    """What a body needs that its class of bodies does not (added to the built-in table, see
    capture.camera.burst.quirks): `model` is a regular expression on the model name libgphoto2 reports."""

    model: str = ""
    after_shot_seconds: float | None = None  # wait this long after a shot's files (draining events) before the next
    buffer_frames: int | None = None  # raws the body holds before it refuses to shoot
    overlap: bool | None = None  # may files be downloaded while the body exposes the next shot
    native: bool | None = None  # may its host-started continuous burst be used
    strategy: Strategy | None = None  # what `auto` picks for it
    note: str = ""  # why (shown by `camera show`)


@dataclass
class CameraConfig:
    """Which camera, and the settings locked (set, then read back) before every burst."""

    backend: Backend = "gphoto2"
    model: str | None = None  # pick by model name (substring), else autodetect
    port: str | None = None  # e.g. "usb:001,004"
    serial: str | None = None
    strategy: StrategyChoice = "auto"  # auto: the fastest the body allows (see `medianscan camera show`)
    quirks: list[QuirkConfig] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # widget name or alias -> value
    optional: list[str] = field(default_factory=list)  # settings whose absence is only a warning
    keep_jpeg: bool = False  # with RAW+JPEG, keep the JPEG beside the raw
    delete_from_camera: bool = True
    extra_shots: Literal["keep", "delete"] = "keep"  # a continuous burst's shots past the frames: spares/, or deleted
    settle_seconds: float = 3.0  # how long a set value may take to read back
    keep_alive_seconds: float = 0.0  # 0: off
    reconnect_max_seconds: float = 30.0  # backoff ceiling while the camera is gone
    simulated: SimulatedConfig = field(default_factory=SimulatedConfig)


@dataclass
class BlendConfig:
    """How each stack is combined (the same options as `medianscan blend`)."""

    method: Method = "median"
    kappa: float = 3.0  # sigma-clip: reject beyond kappa sigma
    iterations: int = 5  # sigma-clip: at most this many rounds
    winsor_fraction: float = 0.2  # winsorized: clamp this fraction at each end
    level_tolerance: float = 0.03  # a frame's mean level may differ this much (fraction) from the median
    max_shift_px: float = 0.5
    drop_bad_frames: bool = False
    tiff: bool = False
    compress: bool = False
    bracket: bool = False  # frames at two or more shutter times: blend each group, merge them (multi-exposure)
    keep_groups: bool = False  # with bracket: also write each exposure group's own blend
    white_level: WhiteLevelFrom = "darktable"  # whose white level a native raw's DNG says (blend.corrections.levels)


@dataclass
class OutputsConfig:
    """What is written beside each blend: the editors' sidecars that open a negative as a positive, inverted with
    the roll's film base (medianscan.outputs.editors)."""

    editors: list[Editor] = field(default_factory=lambda: ["darktable", "rawtherapee"])


@dataclass
class FootswitchConfig:
    """A USB pedal read through evdev (grabbed, so its keys never reach the desktop)."""

    device: str | None = None  # /dev/input/by-id/... path, or "vendor:product" in hex
    keys: dict[str, Action] = field(default_factory=lambda: {"KEY_B": "capture"})
    debounce_ms: int = 250


@dataclass
class TriggerConfig:
    footswitch: FootswitchConfig = field(default_factory=FootswitchConfig)
    socket: Path | None = None  # control socket; default: control_socket.server_socket_path
    press_during_burst: Literal["queue", "ignore"] = "queue"


@dataclass
class HooksConfig:
    """Commands run on events, with MEDIANSCAN_EVENT, MEDIANSCAN_STACK, MEDIANSCAN_FILE and MEDIANSCAN_MESSAGE set."""

    burst_done: list[str] = field(default_factory=list)
    blend_done: list[str] = field(default_factory=list)
    stitch_done: list[str] = field(default_factory=list)  # a tiled negative stitched: MEDIANSCAN_FILE is its DNG
    stitch_failed: list[str] = field(default_factory=list)  # its stitch failed (the error hook runs too)
    error: list[str] = field(default_factory=list)
    sound: Literal["auto", "off", "bell", "wav"] = "auto"  # auto: the terminal bell when run in a terminal


@dataclass
class WatchConfig:
    """The hot-folder mode: blend the stacks other tools drop into `folder`."""

    folder: Path | None = None
    group: str = "folder"  # folder | count:N | gap:SECONDS
    quiet_seconds: float = 10.0  # a folder is complete after being quiet this long
    frames: int | None = None  # group folder: blend as soon as a folder holds this many frames
    settle_seconds: float = 2.0  # without close/rename events: a file unchanged this long is complete
    polling: bool = False  # poll instead of inotify (NFS/SMB mounts, where inotify sees nothing)


@dataclass
class RollConfig:
    """What a roll needs at its start."""

    flat: FlatPolicy = "optional"  # required: no negative is shot before the roll has a flat field


@dataclass
class ConsoleConfig:
    """The operator console `medianscan run` serves: live view, capture buttons, the roll as positives."""

    listen: str | None = "127.0.0.1:8631"  # HOST:PORT; null: no console. Off loopback only with a token
    token: str | None = None  # when set, every request must carry it (needed for a non-loopback listen)
    live_fps: float = 15.0  # the most live-view frames per second asked of the body


@dataclass
class LineProtocol:
    """`rig.protocol: line`: an advancer's own commands. `move` is sent for each move, with {mm} and {steps}
    (mm x steps_per_mm) filled in, and for an XY stage (`rig.axes: xy`) {x} and {y} (mm) and {x_steps} and
    {y_steps} ({mm} is {x}); a reply matching `done` says it has stopped, one matching `error` that it failed
    (regular expressions); `hello`, when set, is sent once after opening and answered like a move."""

    move: str = "M{steps}"
    done: str = "^(OK|ok|done)"
    error: str = "^(ERR|err|error)"
    steps_per_mm: float = 80.0  # the X (roll) axis
    y_steps_per_mm: float | None = None  # null: as steps_per_mm
    hello: str | None = None

    def steps_y(self) -> float:
        return self.steps_per_mm if self.y_steps_per_mm is None else self.y_steps_per_mm


LINE_FIELDS = ("mm", "steps", "x", "y", "x_steps", "y_steps")  # what rig.line.move may hold


@dataclass
class RigConfig:
    """A film advancer or XY stage on a serial port, for `medianscan scan-roll`: it advances the strip, live view
    finds each frame, a correcting move centres it, and a burst is shot once the view is still."""

    port: str | None = None  # /dev/ttyUSB0 (any pyserial URL), or simulated; null: no rig
    protocol: Literal["grbl", "marlin", "line"] = "grbl"
    baud: int = 115200
    axes: Literal["x", "xy"] = "x"  # x: a roll rig (one axis); xy: an XY stage (move_xy)
    axis: str = "X"  # the roll's axis, the stage's X
    y_axis: str = "Y"  # the stage's Y (axes: xy)
    x_direction: Literal[1, -1] = 1  # -1: every X move is sent reversed (a motor wired the other way)
    y_direction: Literal[1, -1] = 1
    pitch_mm: float = 38.0  # frame to frame along the strip (35 mm film: 38); negative: advance the other way
    picture_mm: float = 36.0  # one picture's width along the strip (35 mm film: 36)
    view_reversed: bool = False  # a move of +mm shifts the picture rightwards in the view (not leftwards)
    boot_seconds: float = 2.5  # a board that resets when its port opens (Arduino) boots this long at most
    feed_mm_per_minute: float = 3000.0
    reply_timeout_seconds: float = 5.0  # a command's reply
    move_timeout_seconds: float = 30.0  # a move, from the command until the controller says it has stopped
    centre_tolerance: float = 0.01  # a frame off centre by more than this share of the picture's width is moved
    far: float = 0.25  # a frame found farther than this share of the pitch from where the pitch put it stops the run
    corrections: int = 4  # correcting moves per frame, at most
    settle_seconds: float = 10.0  # live view must stand still (two previews agreeing within noise) within this
    frames_without_live_view: int = 6  # frames a strip has, for a body without live view (its end is not seen)
    line: LineProtocol = field(default_factory=LineProtocol)


@dataclass
class TilesConfig:
    """`medianscan scan-tiles`: a negative larger than the view, shot in tiles on an XY stage (`rig.axes: xy`)
    calibrated by `medianscan calibrate rig`. What to cover: a film `format` (645, 6x6, 6x7, 6x8, 6x9, 6x12, 4x5),
    or `width_mm` and `height_mm`, or a grid of `columns` and `rows`; each tile `overlap` into the next."""

    format: str | None = None
    width_mm: float | None = None
    height_mm: float | None = None
    columns: int | None = None
    rows: int | None = None
    overlap: float = 0.25
    margin_mm: float = 1.0  # covered beyond the format's image area on every side
    wait_without_live_view_seconds: float = 2.0  # a body without live view: the fixed settle after each move
    strip: bool = False  # a strip of 120: after each negative, find the next along X and go on to the strip's end
    gap_mm: float = 4.0  # the strip's nominal gap between negatives (the advance: the format's width and this)
    negatives_without_live_view: int = 3  # a strip on a body without live view: negatives shot by the pitch


@dataclass
class AutoFrames:
    """`frames: auto`: each burst shoots until its blend reaches `snr` in the negative's densest tenth (the
    positive's highlights and deep colours), at least `min` and at most `max` frames."""

    snr: float = 100.0
    min: int = 3
    max: int = 25


@dataclass
class Config:
    mode: Literal["capture", "watch"] = "capture"
    library: Path = Path("~/Scans")
    roll_template: str = "{date}-roll{roll:03d}"
    negative_template: str = "frame-{negative:03d}"  # a negative's folder: the film's frame number on the roll
    frames: int | Literal["auto"] = 9  # raws per burst (per shutter value with `bracket`); auto: see auto_frames
    auto_frames: AutoFrames = field(default_factory=AutoFrames)
    bracket: list[str] = field(default_factory=list)  # multi-exposure: shutter values, a burst at each per press
    workers: int = 1  # blend worker processes
    queue_size: int = 4  # stacks waiting to blend before captures are held back
    retention: Retention = "keep"  # what happens to the raws after a verified blend
    archive: Path | None = None  # where `retention: archive` moves them
    camera: CameraConfig = field(default_factory=CameraConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    triggers: TriggerConfig = field(default_factory=TriggerConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    roll: RollConfig = field(default_factory=RollConfig)
    rig: RigConfig = field(default_factory=RigConfig)
    tiles: TilesConfig = field(default_factory=TilesConfig)
    film: FilmRecord = field(default_factory=FilmRecord)  # the defaults of every new roll's film record

    def frames_range(self) -> tuple[int, int]:
        """The fewest and the most frames a burst shoots: `frames`, or auto_frames' bounds."""
        if self.frames == "auto":
            return self.auto_frames.min, self.auto_frames.max
        return self.frames, self.frames

    def frames_said(self) -> str:
        """'9 raws per burst', or '3 to 25 raws per burst, as each negative needs for SNR 100': as status says it."""
        if self.frames == "auto":
            auto = self.auto_frames
            return f"{auto.min} to {auto.max} raws per burst, as each negative needs for SNR {auto.snr:g}"
        return f"{self.frames} raws per burst"

    def flat_frames(self) -> int:
        """A flat burst's frames: `frames`, or with auto at least 9 within its bounds (the bare light is thin:
        auto would shoot its least, and a flat's noise goes into every negative it corrects)."""
        least, most = self.frames_range()
        return least if least == most else min(most, max(least, 9))


# ----------------------------------------------------------------------------------------------------------
# The loader: generic over the dataclasses above, driven by their type hints, so a new field needs no loader
# code. It walks yaml's node tree (not the constructed dict) because only nodes carry line numbers.

GROUP_PATTERN = re.compile(r"^(folder|count:[1-9]\d*|gap:\d+(\.\d+)?)$")
DEVICE_ID_PATTERN = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")


class ConfigError(MedianscanError):
    """A configuration file that cannot be used as written; the message names the file, line and key."""
