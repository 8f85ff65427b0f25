"""Combine a checked stack and write its outputs: the DNG (read back through LibRaw), a compressed TIFF or JPEG,
or an uncompressed TIFF streamed to the disk band by band as it is combined.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan import __version__
from medianscan.blend.corrections import levels
from medianscan.blend.corrections.flat import MasterFlat
from medianscan.blend.kernels.combine import combine
from medianscan.blend.kernels.noise_model import NoiseModel
from medianscan.blend.options import BlendOptions
from medianscan.blend.reading.frames import Frame
from medianscan.blend.reading.shelf import SHELF, FrameArrays
from medianscan.blend.verify import output_digest, pixels_sha256
from medianscan.errors import MedianscanError, StackError
from medianscan.metadata import MosaicLayout
from medianscan.outputs import dng, jpeg, tiff
from medianscan.outputs import xmp as xmp_file
from medianscan.outputs.preview import StoredPreview, Tone, stored_preview
from medianscan.outputs.preview_change import changed_preview
from medianscan.pixel_block import PixelBlock, pixel_block
from medianscan.records import FlatRecord
from medianscan.timing import timed

_BAND_BYTES = 4 << 20  # a TIFF blend is combined and written this many bytes of rows at a time


def write_outputs(
    main: Path,
    blended: npt.NDArray[np.generic],
    first: Frame,
    options: BlendOptions,
    *,
    xmp: bytes | None = None,
    tone: Tone | None = None,
    gain: npt.NDArray[np.float32] | None = None,
    raised_ev: float = 0.0,
    shorter: Sequence[Frame] = (),
) -> tuple[tuple[Path, ...], str]:
    """Write the blend (and the optional TIFF); return the extra outputs and the sha256 of the pixels as a reader gets
    them back from the main output, which has been read back to check it. A DNG carries `xmp` (the film's metadata),
    `first`'s EXIF and maker note, a white level no lower than its data (blend.corrections.levels) and, when `first` has
    a preview (`tone` is its tone), the camera's preview of the picture the DNG shows without BaselineExposure (as
    darktable and RawTherapee develop it): `first`'s own as stored where that is `first`'s picture (a plain blend), else
    `first`'s changed by the flat field's `gain` and by `raised_ev`, the BaselineExposure the headroom above `first`'s
    white level added (a flat's, a bracket's merge: whose `first` is its longest group's, and where its preview clipped,
    the `shorter` groups' frames' previews stand in); our rendering in `tone` only where the camera's cannot be read
    back."""
    description = f"medianscan {__version__} {options.method} of a stack"
    if first.kind == "raw":
        assert first.layout is not None
        dng.write_dng(
            main,
            blended,  # type: ignore[arg-type]
            levels.floored(first.layout, blended),  # type: ignore[arg-type]
            first.camera,
            first.exposure,
            compress=options.compress,
            description=description,
            xmp=xmp,
            preview=tone is not None,  # a preview exactly when the source has one (see stack_files.preview_tone)
            tone=tone,
            camera_preview=_camera_preview(first, gain, raised_ev, shorter) if tone is not None else None,
            metadata_from=first.path,
        )
        if xmp is not None:
            try:
                xmp_file.read_back(main, xmp)
            except MedianscanError as exc:
                main.unlink(missing_ok=True)
                raise StackError(str(exc)) from exc
        digest = read_back(main, pixels_sha256(blended))
        if options.tiff:
            linear = main.with_suffix(".tif")
            tiff.write_tiff(
                linear,
                tiff.develop_linear(main),
                compress=options.compress,
                description=description,
                icc=tiff.LINEAR_SRGB,
            )
            return (linear,), digest
        return (), digest
    if first.kind == "tiff":  # compressed (an uncompressed TIFF blend streams: `stream_tiff`)
        tiff.write_tiff(main, blended, compress=True, description=description, icc=first.icc)
        return (), read_back(main, pixels_sha256(blended))
    jpeg.write_jpeg(main, blended, exif_from=first.path, icc=first.icc)
    return (), read_back(main, None)  # lossy: whatever decodes back is what the sidecar records


def _camera_preview(
    first: Frame, gain: npt.NDArray[np.float32] | None, raised_ev: float, shorter: Sequence[Frame]
) -> StoredPreview | None:
    """`first`'s own preview as stored, or changed by a flat field's `gain` and the headroom's `raised_ev`, the
    `shorter` exposures' previews standing in where it clipped (None: ours is rendered instead)."""
    stored = stored_preview(first.path)
    if stored is None or (gain is None and abs(raised_ev) < 1e-4):
        return stored
    assert first.layout is not None
    seconds = first.exposure.exposure_time
    held = [
        (preview, frame.exposure.exposure_time / seconds)
        for frame in shorter
        if seconds and frame.exposure.exposure_time and (preview := stored_preview(frame.path)) is not None
    ]
    return changed_preview(stored, first.layout, gain, -raised_ev, held)


def flat_corrected(
    flat: MasterFlat, mosaic: npt.NDArray[np.uint16], layout: MosaicLayout
) -> tuple[MosaicLayout, FlatRecord]:
    """Correct `mosaic` in place with `flat`; the layout to write it with, its white level raised only as far as the
    corrected data reach (levels.tightened), and the flat's record of it."""
    corrected, record = flat.apply(mosaic, layout)
    return levels.settled(corrected, mosaic, layout.baseline_ev, record)


def blend_into(
    main: Path,
    frames: FrameArrays,
    first: Frame,
    options: BlendOptions,
    *,
    timings: dict[str, float],
    keep: contextlib.ExitStack,
    flat: MasterFlat | None = None,
    xmp: bytes | None = None,
    tone: Tone | None = None,
    noise: NoiseModel | None = None,
) -> tuple[tuple[Path, ...], str, FlatRecord | None]:
    """Combine the frames, correct it with the flat (raws only), and write the outputs (streamed, for an
    uncompressed TIFF); the extra outputs, the sha256 of the main output's pixels as read back, and what the
    flat did. `noise`: the stack's noise model, for the robust means."""
    if first.kind == "tiff" and not options.compress:
        return (), stream_tiff(main, frames, options, timings, icc=first.icc, noise=noise), None
    with timed(timings, "combine"):
        shelf = keep.enter_context(SHELF.lend("frame", first.pixels.shape, first.pixels.dtype))
        blended = combine_frames(frames, options, shelf, noise)
    record, raised = None, 0.0
    if flat is not None and first.layout is not None:
        with timed(timings, "flat"):
            layout, record = flat_corrected(flat, blended, first.layout)  # type: ignore[arg-type]
            raised = layout.baseline_ev - first.layout.baseline_ev
            first = dataclasses.replace(first, layout=layout)
    gain = None if flat is None else flat.gain
    with timed(timings, "write"):
        extra, digest = write_outputs(main, blended, first, options, xmp=xmp, tone=tone, gain=gain, raised_ev=raised)
    return extra, digest, record


def stream_tiff(
    main: Path,
    frames: FrameArrays,
    options: BlendOptions,
    timings: dict[str, float],
    *,
    icc: bytes | None = None,
    noise: NoiseModel | None = None,
) -> str:
    """Blend a TIFF stack straight into its uncompressed output, a band of rows at a time: each band is combined
    into one small buffer and goes to the disk while the next is combined from the (memory-mapped) frames, so no
    output frame is ever held in memory; the output carries the frames' ICC profile `icc`. Returns the pixels'
    sha256, read back from the disk."""
    first = frames[0]
    height = first.shape[0]
    rows = max(1, _BAND_BYTES // max(1, first[0].nbytes))
    band = np.empty((min(rows, height), *first.shape[1:]), first.dtype)
    combining = 0.0

    def bands() -> Iterator[npt.NDArray[np.generic]]:
        nonlocal combining
        for top in range(0, height, rows):
            part = band[: min(rows, height - top)]
            t = time.perf_counter()
            combine_frames([frame[top : top + len(part)] for frame in frames], options, part, noise)
            combining += time.perf_counter() - t
            yield part

    t = time.perf_counter()
    description = f"medianscan {__version__} {options.method} of a stack"
    written = tiff.write_tiff_rows(main, first.shape, first.dtype, bands(), description=description, icc=icc)
    # read back as it was written (from the disk itself, see diskio); and the file must show TIFF readers
    # exactly that block as its image
    block = pixel_block(main)
    wanted = PixelBlock(written.offset, written.size, tuple(first.shape), np.dtype(first.dtype))
    if written.stored_sha256 != written.sha256 or block != wanted:
        main.unlink(missing_ok=True)
        raise StackError(f"{main}: the written file reads back different pixels; it was removed")
    timings["combine"] = combining
    timings["write"] = time.perf_counter() - t - combining
    return written.sha256


def read_back(path: Path, expected: str | None) -> str:
    """Read an output back with the reader a user's software would use and hash its pixels; it must hold exactly
    what was blended (when `expected` is given). A bad file is removed rather than left to be trusted."""
    try:
        digest = output_digest(path)
    except StackError:
        path.unlink(missing_ok=True)
        raise
    if expected is not None and digest != expected:
        path.unlink(missing_ok=True)
        raise StackError(f"{path}: the written file reads back different pixels; it was removed")
    return digest


def combine_frames(
    frames: FrameArrays,
    options: BlendOptions,
    out: npt.NDArray[np.generic] | None = None,
    noise: NoiseModel | None = None,
) -> npt.NDArray[np.generic]:
    """`combine` as `options` say; `noise`: the stack's noise model (else the robust means measure the frames)."""
    return combine(
        frames,
        options.method,
        kappa=options.kappa,
        iterations=options.iterations,
        winsor_fraction=options.winsor_fraction,
        noise=noise,
        out=out,
    )
