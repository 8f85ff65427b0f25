"""The typed records that cross stages and processes: what a burst did, a file left out of a blend, and a
blend's record.

The blend worker returns a BlendRecord (pickled through its pipe); the daemon stores it in the stack's manifest
(JSON, versioned), the watch service and status read it. Each is written and read by the one rule of
`record_json` (what differs, such as the digits kept, is declared on the field). Nothing here opens a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from medianscan import wording
from medianscan.film import FilmRecord
from medianscan.record_json import JsonRecord, from_json, stored, to_json

__all__ = [  # FilmRecord too: it lives in medianscan.film, and is still taken from here
    "RECORD_VERSION",
    "BlendRecord",
    "BracketGroup",
    "BracketRecord",
    "BurstRecord",
    "CameraIdentity",
    "FilmRecord",
    "FlatRecord",
    "FramesRecord",
    "LeftOut",
    "PairRatio",
    "SnrFigures",
]


@dataclass(frozen=True)
class LeftOut:
    """A file of the stack that is not blended, and why (named in a notice and in the sidecar)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


RECORD_VERSION = 1


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
class BracketRecord(JsonRecord):
    """How a bracket was merged, for the sidecar and the manifest."""

    WHAT: ClassVar[str] = "a bracket record"

    groups: tuple[BracketGroup, ...]
    ratios: tuple[PairRatio, ...]
    roll_off: tuple[float, float]
    scale: float  # output DN per DN of the longest group
    white_level: int
    baseline_exposure_ev: float
    clipped_share: float  # photosites clipped even in the shortest group (clipped in the merge too)
    shadow_noise_vs_longest: float | None
    shadow_noise_vs_shortest: float | None


@dataclass(frozen=True)
class FlatRecord(JsonRecord):
    """The flat-field correction a blend got: which master flat (and its frames), the gains applied, the dust
    photosites taken from the flat's local value, and how clipping was avoided."""

    WHAT: ClassVar[str] = "a flat record"

    source: Path
    frames_sha256: tuple[str, ...] = field(metadata=stored(absent=()))
    gain_range: tuple[float, float] = field(metadata=stored(digits=4))
    dust_photosites: int
    clip: str  # "headroom": WhiteLevel raised (and BaselineExposure set); "scaled": gains scaled down to fit
    white_level: int
    baseline_exposure_ev: float


@dataclass(frozen=True)
class BlendRecord(JsonRecord):
    """What a blend wrote and what went into it. It crosses from the blend worker to the daemon (pickled), goes
    into the stack's manifest (`to_json`, read back with `from_json`), the watch service and status."""

    WHAT: ClassVar[str] = "a blend record"

    stack: Path
    output: Path
    sidecar: Path
    extra_outputs: tuple[Path, ...] = field(metadata=stored(absent=()))
    frames: tuple[Path, ...]
    dropped: tuple[LeftOut, ...] = field(metadata=stored(keys={"path": "frame"}, absent=()))  # rejected, and why
    seconds: float = field(metadata=stored(digits=3))
    noise_ratio: float | None = field(
        metadata=stored(digits=4)
    )  # blend noise / one frame's (see blend.measuring.noise)
    timings: dict[str, float] = field(default_factory=dict, metadata=stored(digits=4))
    ignored: tuple[LeftOut, ...] = field(default=(), metadata=stored(keys={"path": "file"}))  # not frames of it
    clipped: dict[str, float] = field(default_factory=dict, metadata=stored(digits=6))  # colour -> share at white
    flat: FlatRecord | None = None  # the flat-field correction, when one was applied
    bracket: BracketRecord | None = None  # a multi-exposure merge: its groups, ratios and noise
    warnings: tuple[str, ...] = ()  # what the operator must know of a blend that was written (one sentence each)
    snr: float | None = field(default=None, metadata=stored(digits=1))  # `frames: auto`: in the densest tenth
    version: int = RECORD_VERSION


@dataclass(frozen=True)
class FramesRecord(JsonRecord):
    """How many frames a `frames: auto` burst shot, and why: the blend's SNR wanted in the negative's densest tenth,
    what the first frames measured there (one frame's signal above black, its noise from frame differences, in
    the colour that limits), the frames predicted and shot, and the SNR that many frames give."""

    WHAT: ClassVar[str] = "a frames record"

    target: float
    single_snr: float = field(metadata=stored(digits=2))
    signal: float = field(metadata=stored(digits=2))  # DN above black
    sigma: float = field(metadata=stored(digits=3))  # DN, one frame's noise
    colour: str  # the colour that limits ("B": the orange mask's)
    predicted: int
    shot: int
    expected_snr: float = field(metadata=stored(digits=1))  # what `shot` frames give by the method's efficiency
    least: int
    most: int
    measure_seconds: float = field(default=0.0, metadata=stored(digits=4))  # CPU the measuring took (decoding)

    @property
    def reached(self) -> bool:
        return self.expected_snr >= self.target * 0.999

    def said(self) -> str:
        """'dense negative: SNR 152 reached' (wording.frames_count: the answer's words)."""
        return wording.frames_count(self)


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
            None if count.reached else wording.frames_count(count),
        )


@dataclass(frozen=True)
class CameraIdentity(JsonRecord):
    """Which body: libgphoto2's model name, its port ('usb:001,004') and its serial number ('' if unknown)."""

    WHAT: ClassVar[str] = "a camera identity"

    model: str
    port: str
    serial: str = field(metadata=stored(absent=""))


@dataclass
class BurstRecord:
    """What one burst did: the frames on disk, the settings read back before it, sizes and timings. Stored in the
    stack's manifest with its files named relative to the stack folder."""

    stack: Path = field(metadata=stored(paths="folder"))
    frames: list[Path] = field(default_factory=list, metadata=stored(paths="name"))
    jpegs: list[Path] = field(default_factory=list, metadata=stored(paths="name"))
    settings: dict[str, str] = field(default_factory=dict)  # config key -> value read back from the camera
    sizes: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    started: float = 0.0  # time.time() at the start
    seconds: float = field(default=0.0, metadata=stored(digits=6))
    per_frame_seconds: list[float] = field(default_factory=list, metadata=stored(digits=6))
    error: str | None = None
    camera: CameraIdentity | None = None
    camera_files: list[str] = field(default_factory=list)  # 'folder/name' on the camera, in arrival order
    set_aside: list[LeftOut] = field(  # camera files kept apart: not this burst's frames
        default_factory=list, metadata=stored(keys={"path": "file"}, paths="relative")
    )
    spares: list[LeftOut] = field(  # its shots past the frames wanted, kept apart (spares/)
        default_factory=list, metadata=stored(keys={"path": "file"}, paths="relative")
    )
    spares_deleted: list[str] = field(default_factory=list)  # 'folder/name' of those deleted from the camera unfetched
    strategy: str = ""  # how it was fired (capture, trigger, native), and why: "trigger: ..."
    auto: FramesRecord | None = None  # `frames: auto`: how many frames, and why

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the stack manifest; file names are relative to the stack folder."""
        return to_json(self, folder=self.stack)

    @classmethod
    def from_json(cls, data: object, folder: Path) -> BurstRecord:
        """The record `to_json` wrote, its files taken in `folder` (the stack folder as it is now: a retake may
        have moved it); a damaged one is a ValueError."""
        return from_json(cls, data, what="a burst record", folder=folder)
