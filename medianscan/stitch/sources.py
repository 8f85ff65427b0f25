"""What each TILE argument is, and its pixels: a raw or DNG file, or a stack folder whose blend is the tile
(blended first, by the blend pipeline, when it has none or an older one).

The stitch's door into `medianscan.blend` for its inputs: reading raws, blending a folder, loading a master flat
(the read pass also takes the blend's Frame record and its preview's tone).
A tile's pixels are its visible mosaic (the active area), black subtracted and flat-field corrected, as float32,
a band of rows at a time; the master flat's gains are held as 16-bit steps (`TileFlat`), made a plane at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
import rawpy
import tifffile

from medianscan import heap
from medianscan.blend.corrections.flat import FlatError, MasterFlat, master_by_planes
from medianscan.blend.reading import sniff
from medianscan.blend.reading.frames import Frame, read_frame, read_metadata, sha256_file
from medianscan.blend.reading.raw_layout import layout_from_rawpy, with_source_colour
from medianscan.blend.reading.recorded import recorded_frames
from medianscan.blend.stack_files import output_paths
from medianscan.errors import MedianscanError, StackError
from medianscan.library import contents
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout

XMP_TAG = 700
SAMPLE_BYTES = 1 << 16  # read from each end of a tile for its content_sample


class StitchError(MedianscanError):
    """A set of tiles that cannot be stitched; the message names the tile and what is wrong, in one sentence."""


@dataclass(frozen=True)
class Tile:
    """One tile as given and the raw that stands for it."""

    given: Path  # as the user named it (a file, or a stack folder)
    raw: Path  # the raw or DNG read (a folder's blend)
    blended_now: bool = False  # the folder was blended by this stitch

    @property
    def name(self) -> str:
        return self.given.name if self.given == self.raw else f"{self.given.name} ({self.raw.name})"


def resolve_tile(given: Path) -> Tile:
    """A file is its own tile; a stack folder's tile is its median blend, made now if missing or older than the
    folder's frames. Raises StitchError naming the argument when it is neither."""
    if given.is_file():
        return Tile(given, given)
    if not given.is_dir():
        raise StitchError(f"{given}: no such tile (give a raw or DNG file, or a stack folder)")
    found = contents.read_folder(given, sniff.inspect)
    if found.frames and found.kinds[0] != "raw":
        raise StitchError(f"{given}: a tile must be raw; this stack holds {found.kinds[0]} files")
    blend, sidecar = output_paths(given, "median", "raw", None)
    recorded = recorded_frames(sidecar)
    if blend.is_file() and recorded is not None and set(recorded) >= {p.name for p in found.frames}:
        newest = max((p.stat().st_mtime_ns for p in found.frames), default=0)
        if blend.stat().st_mtime_ns >= newest:
            return Tile(given, blend)
    if not found.frames:
        raise StitchError(f"{given}: neither a raw nor a stack folder with raw frames (nothing to stitch in it)")
    from medianscan.blend.options import BlendOptions  # the blend's machinery (numba, the config's rules) only
    from medianscan.blend.pipeline import blend_stack  # when a stack needs blending

    try:
        return Tile(given, blend_stack(given, BlendOptions()).output, blended_now=True)
    except StackError as exc:
        raise StitchError(f"{given}: this tile's stack cannot be blended: {exc}") from exc


@dataclass(frozen=True)
class Facts:
    """What a tile's headers say, read without decoding its pixels: enough to check a set before any work. Not
    its CFA: LibRaw tells the pattern only once it has unpacked the pixels (a whole decode, 0.1-0.17 s a 24 MP
    tile, then thrown away), so the CFA is compared as each tile is decoded for the stitch (cfa_name)."""

    camera: CameraInfo
    exposure: Exposure
    size: tuple[int, int]  # visible (active area) height, width
    sample: str  # content_sample: tiles whose samples differ are not one picture


def read_facts(tile: Tile) -> Facts:
    """The tile's camera, exposure and visible size from its headers; an unreadable raw is named."""
    meta = read_metadata(tile.raw)
    try:
        with rawpy.RawPy() as raw:
            raw.open_file(str(tile.raw))
            sizes = raw.sizes
            size = (int(sizes.height), int(sizes.width))
    except rawpy.LibRawError as exc:
        raise StitchError(f"tile {tile.name}: not a raw LibRaw can read ({exc})") from exc
    return Facts(meta.camera, meta.exposure, size, content_sample(tile))


def cfa_name(layout: MosaicLayout) -> str:
    """The CFA from the active area's corner, as tiles are compared and named by: "RGGB", or "6x6 GGRGGB..." for
    larger repeats."""
    local = local_pattern(layout)
    letters = "".join(layout.colors[i] for i in local.ravel())
    return letters if local.shape == (2, 2) else f"{local.shape[0]}x{local.shape[1]} {letters}"


def read_tile(tile: Tile) -> Frame:
    """The tile's raw, decoded; a file that is not a colour-filter raw is named."""
    heap.give_back_freed()
    try:
        frame = read_frame(tile.raw, "raw")
    except StackError as exc:
        raise StitchError(f"tile {tile.name}: {exc}") from exc
    if frame.layout is None or frame.layout.linear:
        raise StitchError(
            f"tile {tile.name}: holds linear RGB, not a colour-filter mosaic; the stitch works on the mosaic"
        )
    return frame


@dataclass(frozen=True)
class Decoded:
    """A tile decoded for the stitch. A colour-filter raw's frame holds LibRaw's own buffer while `raw` is open (no
    copy of it: 48 MB and a memcpy a 24 MP tile; nor the file's sha256, which the stitch never reads); once
    closed, its pixels are gone. Anything else LibRaw does not unpack as a mosaic (a DNG compressed with JPEG XL)
    is read by the blend's reader into an array of its own (`raw` None)."""

    frame: Frame
    raw: rawpy.RawPy | None = None

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()

    def __enter__(self) -> Decoded:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def decode_tile(tile: Tile) -> Decoded:
    """The tile's raw, decoded (LibRaw releases the GIL: a thread may decode the next tile meanwhile); a file
    that is not a colour-filter raw is named, as by read_tile."""
    heap.give_back_freed()
    raw = rawpy.RawPy()
    try:
        raw.open_file(str(tile.raw))
        raw.unpack()
        if raw.raw_type == rawpy.RawType.Flat and raw.raw_pattern is not None:
            layout = with_source_colour(layout_from_rawpy(raw), tile.raw)
            meta = read_metadata(tile.raw)
            pixels = raw.raw_image
            return Decoded(
                Frame(tile.raw, "raw", pixels, meta.camera, meta.exposure, "", layout, layout.orientation), raw
            )
    except rawpy.LibRawError:
        pass  # the blend's reader names the problem, or decodes what LibRaw cannot (JPEG XL)
    except OSError as exc:
        raw.close()
        raise StitchError(f"tile {tile.name}: cannot read the file ({exc.strerror or exc})") from exc
    except BaseException:
        raw.close()
        raise
    raw.close()
    return Decoded(read_tile(tile))


def visible_band(frame: Frame, flat: TileFlat | None, start: int, stop: int) -> npt.NDArray[np.float32]:
    """Rows [start, stop) of the active area (`start` a multiple of the CFA's height) over black, flat-field
    corrected when a flat is given (float32, nothing clipped): a tile is taken a band at a time, never whole as
    float32, which would be twice the decoded raw. Bands are independent: two threads may make two at once."""
    layout = frame.layout
    assert layout is not None
    top, left, _, right = layout.active_area
    pattern = local_pattern(layout)
    ph, pw = pattern.shape
    black = np.asarray(layout.black_levels, dtype=np.float32)[pattern]
    values = np.empty((stop - start, right - left), dtype=np.float32)
    for dy in range(ph):
        # each CFA row's blacks along a whole row: the band's rows of that CFA row less it in one pass, the
        # photosites turned to float32 on the way (the same float32 values as a cast, then each position's black)
        across = np.tile(black[dy], -(-(right - left) // pw))[: right - left]
        np.subtract(frame.pixels[top + start + dy : top + stop : ph, left:right], across, out=values[dy::ph])
    if flat is not None:
        values *= flat.gain(slice(top + start, top + stop), slice(left, right))
    return values


def local_pattern(layout: MosaicLayout) -> npt.NDArray[np.uint8]:
    """The CFA pattern as seen from the active area's top-left photosite."""
    top, left = layout.active_area[:2]
    return np.roll(np.asarray(layout.pattern, dtype=np.uint8), (-top, -left), axis=(0, 1))


@dataclass(frozen=True)
class TileFlat:
    """The master flat as the stitch holds it: the flat for its checks, without its float32 gains, and the gains
    of its active area as 16-bit steps, each CFA position with its own `step` (its largest gain is 65,535 steps: a
    position whose largest gain is 2 is held to 1.5e-5 of a gain of 1), turned back into float32 a band of rows at
    a time. Half the memory of the gains, made a plane at a time (the float32 gains of the whole sensor are never
    held), and not kept in the blend's cache of flats after it."""

    master: MasterFlat  # its gain empty: check_matches reads its frame only
    steps: npt.NDArray[np.uint16]  # the active area's
    origin: tuple[int, int]  # the active area's top-left photosite in sensor coordinates
    step: npt.NDArray[np.float32]  # (CFA height, width): the step of each position, from the active area's corner
    top: float  # the largest gain

    def gain(self, rows: slice, cols: slice) -> npt.NDArray[np.float32]:
        """The gains of sensor rows and columns `rows`, `cols` (whole slices inside the active area)."""
        r0 = 0 if rows.start is None else rows.start - self.origin[0]
        c0 = 0 if cols.start is None else cols.start - self.origin[1]
        r1 = len(self.steps) if rows.stop is None else rows.stop - self.origin[0]
        c1 = self.steps.shape[1] if cols.stop is None else cols.stop - self.origin[1]
        values: npt.NDArray[np.float32] = self.steps[r0:r1, c0:c1].astype(np.float32)
        ph, pw = self.step.shape
        for dy in range(ph):  # whole rows at a time (the steps across a row repeat with the CFA): no column strides
            across = np.tile(np.roll(self.step[(r0 + dy) % ph], -c0), -(-(c1 - c0) // pw))[: c1 - c0]
            values[dy::ph] *= across
        return values


def load_flat(source: Path | None) -> TileFlat | None:
    """`--flat`: a master flat DNG, or a folder of flat frames blended first (as `medianscan blend --flat`)."""
    if source is None:
        return None
    if source.is_dir():  # a folder of flat frames: the blend's machinery (numba) only then
        from medianscan.blend.pipeline import prepare_flat

        source = prepare_flat(source)
    try:
        master, planes = master_by_planes(source)
        layout = master.frame.layout
        assert layout is not None
        top, left, bottom, right = layout.active_area
        steps = np.empty((bottom - top, right - left), dtype=np.uint16)
        ph, pw = local_pattern(layout).shape
        step = np.ones((ph, pw), dtype=np.float32)
        largest = 1.0 if (bottom - top, right - left) != master.frame.pixels.shape else 0.0  # 1 outside it
        for part in planes:  # one plane's float32 gains at a time
            most = float(part.gain.max())
            largest = max(largest, most)
            y, x = part.rows.start - top, part.cols.start - left
            step[y % ph, x % pw] = most / 65535
            gain = part.gain  # the plane's own array: scaled and rounded in place
            gain *= np.float32(65535 / most)
            steps[y::ph, x::pw] = np.rint(gain, out=gain)
    except FlatError as exc:
        raise StitchError(str(exc)) from exc
    return TileFlat(master, steps, (top, left), step, largest)


def check_flat(flat: TileFlat, frame: Frame) -> None:
    try:
        flat.master.check_matches(frame)
    except FlatError as exc:
        raise StitchError(str(exc)) from exc


def flat_already_applied(tile: Tile) -> bool:
    """A blend corrected by its roll's flat says so in its sidecar: the stitch does not divide it twice."""
    try:
        record = json.loads(tile.raw.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and bool(record.get("flat"))


def xmp_packet(path: Path) -> bytes | None:
    """The XMP packet in a DNG's IFD0 (a medianscan blend carries its film's there), or None."""
    try:
        with tifffile.TiffFile(path) as tif:
            tag = tif.pages.first.tags.get(XMP_TAG)
            value = None if tag is None else tag.value
    except (tifffile.TiffFileError, ValueError, OSError):
        return None
    return bytes(value) if isinstance(value, bytes | bytearray) and value else None


def content_sample(tile: Tile) -> str:
    """The tile's size in bytes and a digest of its first and last SAMPLE_BYTES: two files whose samples differ
    are not the same picture, and only those whose samples agree are read whole (content_digest). Nine 24 MP
    tiles are 430 MB, 0.6 s of sha256 read for nothing when every sample differs, as a set's do."""
    try:
        with tile.raw.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(0)
            head = fh.read(SAMPLE_BYTES)
            fh.seek(max(0, size - SAMPLE_BYTES))
            tail = fh.read(SAMPLE_BYTES)
    except OSError as exc:
        raise StitchError(f"tile {tile.name}: cannot read the file ({exc.strerror or exc})") from exc
    return f"{size}:{hashlib.sha256(head + tail).hexdigest()}"


def content_digest(tile: Tile) -> str:
    """sha256 of the tile's raw (two arguments naming the same picture are a duplicate)."""
    try:
        return sha256_file(tile.raw)
    except OSError as exc:
        raise StitchError(f"tile {tile.name}: cannot read the file ({exc.strerror or exc})") from exc


def same_exposure(a: float | None, b: float | None) -> bool:
    return a is None or b is None or math.isclose(a, b, rel_tol=0.01)
