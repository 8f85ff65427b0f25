"""Blend one stack: read its frames, check they differ only in noise, combine, write outputs and a sidecar.

This is the one path every caller takes: `medianscan blend`, the daemon's blend workers and the hot folder.
Frames are decoded once, in parallel, straight into one preallocated stack buffer; nothing is written until
every check has passed, and every output appears atomically.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan.atomic import write_json
from medianscan.blend.bracket_pipeline import blend_bracket
from medianscan.blend.corrections import flat
from medianscan.blend.kernels.combine import warm_up
from medianscan.blend.kernels.noise_model import NoiseModel, stack_noise
from medianscan.blend.measuring import checks, dense
from medianscan.blend.measuring.exposure import raw_clipping
from medianscan.blend.measuring.noise import noise_ratio, noise_warnings
from medianscan.blend.options import BlendOptions
from medianscan.blend.reading import sniff
from medianscan.blend.reading.frames import Frame
from medianscan.blend.reading.recorded import recorded_frames
from medianscan.blend.reading.shelf import FrameArrays, allocate_frames, compact_good, return_freed_buffers_to_os
from medianscan.blend.sidecar import sidecar_json
from medianscan.blend.stack_files import (
    as_written,
    burst_count,
    checked_outputs,
    decode_all,
    master_flat,
    output_paths,
    preview_tone,
    resolve,
    roll_film,
    writing_outputs,
)
from medianscan.blend.write import blend_into, combine_frames
from medianscan.errors import BadFramesError, StackError
from medianscan.formats import FrameKind
from medianscan.library import contents, flats
from medianscan.outputs.editors import editor_sidecars
from medianscan.outputs.preview import Tone
from medianscan.records import BlendRecord, FlatRecord
from medianscan.timing import timed
from medianscan.wording import counted


def blend_stack(
    source: Path | Sequence[Path], options: BlendOptions | None = None, *, name: str | None = None
) -> BlendRecord:
    """Blend a stack folder (or the frame files of one stack) and write the outputs beside the raws; messages
    call the stack `name` (default: its folder's).

    Raises StackError, naming the frame and the reason, when the stack cannot be blended; then nothing is
    written and the inputs are untouched.
    """
    options = options or BlendOptions()
    if options.bracket:
        return blend_bracket(source, options, name=name)
    return_freed_buffers_to_os()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    stack, found = resolve(source)
    name = name or stack.name
    unreadable: list[checks.Problem] = list(found.unreadable)
    paths, kinds = list(found.frames), list(found.kinds)
    if len(paths) + len(unreadable) < checks.MIN_FRAMES:
        raise StackError(
            f"{name}: cannot blend: {counted(len(paths) + len(unreadable), 'frame')}; a blend needs at least "
            f"{checks.MIN_FRAMES} frames "
            "of the same scene" + "".join(f"; {p}" for p in unreadable)
        )
    if len(paths) < checks.MIN_FRAMES:
        raise BadFramesError(_describe(name, unreadable, options.drop_bad_frames, len(paths)), droppable=False)
    main, sidecar = checked_outputs(stack, options, kinds[0], paths)
    master = master_flat(name, options, kinds[0])
    xmp, film = roll_film(stack, kinds[0])
    with contextlib.ExitStack() as keep:  # the buffers go back on the shelf however the blend ends
        buffer = allocate_frames(paths[0], kinds[0], len(paths), keep)
        workers = min(len(paths), os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as loader:
            # meanwhile, beside the decoders (not one of them): a fresh process needs the kernels next
            kernels = loader.submit(_prepare_kernels, len(paths), kinds[0], options)
            with timed(timings, "decode"):
                sampled, undecodable = decode_all(paths, kinds, buffer, pool)
            unreadable += undecodable
            decoded = [f for f, _ in sampled]
            with timed(timings, "checks"):
                problems, stats = _noise_only_problems(sampled, unreadable, options, pool)
            del sampled  # the spectra are done with; a blend's peak memory is the stack plus three frames
            kernels.result()

        dropped = checks.left_out(problems)
        bad, whole = {p.path for p in dropped}, len(dropped) < len(problems)  # whole: a problem of no one frame
        good = [f for f in decoded if f.path not in bad]
        if problems and not (options.drop_bad_frames and len(good) >= checks.MIN_FRAMES and not whole):
            droppable = not options.drop_bad_frames and len(good) >= checks.MIN_FRAMES and not whole
            raise BadFramesError(_describe(name, problems, options.drop_bad_frames, len(good)), droppable=droppable)

        good = as_written(good, options)
        if master is not None:
            master.check_matches(good[0])
        clipped = raw_clipping(good)  # before compacting: it moves the good frames' pixels
        tone = preview_tone(good[0], same_picture=master is None)  # likewise
        pixels = compact_good(buffer, good)
        first, model = good[0], stack_noise(options.method, pixels, good[0].layout)  # the robust means' sigma
        with writing_outputs(main):
            extra, digest, flat_record, noise, snr = _blend_and_measure(
                main, pixels, first, options, timings=timings, keep=keep, master=master, xmp=xmp, tone=tone, noise=model
            )
        seconds = time.perf_counter() - started
        result = BlendRecord(
            stack=stack,
            output=main,
            sidecar=sidecar,
            extra_outputs=extra,
            frames=tuple(f.path for f in good),
            dropped=tuple(dropped),
            ignored=found.ignored,
            seconds=seconds,
            noise_ratio=noise,
            timings=timings,
            clipped=clipped,
            flat=flat_record,
            warnings=noise_warnings(noise, good),
            snr=snr,
        )
        write_json(sidecar, sidecar_json(result, options=options, good=good, stats=stats, digest=digest, film=film,
                                              count=burst_count(stack), noise=model))  # fmt: skip
        editor_sidecars(main, stack, options.editors)  # once the blend is whole; it never raises
        return result


def _noise_only_problems(
    sampled: Sequence[tuple[Frame, checks.Sample]],
    unreadable: list[checks.Problem],
    options: BlendOptions,
    pool: ThreadPoolExecutor,
) -> tuple[list[checks.Problem], dict[Path, checks.FrameStats]]:
    """Does the stack differ only in noise? Every problem names its frame; the stats go to the sidecar."""
    decoded = [f for f, _ in sampled]
    problems = unreadable + checks.metadata_problems(decoded)
    flagged = {p.path for p in checks.left_out(problems)}
    consistent = [f for f in decoded if f.path not in flagged]
    if len(consistent) < 2:
        return problems, {}
    measured = checks.measure([s for f, s in sampled if f.path not in flagged], pool.map)
    problems += checks.pixel_problems(consistent, measured, options.level_tolerance, options.max_shift_px)
    return problems, {f.path: s for f, s in zip(consistent, measured, strict=True)}


def _blend_and_measure(
    main: Path,
    pixels: FrameArrays,
    first: Frame,
    options: BlendOptions,
    *,
    timings: dict[str, float],
    keep: contextlib.ExitStack,
    master: flat.MasterFlat | None,
    xmp: bytes | None,
    tone: Tone | None,
    noise: NoiseModel | None,
) -> tuple[tuple[Path, ...], str, FlatRecord | None, float | None, float | None]:
    """write.blend_into, and meanwhile the noise measures: they read the stack, as the blend does, and write nothing,
    so they run beside the outputs' writing (which leaves a core idle: a DNG's encoding, its read-back) instead of
    after it. The extra outputs, the digest, the flat's record, the noise ratio and the SNR. Not beside a streamed
    image blend: its combine is a parallel region per band, and a third thread on the cores stalls each one."""
    if first.kind != "raw":
        extra, digest, flat_record = blend_into(
            main, pixels, first, options, timings=timings, keep=keep, flat=master, xmp=xmp, tone=tone, noise=noise
        )
        return extra, digest, flat_record, *_noise_measures(pixels, first, options, master)
    with ThreadPoolExecutor(1) as beside:
        measures = beside.submit(_noise_measures, pixels, first, options, master)
        extra, digest, flat_record = blend_into(
            main, pixels, first, options, timings=timings, keep=keep, flat=master, xmp=xmp, tone=tone, noise=noise
        )
        return extra, digest, flat_record, *measures.result()


def _noise_measures(
    pixels: FrameArrays, first: Frame, options: BlendOptions, master: flat.MasterFlat | None
) -> tuple[float | None, float | None]:
    """The blend's noise against one frame, and its SNR in the densest tenth (`frames: auto`)."""

    def blend(part: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return combine_frames(part, options)

    return noise_ratio(pixels, first, blend), dense.stack_snr(pixels, first, blend, options, master)


def _prepare_kernels(n: int, kind: FrameKind, options: BlendOptions) -> None:
    """Load (or compile) the combine kernels for this stack while the frames are read; a warm worker has them:
    the blend's (raws share one stack buffer, TIFFs and JPEGs stay frames apart, see `allocate_frames`) and the
    (n-1)-frame one of the noise measurement."""

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


def _describe(name: str, problems: Sequence[checks.Problem], dropping: bool, n_good: int) -> str:
    lines = "; ".join(str(p) for p in problems)
    if dropping:
        return f"{name}: only {counted(n_good, 'good frame')} left, at least {checks.MIN_FRAMES} needed ({lines})"
    return f"{name}: cannot blend: {lines}"


def prepare_flat(source: Path, roll: Path | None = None) -> Path:
    """The master flat for `--flat SOURCE`: a flat DNG blended by medianscan, or a folder of flat frames, blended
    unless its blend is already there and up to date with its frames.

    The daemon (no `roll`) blends the roll's flat folder in place, beside its frames. `medianscan blend` names the
    `roll` of the stacks it corrects: a folder of that roll's flats (or any roll's `flat/flat-NNN`) is blended in
    place too; any other folder is imported into the roll's flats (library.flats) and blended there, so the flat's
    own folder is never written. There a flat that cannot be blended, or is no flat, leaves nothing behind."""
    if source.is_file():
        return source
    if not source.is_dir():
        raise flat.FlatError(f"{source}: no such flat (give a folder of flat frames or a flat blended by medianscan)")
    found = contents.read_folder(source, sniff.inspect)
    if found.frames and found.kinds[0] != "raw":
        raise flat.FlatError(f"{source}: a flat must be raw frames of the bare light; these are {found.kinds[0]} files")
    if roll is None or flats.is_roll_flat(source, roll):
        master = _up_to_date(source, found.frames)
        return master or _blend_flat(source, source, None, checked=roll is not None)
    earlier = flats.imported(roll, found.frames)
    if earlier is not None:
        return _up_to_date(earlier, found.frames) or _blend_flat(source, earlier, None, checked=True)
    try:
        with flats.importing(roll, found.frames) as (work, name):
            _blend_flat(source, work, work / f"{name}_median.dng", checked=True)
    except OSError as exc:
        raise flat.FlatError(
            f"{source}: cannot bring the flat into {roll / flats.FLATS} ({exc.strerror or exc})"
        ) from None
    return output_paths(roll / flats.FLATS / name, "median", "raw", None)[0]


def _up_to_date(folder: Path, frames: Sequence[Path]) -> Path | None:
    """The master flat blended in `folder` when it is there and up to date with the flat's `frames`, else None."""
    master, sidecar = output_paths(folder, "median", "raw", None)
    recorded = recorded_frames(sidecar)
    if master.is_file() and recorded is not None and set(recorded) == {p.name for p in frames}:
        newest = max((p.stat().st_mtime_ns for p in frames), default=0)
        if master.stat().st_mtime_ns >= newest:
            return master
    return None


def _blend_flat(source: Path, folder: Path, output: Path | None, *, checked: bool) -> Path:
    """Blend the flat frames in `folder` (those of the flat `source`, named in messages); `checked`: read the
    master back as a flat at once, and take it away again when it is none."""
    try:
        result = blend_stack(folder, BlendOptions(output=output), name=source.name)
    except StackError as exc:
        raise flat.FlatError(f"the flat {source} cannot be blended: {exc}") from exc
    if checked:
        try:
            flat.load_master(result.output)
        except flat.FlatError as exc:
            for path in (result.output, result.sidecar, *result.extra_outputs):
                path.unlink(missing_ok=True)
            raise flat.FlatError(f"{source}: {str(exc).removeprefix(f'{result.output}: ')}") from None
    return result.output
