"""Blend one stack: read its frames, check they differ only in noise, combine, write outputs and a sidecar.

This is the one path every caller takes: `medianscan blend`, the daemon's blend workers and the hot folder.
Frames are decoded once, in parallel, straight into one preallocated stack buffer; nothing is written until
every check has passed, and every output appears atomically.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medianscan import __version__
from medianscan.atomic import write_json
from medianscan.blend import checks, frames, sniff
from medianscan.blend.frames import Frame, Kind
from medianscan.config import BlendConfig
from medianscan.errors import BadFramesError, StackError
from medianscan.library import contents
from medianscan.library.contents import LeftOut, StackContents
from medianscan.outputs import jpeg, tiff
from medianscan.vocabulary import METHODS, Method

_BAND_BYTES = 4 << 20  # a TIFF blend is combined and written this many bytes of rows at a time

__all__ = ["METHODS", "BlendOptions", "BlendResult", "blend_stack", "output_paths", "recorded_frames"]
_EXTENSION = {"raw": ".dng", "tiff": ".tif", "jpeg": ".jpg"}


@dataclass(frozen=True)
class BlendOptions:
    """How to blend (the same knobs as the `blend` section of the config)."""

    method: Method = "median"
    kappa: float = 3.0
    iterations: int = 5
    winsor_fraction: float = 0.2
    level_tolerance: float = 0.03
    max_shift_px: float = 0.5
    drop_bad_frames: bool = False
    tiff: bool = False
    compress: bool = False
    output: Path | None = None  # explicit output file; default <stack>/<stack name>_<method>.<ext>

    @classmethod
    def from_config(cls, cfg: BlendConfig, **overrides: Any) -> BlendOptions:
        fields = {
            name: getattr(cfg, name)
            for name in (
                "method",
                "kappa",
                "iterations",
                "winsor_fraction",
                "level_tolerance",
                "max_shift_px",
                "drop_bad_frames",
                "tiff",
                "compress",
            )
        }
        return cls(**{**fields, **overrides})


@dataclass(frozen=True)
class BlendResult:
    """What a blend wrote and what went into it."""

    stack: Path
    output: Path
    sidecar: Path
    extra_outputs: tuple[Path, ...]
    frames: tuple[Path, ...]
    dropped: tuple[tuple[Path, str], ...]
    seconds: float
    noise_ratio: float | None  # noise of the blend / noise of one frame, measured (see _noise_ratio)
    timings: dict[str, float] = field(default_factory=dict)
    ignored: tuple[LeftOut, ...] = ()  # files of the stack that are not frames of this blend, with the reason

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": str(self.stack),
            "output": str(self.output),
            "sidecar": str(self.sidecar),
            "extra_outputs": [str(p) for p in self.extra_outputs],
            "frames": [str(p) for p in self.frames],
            "dropped": [{"frame": str(p), "reason": r} for p, r in self.dropped],
            "ignored": [{"file": str(i.path), "reason": i.reason} for i in self.ignored],
            "seconds": round(self.seconds, 3),
            "noise_ratio": None if self.noise_ratio is None else round(self.noise_ratio, 4),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def output_paths(stack_dir: Path, method: Method, kind: Kind, explicit: Path | None) -> tuple[Path, Path]:
    """The main output and its JSON sidecar (same stem)."""
    main = explicit or stack_dir / f"{stack_dir.name}_{method}{_EXTENSION[kind]}"
    return main, main.with_suffix(".json")


def resolve(source: Path | Sequence[Path]) -> tuple[Path, StackContents]:
    """A stack folder or a list of frame files -> (the stack folder, its contents sorted out by the one rule)."""
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.is_dir():
            raise StackError(f"{folder}: no such stack folder")
        found = contents.read_folder(folder, sniff.inspect)
        if not found.frames and not found.unreadable:
            left = "; ".join(str(i) for i in found.ignored)
            raise StackError(f"{folder}: no raw, TIFF or JPEG frames in this folder" + (f" ({left})" if left else ""))
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
    found = contents.sort_out((p for p in paths if contents.role(p) is not contents.Role.CLUTTER), sniff.inspect)
    if not found.frames and not found.unreadable:
        raise StackError("no raw, TIFF or JPEG frames among the files given")
    return parents.pop(), found


def blend_stack(source: Path | Sequence[Path], options: BlendOptions | None = None) -> BlendResult:
    """Blend a stack folder (or the frame files of one stack) and write the outputs beside the raws.

    Raises StackError, naming the frame and the reason, when the stack cannot be blended; then nothing is
    written and the inputs are untouched.
    """
    options = options or BlendOptions()
    _return_freed_buffers_to_os()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    stack_dir, found = resolve(source)
    name = stack_dir.name
    unreadable = [checks.Problem(left.path, left.reason) for left in found.unreadable]
    paths, kinds = list(found.frames), list(found.kinds)
    if len(paths) + len(unreadable) < checks.MIN_FRAMES:
        raise StackError(
            f"{name}: {len(paths) + len(unreadable)} frame(s); a blend needs at least {checks.MIN_FRAMES} frames "
            "of the same scene" + "".join(f"; {p}" for p in unreadable)
        )
    if len(paths) < checks.MIN_FRAMES:
        raise BadFramesError(_describe(name, unreadable, options.drop_bad_frames, len(paths)), droppable=False)
    main, sidecar = output_paths(stack_dir, options.method, kinds[0], options.output)
    check_output_room(main, sum(p.stat().st_size for p in paths) // max(1, len(paths)))
    with contextlib.ExitStack() as keep:  # the buffers go back on the shelf however the blend ends
        buffer = _allocate(paths[0], kinds[0], len(paths), keep)
        workers = min(len(paths), os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as loader:
            # meanwhile, beside the decoders (not one of them): a fresh process needs the kernels next
            kernels = loader.submit(_load_kernel, len(paths), kinds[0], options)
            t = time.perf_counter()
            sampled, undecodable = _decode_all(paths, kinds, buffer, pool)
            unreadable += undecodable
            decoded = [f for f, _ in sampled]
            timings["decode"] = time.perf_counter() - t

            t = time.perf_counter()
            problems, stats = _check(sampled, unreadable, options, pool)
            timings["checks"] = time.perf_counter() - t
            del sampled  # the spectra are done with; a blend's peak memory is the stack plus three frames
            kernels.result()

        bad = {p.frame for p in problems}
        good = [f for f in decoded if f.path not in bad]
        if problems and not (options.drop_bad_frames and len(good) >= checks.MIN_FRAMES and None not in bad):
            droppable = not options.drop_bad_frames and len(good) >= checks.MIN_FRAMES and None not in bad
            raise BadFramesError(_describe(name, problems, options.drop_bad_frames, len(good)), droppable=droppable)

        stack = _compact(buffer, good)
        first = good[0]
        try:
            extra, digest = _blend_into(main, stack, first, options, timings=timings, keep=keep)
        except OSError as exc:  # a full disk, a folder gone read-only: the frames stay as they are
            raise StackError(f"{main}: cannot write the blend ({exc.strerror or exc})") from exc
        noise = _noise_ratio(stack, first, lambda part: _combine(part, options))
        seconds = time.perf_counter() - started
        result = BlendResult(
            stack=stack_dir,
            output=main,
            sidecar=sidecar,
            extra_outputs=extra,
            frames=tuple(f.path for f in good),
            dropped=tuple((p.frame, p.reason) for p in problems if p.frame is not None),
            ignored=found.ignored,
            seconds=seconds,
            noise_ratio=noise,
            timings=timings,
        )
        write_json(sidecar, _sidecar(result, options=options, good=good, stats=stats, digest=digest))
        return result


@functools.cache
def _return_freed_buffers_to_os() -> None:
    """Keep glibc from hoarding freed frame-sized buffers (LibRaw's, in each decode thread's arena): with a fixed
    mmap threshold every large buffer goes back to the OS when freed, so a blend peaks at the stack plus the
    frames in flight, and a long-lived worker does not grow."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: 1 MiB


class _Shelf:
    """The stack buffer and output frame of the last blend, kept for the next one of the same size.

    A blend worker lives for many stacks of one camera: reusing its buffers spares the page faults of touching
    a fresh stack's worth of memory every time (the notes measured 0.3-5 s spikes on first touch). One buffer per
    role; a concurrent blend simply allocates its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, npt.NDArray[np.generic]] = {}

    @contextlib.contextmanager
    def lend(self, role: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Iterator[npt.NDArray[np.generic]]:
        with self._lock:
            kept = self._kept.pop(role, None)
        array = kept if kept is not None and kept.shape == shape and kept.dtype == dtype else np.empty(shape, dtype)
        try:
            yield array
        finally:
            with self._lock:
                self._kept[role] = array


_SHELF = _Shelf()


def _check(
    sampled: Sequence[tuple[Frame, checks.Sample]],
    unreadable: list[checks.Problem],
    options: BlendOptions,
    pool: ThreadPoolExecutor,
) -> tuple[list[checks.Problem], dict[Path, checks.FrameStats]]:
    """Does the stack differ only in noise? Every problem names its frame; the stats go to the sidecar."""
    decoded = [f for f, _ in sampled]
    problems = unreadable + checks.metadata_problems(decoded)
    flagged = {p.frame for p in problems}
    consistent = [f for f in decoded if f.path not in flagged]
    if len(consistent) < 2:
        return problems, {}
    measured = checks.measure([s for f, s in sampled if f.path not in flagged], pool.map)
    problems += checks.pixel_problems(consistent, measured, options.level_tolerance, options.max_shift_px)
    return problems, {f.path: s for f, s in zip(consistent, measured, strict=True)}


def _load_kernel(n: int, kind: Kind, options: BlendOptions) -> None:
    """Load (or compile) the combine kernels for this stack while the frames are read; a warm worker has them:
    the blend's (raws share one stack buffer, TIFFs and JPEGs stay frames apart, see `_allocate`) and the
    (n-1)-frame one of the noise measurement."""
    from medianscan.blend.kernels import warm_up

    dtype = np.uint8 if kind == "jpeg" else np.uint16
    for frames_n, apart in ((n, kind != "raw"), (n - 1, False)):
        warm_up(
            frames_n,
            dtype,
            (options.method,),
            kappa=options.kappa,
            iterations=options.iterations,
            winsor_fraction=options.winsor_fraction,
            frames_apart=apart,
        )


def _allocate(first: Path, kind: Kind, n: int, keep: contextlib.ExitStack) -> npt.NDArray[np.generic] | None:
    """One (N, ...) buffer for the whole stack, sized from the first frame's header; None if unknown, and None
    for TIFFs, which are memory-mapped (or, compressed, decoded one array each) and combined band by band."""
    if kind == "tiff":
        return None
    probed = frames.probe(first, kind)
    if probed is None:
        return None
    shape, dtype = probed
    return keep.enter_context(_SHELF.lend("stack", (n, *shape), dtype))


def _decode_all(
    paths: Sequence[Path], kinds: Sequence[Kind], buffer: npt.NDArray[np.generic] | None, pool: ThreadPoolExecutor
) -> tuple[list[tuple[Frame, checks.Sample]], list[checks.Problem]]:
    """Decode every frame once, spread over the cores (LibRaw releases the GIL), into the stack buffer, and take
    what the pixel checks need of it while it is hot in the cache."""

    def read(i: int) -> tuple[Frame, checks.Sample] | checks.Problem:
        try:
            frame = frames.read_frame(paths[i], kinds[i], None if buffer is None else buffer[i])
        except StackError as exc:
            return checks.Problem(paths[i], str(exc).removeprefix(f"{paths[i]}: "))
        return frame, checks.sample(frame)

    results = list(pool.map(read, range(len(paths))))
    decoded = [r for r in results if isinstance(r, tuple)]
    return decoded, [r for r in results if isinstance(r, checks.Problem)]


Stack = npt.NDArray[np.generic] | list[npt.NDArray[np.generic]]  # one (N, ...) array, or N frame arrays


def _compact(buffer: npt.NDArray[np.generic] | None, good: Sequence[Frame]) -> Stack:
    """The good frames as one contiguous (N, ...) array reusing the stack buffer, or as their own arrays when
    they do not live in one (memory-mapped TIFFs: the kernels read them where they lie, never copied)."""
    if buffer is None or any(not np.shares_memory(f.pixels, buffer) for f in good):
        return [f.pixels for f in good]
    for slot, frame in enumerate(good):
        if not np.shares_memory(frame.pixels, buffer[slot]):
            buffer[slot] = frame.pixels
    return buffer[: len(good)]


def _describe(name: str, problems: Sequence[checks.Problem], dropping: bool, n_good: int) -> str:
    lines = "; ".join(str(p) for p in problems)
    if dropping:
        return f"{name}: only {n_good} good frame(s) left, at least {checks.MIN_FRAMES} needed ({lines})"
    return f"{name}: cannot blend: {lines}"


OUTPUT_MARGIN_BYTES = 64 << 20  # kept free beyond a blend's own size (the sidecar, the filesystem's own needs)


def check_output_room(main: Path, frame_bytes: int) -> None:
    """Before any frame is decoded: the output folder exists, takes a new file, and has room for the blend.

    A blend takes seconds of work; a read-only folder or a full disk found after it wastes them. The probe is a
    real file created and removed (permission bits alone say nothing to root or on a read-only mount).
    """
    folder = main.parent
    if not folder.is_dir():
        raise StackError(f"{main}: the output folder {folder} does not exist")
    probe = folder / f".medianscan-probe.{os.getpid()}.part"
    try:
        probe.touch(exist_ok=False)
        probe.unlink()
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise StackError(f"{main}: cannot write into {folder} ({exc.strerror or exc})") from None
    need = 2 * frame_bytes + OUTPUT_MARGIN_BYTES  # the blend, up to twice a compressed frame, and a margin
    if free < need:
        raise StackError(
            f"{main}: too little free space in {folder}: {free / 2**20:.0f} MiB free, "
            f"{need / 2**20:.0f} MiB needed for the blend"
        )


def _write_outputs(
    main: Path, blended: npt.NDArray[np.generic], first: Frame, options: BlendOptions
) -> tuple[tuple[Path, ...], str]:
    """Write the blend (and the optional TIFF); return the extra outputs and the sha256 of the pixels as a reader
    gets them back from the main output, which has been read back to check it."""
    description = f"medianscan {__version__} {options.method} of a stack"
    if first.kind == "raw":
        from medianscan.outputs import dng

        assert first.layout is not None
        dng.write_dng(
            main,
            blended,  # type: ignore[arg-type]
            first.layout,
            first.camera,
            first.exposure,
            compress=options.compress,
            description=description,
        )
        digest = _read_back(main, _pixels_sha256(blended))
        if options.tiff:
            linear = main.with_suffix(".tif")
            tiff.write_tiff(linear, tiff.develop_linear(main), compress=options.compress, description=description)
            return (linear,), digest
        return (), digest
    if first.kind == "tiff":  # compressed (an uncompressed TIFF blend streams: `_stream_tiff`)
        tiff.write_tiff(main, blended, compress=True, description=description)
        return (), _read_back(main, _pixels_sha256(blended))
    jpeg.write_jpeg(main, blended, exif_from=first.path)
    return (), _read_back(main, None)  # lossy: whatever decodes back is what the sidecar records


def _blend_into(
    main: Path,
    stack: Stack,
    first: Frame,
    options: BlendOptions,
    *,
    timings: dict[str, float],
    keep: contextlib.ExitStack,
) -> tuple[tuple[Path, ...], str]:
    """Combine the stack and write the outputs (streamed, for an uncompressed TIFF); the extra outputs and the
    sha256 of the main output's pixels as read back."""
    if first.kind == "tiff" and not options.compress:
        return (), _stream_tiff(main, stack, options, timings)
    t = time.perf_counter()
    blended = _combine(stack, options, keep.enter_context(_SHELF.lend("frame", first.pixels.shape, first.pixels.dtype)))
    timings["combine"] = time.perf_counter() - t
    t = time.perf_counter()
    written = _write_outputs(main, blended, first, options)
    timings["write"] = time.perf_counter() - t
    return written


def _stream_tiff(main: Path, stack: Stack, options: BlendOptions, timings: dict[str, float]) -> str:
    """Blend a TIFF stack straight into its uncompressed output, a band of rows at a time: each band is combined
    into one small buffer and goes to the disk while the next is combined from the (memory-mapped) frames, so no
    output frame is ever held in memory. Returns the pixels' sha256, read back from the disk."""
    first = stack[0]
    height = first.shape[0]
    rows = max(1, _BAND_BYTES // max(1, first[0].nbytes))
    band = np.empty((min(rows, height), *first.shape[1:]), first.dtype)
    combining = 0.0

    def bands() -> Iterator[npt.NDArray[np.generic]]:
        nonlocal combining
        for top in range(0, height, rows):
            part = band[: min(rows, height - top)]
            t = time.perf_counter()
            _combine([frame[top : top + len(part)] for frame in stack], options, part)
            combining += time.perf_counter() - t
            yield part

    t = time.perf_counter()
    description = f"medianscan {__version__} {options.method} of a stack"
    written = tiff.write_tiff_rows(main, first.shape, first.dtype, bands(), description=description)
    # read back as it was written (from the disk itself, see diskio); and the file must show TIFF readers
    # exactly that block as its image
    block = tiff.pixel_block(main)
    wanted = tiff.PixelBlock(written.offset, written.size, tuple(first.shape), np.dtype(first.dtype))
    if written.stored_sha256 != written.sha256 or block != wanted:
        main.unlink(missing_ok=True)
        raise StackError(f"{main}: the written file reads back different pixels; it was removed")
    timings["combine"] = combining
    timings["write"] = time.perf_counter() - t - combining
    return written.sha256


def _read_back(path: Path, expected: str | None) -> str:
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


def output_digest(path: Path) -> str:
    """sha256 of the pixels a reader gets from `path` (a DNG through LibRaw, hashed in its own buffer)."""
    kind = sniff.sniff(path)
    if kind != "raw":
        try:
            stored = tiff.stored_pixels_sha256(path) if kind == "tiff" else None
        except OSError as exc:
            raise StackError(f"{path}: cannot read the file back ({exc.strerror or exc})") from exc
        return stored or _pixels_sha256(frames.read_frame(path).pixels)
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            return _pixels_sha256(raw.raw_image)
    except rawpy.LibRawError as exc:
        raise StackError(f"{path}: the written DNG does not read back ({exc})") from exc


def verify_output(result: BlendResult) -> None:
    """Check a blend on disk against its sidecar (before raws are deleted or archived)."""
    try:
        record = json.loads(result.sidecar.read_text())
        expected = record["output"]["pixels_sha256"]
    except (OSError, ValueError, KeyError) as exc:
        raise StackError(f"{result.sidecar}: missing or unreadable sidecar ({exc})") from exc
    try:
        digest = output_digest(result.output)
    except StackError as exc:
        raise StackError(f"{result.output}: the blend does not read back ({exc})") from exc
    if digest != expected:
        raise StackError(f"{result.output}: its pixels differ from what was blended (sidecar {result.sidecar.name})")


def _pixels_sha256(pixels: npt.NDArray[np.generic]) -> str:
    """sha256 of an image's pixel values (row by row when the rows are padded, so nothing is copied)."""
    digest = hashlib.sha256()
    if pixels.flags.c_contiguous:
        digest.update(pixels.data)
    else:
        for row in pixels:
            digest.update(np.ascontiguousarray(row).data)
    return digest.hexdigest()


def _combine(
    stack: Stack, options: BlendOptions, out: npt.NDArray[np.generic] | None = None
) -> npt.NDArray[np.generic]:
    from medianscan.blend.kernels import combine

    return combine(
        stack,
        options.method,
        kappa=options.kappa,
        iterations=options.iterations,
        winsor_fraction=options.winsor_fraction,
        out=out,
    )


def _noise_ratio(
    stack: Stack,
    first: Frame,
    blend: Callable[[npt.NDArray[np.generic]], npt.NDArray[np.generic]],
) -> float | None:
    """Noise of a blend against one frame, measured on the stack itself in the checks' central window.

    The difference of two frames is pure noise (the scene cancels): it gives one frame's noise s1. A blend of
    all frames but the last, minus the last frame, holds that blend's noise and s1, independent: so
    var(blend - last) - s1^2 is the blend's own noise. Outliers (dust) are left out of every spread.
    The blend measured has N-1 frames: the figure slightly understates what N frames give.
    """
    (rows, cols), _ = checks.central_window(first)
    window = np.stack([frame[rows, cols] for frame in stack])
    single = _robust_sigma(window[0].astype(np.float32) - window[1]) / np.sqrt(2)
    residual = _robust_sigma(blend(window[:-1]).astype(np.float32) - window[-1])
    own = residual**2 - single**2
    return float(np.sqrt(own) / single) if single > 0 and own > 0 else None


def _robust_sigma(values: npt.NDArray[np.floating]) -> float:
    """The standard deviation of `values` without their outliers (dust): the std of what lies within 5 sigma
    of the median, sigma first estimated from the MAD. (The MAD alone is biased on integer-valued data.)"""
    centre = np.median(values)
    rough = max(1.4826 * float(np.median(np.abs(values - centre))), 1.0)
    return float(values[np.abs(values - centre) < 5 * rough].std())


def _sidecar(
    result: BlendResult,
    *,
    options: BlendOptions,
    good: Sequence[Frame],
    stats: dict[Path, checks.FrameStats],
    digest: str,
) -> dict[str, Any]:
    import rawpy

    first = good[0]
    return {
        "medianscan": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "stack": result.stack.name,
        "method": options.method,
        "parameters": _parameters(options),
        "output": {
            "file": result.output.name,
            "pixels_sha256": digest,
            "shape": list(first.pixels.shape),
            "extra": [p.name for p in result.extra_outputs],
            "compressed": options.compress,
        },
        "camera": {"make": first.camera.make, "model": first.camera.model, "serial": first.camera.serial},
        "frames": [
            {
                "file": f.path.name,
                "sha256": f.sha256,
                "exposure": {
                    "iso": f.exposure.iso,
                    "exposure_time": f.exposure.exposure_time,
                    "f_number": f.exposure.f_number,
                },
                "mean_level": round(stats[f.path].level, 3) if f.path in stats else None,
                "shift_px": None
                if f.path not in stats or stats[f.path].shift is None
                else [round(v, 3) for v in stats[f.path].shift],  # type: ignore[union-attr]
            }
            for f in good
        ],
        "rejected": [{"file": p.name, "reason": r, "sha256": frames.file_sha256(p)} for p, r in result.dropped],
        "ignored": [
            {"file": i.path.name, "reason": i.reason, "sha256": frames.file_sha256(i.path)} for i in result.ignored
        ],
        "noise_ratio": result.to_json()["noise_ratio"],
        "seconds": round(result.seconds, 3),
        "timings": result.to_json()["timings"],
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "rawpy": rawpy.__version__,  # type: ignore[attr-defined]
            "libraw": rawpy.libraw_version,
        },
    }


def _parameters(options: BlendOptions) -> dict[str, Any]:
    params: dict[str, Any] = {
        "level_tolerance": options.level_tolerance,
        "max_shift_px": options.max_shift_px,
        "drop_bad_frames": options.drop_bad_frames,
    }
    if options.method == "sigma-clip":
        params |= {"kappa": options.kappa, "iterations": options.iterations}
    if options.method == "winsorized":
        params |= {"winsor_fraction": options.winsor_fraction}
    return params


def recorded_frames(sidecar: Path) -> dict[str, str] | None:
    """File name -> sha256 of every file a sidecar says the blend looked at (the frames, and those rejected or
    left out), to skip stacks already blended; None when there is no readable sidecar."""
    try:
        record = json.loads(sidecar.read_text())
        seen = [*record["frames"], *record.get("rejected", []), *record.get("ignored", [])]
        return {f["file"]: f["sha256"] for f in seen if f.get("sha256")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
