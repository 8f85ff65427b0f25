"""A stack's files, in and out: which of a folder's files are its frames (the one rule of library.contents),
decoding them once into the stack buffer, where the outputs go and whether they fit, and the film of the roll
the stack belongs to. The plain blend (medianscan.blend.pipeline) and the bracket's (bracket_pipeline) share
these steps."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from medianscan import atomic
from medianscan.blend.corrections import flat, levels
from medianscan.blend.measuring import checks
from medianscan.blend.reading import frames, sniff
from medianscan.blend.reading.frames import Frame
from medianscan.errors import MedianscanError, StackError
from medianscan.formats import FrameKind
from medianscan.library import contents
from medianscan.library.contents import StackContents
from medianscan.library.manifest import read_manifest
from medianscan.library.roll_record import exposure_number, read_roll_record
from medianscan.outputs.dng import PREVIEW_SIZE
from medianscan.outputs.preview import Tone, render_preview, stored_preview, tone_like
from medianscan.outputs.xmp import RollPlace, film_packet
from medianscan.records import FramesRecord, LeftOut
from medianscan.vocabulary import Method
from medianscan.wording import counted

if TYPE_CHECKING:  # annotations only: the options (and the config rules behind them) stay unloaded for the stitch
    from medianscan.blend.options import BlendOptions

_EXTENSION = {"raw": ".dng", "tiff": ".tif", "jpeg": ".jpg"}


def output_paths(
    stack: Path, method: Method, kind: FrameKind, explicit: Path | None, folder: Path | None = None
) -> tuple[Path, Path]:
    """The main output and its JSON sidecar (same stem): the explicit file, else <stack name>_<method>.<ext> in
    `folder` (the batch's output folder) or in the stack itself. Absolute, whatever the working folder: the
    record that names them is read by processes started elsewhere (the daemon, the console)."""
    stack = stack.resolve()
    main = (explicit or (folder or stack) / f"{stack.name}_{method}{_EXTENSION[kind]}").resolve()
    return main, main.with_suffix(".json")


def resolve(source: Path | Sequence[Path]) -> tuple[Path, StackContents]:
    """A stack folder or a list of frame files -> (the stack folder, its contents sorted out by the one rule)."""
    if isinstance(source, (str, Path)):
        given = Path(source)  # messages name the folder as the user gave it
        if not given.is_dir():
            raise StackError(f"{given}: no such stack folder")
        folder = given.resolve()
        found = contents.read_folder(folder, sniff.inspect)
        if not found.frames and not found.unreadable:
            left = "; ".join(str(i) for i in found.ignored)
            inner = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
            hint = f"; it holds {counted(len(inner), 'folder')}: blend them with {given}/*/" if inner else ""
            raise StackError(
                f"{given}: no raw, TIFF or JPEG frames in this folder" + (f" ({left})" if left else "") + hint
            )
        return folder, found
    paths = [Path(p) for p in source]
    if not paths:
        raise StackError("no frames given")
    for path in paths:
        if not path.is_file():
            raise StackError(f"{path}: no such file or folder")
    parents = {p.resolve().parent for p in paths}
    if len(parents) > 1:
        raise StackError(f"the frames of one stack must share a folder; got {len(parents)} folders")
    found = contents.sort_out([p.absolute() for p in paths], sniff.inspect)
    if not found.frames and not found.unreadable:
        raise StackError("no raw, TIFF or JPEG frames among the files given")
    return parents.pop(), found


def roll_film(stack: Path, kind: FrameKind) -> tuple[bytes | None, dict[str, Any] | None]:
    """The film of the roll this stack is a negative of (its roll's record), as the DNG's XMP packet and the
    sidecar's record; (None, None) outside a roll with a record."""
    record = read_roll_record(stack.parent)
    if record is None:
        return None, None
    place = RollPlace(stack.parent.name, exposure_number(stack))
    sidecar = record.film.to_json() | {"roll_id": place.roll_id, "exposure_number": place.exposure_number}
    return (film_packet(record.film, place) if kind == "raw" else None), sidecar


def burst_count(stack: Path) -> FramesRecord | None:
    """How a `frames: auto` burst counted this stack's frames (its manifest's record), for the sidecar; None
    for a stack the daemon did not shoot, or shot with a fixed count."""
    if not (stack / contents.MANIFEST).is_file():
        return None
    try:
        burst = read_manifest(stack).burst
    except MedianscanError:
        return None  # the blend does not need it; the library reports a damaged manifest itself
    return None if burst is None else burst.auto


def decode_all(
    paths: Sequence[Path], kinds: Sequence[FrameKind], buffer: npt.NDArray[np.generic] | None, pool: ThreadPoolExecutor
) -> tuple[list[tuple[Frame, checks.Sample]], list[LeftOut]]:
    """Decode every frame once, spread over the cores (LibRaw releases the GIL), into the stack buffer, and take
    what the pixel checks need of it while it is hot in the cache."""

    def read(i: int) -> tuple[Frame, checks.Sample] | LeftOut:
        try:
            frame = frames.read_frame(paths[i], kinds[i], None if buffer is None else buffer[i])
        except StackError as exc:
            return LeftOut(paths[i], str(exc).removeprefix(f"{paths[i]}: "))
        return frame, checks.sample(frame)

    results = list(pool.map(read, range(len(paths))))
    decoded = [r for r in results if isinstance(r, tuple)]
    return decoded, [r for r in results if isinstance(r, LeftOut)]


def as_written(decoded: Sequence[Frame], options: BlendOptions) -> list[Frame]:
    """The frames with the white level and crop their DNG will say (`blend.white_level`, see
    medianscan.blend.corrections.levels); the checks, the clipping figures, the flat and the bracket then all
    measure against that one white."""
    return [
        dataclasses.replace(
            frame,
            layout=levels.with_camera_facts(
                frame.layout,
                frame.camera.make,
                frame.camera.model,
                frame.exposure.iso,
                options.white_level,
                shape=frame.pixels.shape,
            ),
        )
        if frame.layout is not None and not frames.is_dng_file(frame.path)
        else frame
        for frame in decoded
    ]


PLAIN_TONE = Tone(np.arange(256, dtype=np.float64))  # the plain rendering's own luminance, unchanged


def preview_tone(frame: Frame, *, same_picture: bool = False) -> Tone | None:
    """The tone of `frame`'s own embedded preview (the camera's rendering), for the blend's preview to match; None
    when the frame is no raw or has no preview, and then the blend's DNG has none either. Read before the stack
    buffer is compacted: it needs the frame's pixels.

    A blend that is the `same_picture` as its frames (no flat field, no bracket merge) carries the camera's own
    preview as stored (write.write_outputs) wherever it can be read back, and then no rendering of ours is made:
    the tone (a rendering and a histogram match, 30-70 ms of CPU) is not measured, PLAIN_TONE only says there is a
    preview."""
    if frame.layout is None:
        return None
    reference = frames.camera_preview(frame.path)
    if reference is None:
        return None
    if same_picture and stored_preview(frame.path) is not None:
        return PLAIN_TONE
    return tone_like(reference, render_preview(frame.pixels, frame.layout, PREVIEW_SIZE))  # type: ignore[arg-type]


OUTPUT_MARGIN_BYTES = 64 << 20  # kept free beyond a blend's own size (the sidecar, the filesystem's own needs)


def check_output_room(main: Path, frame_bytes: int) -> None:
    """Before any frame is decoded: the output folder exists, takes a new file, and has room for the blend.

    A blend takes seconds of work; a read-only folder or a full disk found after it wastes them.
    """
    need = 2 * frame_bytes + OUTPUT_MARGIN_BYTES  # the blend, up to twice a compressed frame, and a margin
    problem = atomic.room_problem(main, need, "the blend")
    if problem is not None:
        raise StackError(problem)


@contextlib.contextmanager
def writing_outputs(main: Path) -> Iterator[None]:
    """Writing a blend's outputs: a full disk or a folder gone read-only is one sentence naming the file (the
    frames stay as they are; the atomic writers leave no partial output)."""
    try:
        yield
    except OSError as exc:
        raise StackError(f"{main}: cannot write the blend ({exc.strerror or exc})") from exc


def checked_outputs(stack: Path, options: BlendOptions, kind: FrameKind, paths: Sequence[Path]) -> tuple[Path, Path]:
    """The output and sidecar paths, once their folder is known to take them (before any frame is read)."""
    main, sidecar = output_paths(stack, options.method, kind, options.output, options.output_folder)
    check_output_room(main, sum(p.stat().st_size for p in paths) // max(1, len(paths)))
    return main, sidecar


def master_flat(name: str, options: BlendOptions, kind: FrameKind) -> flat.MasterFlat | None:
    """The master flat `options` name, loaded (kept per process while unchanged), or None. A flat that is no flat
    is named by `check_matches` against the first frame, after its camera, size and CFA."""
    if options.flat is None:
        return None
    if kind != "raw":
        raise StackError(f"{name}: a flat field corrects raw stacks; these frames are {kind} files")
    return flat.load_master(options.flat, match_first=True)
