"""The typed records that cross stages and processes: what a burst did, a file left out of a blend, and a
blend's record.

The blend worker returns a BlendRecord (pickled through its pipe); the daemon stores it in the stack's manifest
(JSON, versioned), the watch service and status read it. Nothing here opens a file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LeftOut:
    """A file of the stack that is not blended, and why (named in a notice and in the sidecar)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


RECORD_VERSION = 1
TEXT_LIMIT = 200  # characters of a film field
NOTES_LIMIT = 2000  # characters of the notes


def text_problem(field_name: str, value: str, *, multiline: bool = False) -> str | None:
    """Why `value` cannot be a free-text field that every DNG of a roll will carry in its XMP (None: it can):
    text that is not valid Unicode (a lone surrogate, from a byte that is not UTF-8), characters XML forbids (NUL,
    other control characters, U+FFFE, U+FFFF), line breaks in a one-line field, or too much of it."""
    limit = NOTES_LIMIT if multiline else TEXT_LIMIT
    if len(value) > limit:
        return f"{field_name} is {len(value):,} characters long; at most {limit:,} are kept with a roll"
    for position, char in enumerate(value):
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            return f"{field_name} is not valid text at character {position + 1} (a byte that is not UTF-8?)"
        allowed_break = multiline and char in "\t\n\r"
        if (code < 0x20 or 0x7F <= code < 0xA0 or code in (0xFFFE, 0xFFFF)) and not allowed_break:
            return f"{field_name} holds a control character (U+{code:04X}) at character {position + 1}"
    return None


def clean_text(value: str, *, multiline: bool = False) -> str:
    """`value` with whatever `text_problem` would refuse replaced (U+FFFD) and cut to its limit: for records
    accepted before the rule existed, so that nothing already stored can make a later blend fail."""
    kept = "".join(char if text_problem("", char, multiline=multiline) is None else "\ufffd" for char in value)
    return kept[: NOTES_LIMIT if multiline else TEXT_LIMIT]


@dataclass(frozen=True)
class FilmRecord:
    """What a roll is: the film and how it was shot and developed, as the operator gives it at `new-roll` (or the
    config's `film` defaults). Every DNG of the roll carries it (AnalogExif XMP), and so does every sidecar."""

    film: str | None = None  # "Ilford HP5 Plus 400"
    film_maker: str | None = None  # "Ilford"
    film_type: str | None = None  # "B&W negative", "color negative", "slide"
    iso: int | None = None  # the box speed, or the speed it was shot at
    camera: str | None = None  # the film camera, "Nikon F3"
    lens: str | None = None
    developer: str | None = None  # "ID-11 1+1"
    process: str | None = None  # "C-41", "E-6", "push +1"
    lab: str | None = None
    notes: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: object, *, stored: bool = False) -> FilmRecord:
        """A film record from JSON; an unknown key, a wrong type or text `text_problem` refuses is a ValueError
        naming it. A `stored` record (a roll's, accepted before) has such text cleaned instead."""
        if not isinstance(data, dict):
            raise ValueError('a film record is a JSON object such as {"film": "Ilford HP5 Plus 400"}')
        known = {f.name: f for f in dataclasses.fields(cls)}
        cleaned: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown film field {str(key)[:40]!r} (known: {', '.join(known)})")
            if key == "iso":
                whole = isinstance(value, int) and not isinstance(value, bool)
                if value is not None and not (whole and 0 < value < 10**6):
                    raise ValueError(f"iso must be a whole number from 1 to 999999, not {str(value)[:40]!r}")
                cleaned[key] = value
            elif value is not None and not isinstance(value, str):
                raise ValueError(f"{key} must be text, not {type(value).__name__}")
            elif isinstance(value, str):
                multiline = key == "notes"
                problem = text_problem(key, value, multiline=multiline)
                if problem is not None and not stored:
                    raise ValueError(problem)
                cleaned[key] = clean_text(value, multiline=multiline).strip() or None
        return cls(**cleaned)

    def merged_over(self, defaults: FilmRecord) -> FilmRecord:
        """These fields, and the defaults' where these say nothing."""
        return FilmRecord(**(defaults.to_json() | self.to_json()))


@dataclass(frozen=True)
class BracketGroup:
    """One exposure of a bracket: its shutter label, true time and frames."""

    shutter: str
    seconds: float
    frames: tuple[str, ...]


@dataclass(frozen=True)
class PairRatio:
    """The exposure ratio of two neighbouring groups: longer over shorter, nominal (labels) and measured."""

    shorter: str
    longer: str
    nominal: float
    measured: dict[str, float]  # CFA colour -> ratio
    pooled: tuple[str, ...] = ()  # colours too clipped to measure alone: they take the ratio of all colours


@dataclass(frozen=True)
class BracketRecord:
    """How a bracket was merged, for the sidecar and the manifest."""

    groups: tuple[BracketGroup, ...]
    ratios: tuple[PairRatio, ...]
    roll_off: tuple[float, float]
    scale: float  # output DN per DN of the longest group
    white_level: int
    baseline_exposure_ev: float
    clipped_share: float  # photosites clipped even in the shortest group (clipped in the merge too)
    shadow_noise_vs_longest: float | None
    shadow_noise_vs_shortest: float | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BracketRecord:
        return cls(
            groups=tuple(BracketGroup(g["shutter"], float(g["seconds"]), tuple(g["frames"])) for g in data["groups"]),
            ratios=tuple(
                PairRatio(
                    r["shorter"],
                    r["longer"],
                    float(r["nominal"]),
                    {k: float(v) for k, v in r["measured"].items()},
                    tuple(r.get("pooled", ())),
                )
                for r in data["ratios"]
            ),
            roll_off=(float(data["roll_off"][0]), float(data["roll_off"][1])),
            scale=float(data["scale"]),
            white_level=int(data["white_level"]),
            baseline_exposure_ev=float(data["baseline_exposure_ev"]),
            clipped_share=float(data["clipped_share"]),
            shadow_noise_vs_longest=data.get("shadow_noise_vs_longest"),
            shadow_noise_vs_shortest=data.get("shadow_noise_vs_shortest"),
        )


@dataclass(frozen=True)
class FlatRecord:
    """The flat-field correction a blend got: which master flat (and its frames), the gains applied, the dust
    photosites taken from the flat's local value, and how clipping was avoided."""

    source: Path
    frames_sha256: tuple[str, ...]
    gain_range: tuple[float, float]
    dust_photosites: int
    clip: str  # "headroom": WhiteLevel raised (and BaselineExposure set); "scaled": gains scaled down to fit
    white_level: int
    baseline_exposure_ev: float

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "frames_sha256": list(self.frames_sha256),
            "gain_range": [round(self.gain_range[0], 4), round(self.gain_range[1], 4)],
            "dust_photosites": self.dust_photosites,
            "clip": self.clip,
            "white_level": self.white_level,
            "baseline_exposure_ev": self.baseline_exposure_ev,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FlatRecord:
        low, high = data["gain_range"]
        return cls(
            source=Path(data["source"]),
            frames_sha256=tuple(str(s) for s in data.get("frames_sha256", [])),
            gain_range=(float(low), float(high)),
            dust_photosites=int(data["dust_photosites"]),
            clip=str(data["clip"]),
            white_level=int(data["white_level"]),
            baseline_exposure_ev=float(data["baseline_exposure_ev"]),
        )


@dataclass(frozen=True)
class BlendRecord:
    """What a blend wrote and what went into it. It crosses from the blend worker to the daemon (pickled), goes
    into the stack's manifest (`to_json`, read back with `from_json`), the watch service and status."""

    stack: Path
    output: Path
    sidecar: Path
    extra_outputs: tuple[Path, ...]
    frames: tuple[Path, ...]
    dropped: tuple[LeftOut, ...]  # frames rejected (by the checks, or unreadable) with the reason
    seconds: float
    noise_ratio: float | None  # noise of the blend / noise of one frame, measured (see blend.noise)
    timings: dict[str, float] = field(default_factory=dict)
    ignored: tuple[LeftOut, ...] = ()  # files of the stack that are not frames of this blend, with the reason
    clipped: dict[str, float] = field(default_factory=dict)  # colour -> share of photosites at white, worst frame
    flat: FlatRecord | None = None  # the flat-field correction, when one was applied
    bracket: BracketRecord | None = None  # a multi-exposure merge: its groups, ratios and noise
    warnings: tuple[str, ...] = ()  # what the operator must know of a blend that was written (one sentence each)
    snr: float | None = None  # `frames: auto`: the blend's SNR in the negative's densest tenth, measured on it
    version: int = RECORD_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stack": str(self.stack),
            "output": str(self.output),
            "sidecar": str(self.sidecar),
            "extra_outputs": [str(p) for p in self.extra_outputs],
            "frames": [str(p) for p in self.frames],
            "dropped": [{"frame": str(d.path), "reason": d.reason} for d in self.dropped],
            "ignored": [{"file": str(i.path), "reason": i.reason} for i in self.ignored],
            "seconds": round(self.seconds, 3),
            "noise_ratio": None if self.noise_ratio is None else round(self.noise_ratio, 4),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "clipped": {k: round(v, 6) for k, v in self.clipped.items()},
            "flat": None if self.flat is None else self.flat.to_json(),
            "bracket": None if self.bracket is None else self.bracket.to_json(),
            "warnings": list(self.warnings),
            "snr": None if self.snr is None else round(self.snr, 1),
        }

    @classmethod
    def from_json(cls, data: object) -> BlendRecord:
        """The record `to_json` wrote (this version or an earlier one); a damaged one is a ValueError."""
        if not isinstance(data, dict):
            raise ValueError("a blend record is a JSON object")
        try:
            noise = data.get("noise_ratio")
            return cls(
                stack=Path(data["stack"]),
                output=Path(data["output"]),
                sidecar=Path(data["sidecar"]),
                extra_outputs=tuple(Path(p) for p in data.get("extra_outputs", [])),
                frames=tuple(Path(p) for p in data["frames"]),
                dropped=tuple(LeftOut(Path(d["frame"]), str(d["reason"])) for d in data.get("dropped", [])),
                seconds=float(data["seconds"]),
                noise_ratio=None if noise is None else float(noise),
                timings={str(k): float(v) for k, v in data.get("timings", {}).items()},
                ignored=tuple(LeftOut(Path(i["file"]), str(i["reason"])) for i in data.get("ignored", [])),
                clipped={str(k): float(v) for k, v in data.get("clipped", {}).items()},
                flat=None if data.get("flat") is None else FlatRecord.from_json(data["flat"]),
                bracket=None if data.get("bracket") is None else BracketRecord.from_json(data["bracket"]),
                warnings=tuple(str(w) for w in data.get("warnings", [])),
                snr=None if data.get("snr") is None else float(data["snr"]),
                version=int(data.get("version", RECORD_VERSION)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a blend record ({exc})") from None


THIN = 0.4  # a negative one frame of which has this share of the target SNR is thin: a few frames reach it


@dataclass(frozen=True)
class FramesRecord:
    """How many frames a `frames: auto` burst shot, and why: the blend's SNR wanted in the negative's densest tenth,
    what the first frames measured there (one frame's signal above black, its noise from frame differences, in
    the colour that limits), the frames predicted and shot, and the SNR that many frames give."""

    target: float
    single_snr: float
    signal: float  # DN above black
    sigma: float  # DN, one frame's noise
    colour: str  # the colour that limits ("B": the orange mask's)
    predicted: int
    shot: int
    expected_snr: float  # what `shot` frames give by the method's efficiency
    least: int
    most: int
    measure_seconds: float = 0.0  # CPU the measuring took, off the camera thread (mostly decoding the raws)

    @property
    def reached(self) -> bool:
        return self.expected_snr >= self.target * 0.999

    def said(self) -> str:
        """'dense negative: SNR 152 reached' (the answer's words)."""
        kind = "thin negative" if self.single_snr >= THIN * self.target else "dense negative"
        if self.reached:
            return f"{kind}: SNR {self.expected_snr:.0f} reached"
        return f"{kind}: SNR {self.expected_snr:.0f} of {self.target:.0f} at the most frames, {self.most}"

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "single_snr": round(self.single_snr, 2),
            "signal": round(self.signal, 2),
            "sigma": round(self.sigma, 3),
            "colour": self.colour,
            "predicted": self.predicted,
            "shot": self.shot,
            "expected_snr": round(self.expected_snr, 1),
            "least": self.least,
            "most": self.most,
            "measure_seconds": round(self.measure_seconds, 4),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FramesRecord:
        return cls(
            float(data["target"]),
            float(data["single_snr"]),
            float(data["signal"]),
            float(data["sigma"]),
            str(data["colour"]),
            int(data["predicted"]),
            int(data["shot"]),
            float(data["expected_snr"]),
            int(data["least"]),
            int(data["most"]),
            float(data.get("measure_seconds", 0.0)),
        )


@dataclass(frozen=True)
class SnrFigures:
    """A negative's SNR in its densest tenth as status and the console show it: the blend's, measured on its
    frames (until it is blended: what its burst's count expects), the `frames: auto` target, and why the burst
    stopped short of it (it hit `max`)."""

    snr: float | None = None
    target: float | None = None
    short: str | None = None

    @classmethod
    def of(cls, burst: BurstRecord | None, blend: BlendRecord | None) -> SnrFigures:
        count = None if burst is None else burst.auto
        measured = None if blend is None else blend.snr
        if count is None:
            return cls(measured)
        return cls(
            count.expected_snr if measured is None else measured,
            count.target,
            None if count.reached else count.said(),
        )


@dataclass(frozen=True)
class CameraIdentity:
    """Which body: libgphoto2's model name, its port ('usb:001,004') and its serial number ('' if unknown)."""

    model: str
    port: str
    serial: str

    def to_json(self) -> dict[str, str]:
        return {"model": self.model, "port": self.port, "serial": self.serial}

    @classmethod
    def from_json(cls, data: object) -> CameraIdentity:
        if not isinstance(data, dict):
            raise ValueError("a camera identity is a JSON object")
        return cls(str(data["model"]), str(data["port"]), str(data.get("serial", "")))


@dataclass
class BurstRecord:
    """What one burst did: the frames on disk, the settings read back before it, sizes and timings."""

    stack: Path
    frames: list[Path] = field(default_factory=list)
    jpegs: list[Path] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # config key -> value read back from the camera
    sizes: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    started: float = 0.0  # time.time() at the start
    seconds: float = 0.0
    per_frame_seconds: list[float] = field(default_factory=list)
    error: str | None = None
    camera: CameraIdentity | None = None
    camera_files: list[str] = field(default_factory=list)  # 'folder/name' on the camera, in arrival order
    set_aside: list[LeftOut] = field(default_factory=list)  # camera files kept apart: not this burst's frames
    spares: list[LeftOut] = field(default_factory=list)  # its shots past the frames wanted, kept apart (spares/)
    spares_deleted: list[str] = field(default_factory=list)  # 'folder/name' of those deleted from the camera unfetched
    strategy: str = ""  # how it was fired (capture, trigger, native), and why: "trigger: ..."
    auto: FramesRecord | None = None  # `frames: auto`: how many frames, and why

    def to_json(self) -> dict[str, object]:
        """A plain dict for the stack manifest; file names are relative to the stack folder."""
        return {
            "stack": str(self.stack),
            "frames": [p.name for p in self.frames],
            "jpegs": [p.name for p in self.jpegs],
            "settings": dict(self.settings),
            "sizes": dict(self.sizes),
            "started": self.started,
            "seconds": round(self.seconds, 6),
            "per_frame_seconds": [round(s, 6) for s in self.per_frame_seconds],
            "error": self.error,
            "camera": self.camera.to_json() if self.camera else None,
            "camera_files": list(self.camera_files),
            "set_aside": [{"file": str(i.path.relative_to(self.stack)), "reason": i.reason} for i in self.set_aside],
            "spares": [{"file": str(i.path.relative_to(self.stack)), "reason": i.reason} for i in self.spares],
            "spares_deleted": list(self.spares_deleted),
            "strategy": self.strategy,
            "auto": None if self.auto is None else self.auto.to_json(),
        }

    @classmethod
    def from_json(cls, data: object, folder: Path) -> BurstRecord:
        """The record `to_json` wrote, its files taken in `folder` (the stack folder as it is now: a retake may
        have moved it); a damaged one is a ValueError."""
        if not isinstance(data, dict):
            raise ValueError("a burst record is a JSON object")
        try:
            camera = data.get("camera")
            return cls(
                stack=folder,
                frames=[folder / str(n) for n in data.get("frames", [])],
                jpegs=[folder / str(n) for n in data.get("jpegs", [])],
                settings={str(k): str(v) for k, v in data.get("settings", {}).items()},
                sizes={str(k): int(v) for k, v in data.get("sizes", {}).items()},
                started=float(data.get("started", 0.0)),
                seconds=float(data.get("seconds", 0.0)),
                per_frame_seconds=[float(s) for s in data.get("per_frame_seconds", [])],
                error=None if data.get("error") is None else str(data["error"]),
                camera=None if camera is None else CameraIdentity.from_json(camera),
                camera_files=[str(f) for f in data.get("camera_files", [])],
                set_aside=[LeftOut(folder / str(i["file"]), str(i["reason"])) for i in data.get("set_aside", [])],
                spares=[LeftOut(folder / str(i["file"]), str(i["reason"])) for i in data.get("spares", [])],
                spares_deleted=[str(f) for f in data.get("spares_deleted", [])],
                strategy=str(data.get("strategy", "")),
                auto=None if data.get("auto") is None else FramesRecord.from_json(data["auto"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a burst record ({exc})") from None
