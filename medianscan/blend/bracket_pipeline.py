"""Blend a bracket (`--bracket`): the frames fall into exposure groups by shutter time; each group is checked and
blended like a stack of its own, then medianscan.blend.corrections.bracket merges the groups into one DNG beside
the raws.

Everything is checked before anything is written: the body, ISO and aperture across the groups, at least
MIN_GROUP frames per group, noise-only differences within each group, and the measured exposure ratios.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan.atomic import write_json
from medianscan.blend.corrections import bracket, levels
from medianscan.blend.measuring import checks, dense
from medianscan.blend.measuring.exposure import raw_clipping
from medianscan.blend.measuring.noise import noise_warnings
from medianscan.blend.options import BlendOptions
from medianscan.blend.reading.frames import Frame
from medianscan.blend.reading.shelf import allocate_frames, return_freed_buffers_to_os
from medianscan.blend.sidecar import sidecar_json
from medianscan.blend.stack_files import (
    as_written,
    burst_count,
    checked_outputs,
    decode_all,
    master_flat,
    preview_tone,
    resolve,
    roll_film,
    writing_outputs,
)
from medianscan.blend.write import combine_frames, flat_corrected, write_outputs
from medianscan.errors import BadFramesError, StackError
from medianscan.outputs import dng
from medianscan.outputs.editors import editor_sidecars
from medianscan.records import BlendRecord
from medianscan.timing import timed
from medianscan.wording import counted

GROUP_TOLERANCE = 0.03  # shutter times this close (relative) are one group (EXIF rationals round)


def shutter_label(seconds: float) -> str:
    return f"1/{round(1 / seconds)}" if seconds < 0.3 else f"{seconds:g}"


def exposure_groups(frames: Sequence[Frame]) -> list[list[int]]:
    """Indices of the frames of each shutter time, shortest first; StackError for a frame with no shutter time."""
    groups: list[tuple[float, list[int]]] = []
    for i, frame in enumerate(frames):
        seconds = frame.exposure.exposure_time
        if seconds is None or seconds <= 0:
            raise StackError(f"{frame.path}: no exposure time recorded; a bracket is grouped by shutter time")
        for t, members in groups:
            if abs(seconds / t - 1) <= GROUP_TOLERANCE:
                members.append(i)
                break
        else:
            groups.append((seconds, [i]))
    return [members for _, members in sorted(groups)]


def blend_bracket(source: Path | Sequence[Path], options: BlendOptions, *, name: str | None = None) -> BlendRecord:
    """Blend each exposure group of a bracket and merge them into one 16-bit raw DNG beside the raws."""
    return_freed_buffers_to_os()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    stack, found = resolve(source)
    name = name or stack.name
    paths, kinds = list(found.frames), list(found.kinds)
    if found.unreadable:
        raise BadFramesError(
            f"{name}: cannot blend the bracket: " + "; ".join(map(str, found.unreadable)), droppable=False
        )
    if not paths or kinds[0] != "raw":
        raise StackError(f"{name}: --bracket merges raw frames; these are {kinds[0] if kinds else 'no'} frames")
    main, sidecar = checked_outputs(stack, options, "raw", paths)
    master = master_flat(name, options, "raw")
    xmp, film = roll_film(stack, "raw")
    with contextlib.ExitStack() as keep, ThreadPoolExecutor(min(len(paths), os.cpu_count() or 1)) as pool:
        buffer = allocate_frames(paths[0], "raw", len(paths), keep)
        with timed(timings, "decode"):
            sampled, undecodable = decode_all(paths, kinds, buffer, pool)
        decoded = as_written([f for f, _ in sampled], options)
        sampled = [(f, s) for f, (_, s) in zip(decoded, sampled, strict=True)]
        problems = undecodable + checks.metadata_problems(decoded, same_shutter=False)
        if problems:
            raise BadFramesError(f"{name}: cannot blend the bracket: " + "; ".join(map(str, problems)), droppable=False)
        members = exposure_groups(decoded)
        _check_groups(name, decoded, members)
        with timed(timings, "checks+combine"):
            stats, blends = _blend_groups(name, sampled, members, buffer, options=options, pool=pool)
        first = decoded[members[-1][0]]  # the merge is in the longest exposure's units: its frame speaks for it
        assert first.layout is not None
        tone = preview_tone(first)
        exposures = _exposures(decoded, members, blends, first)
        with timed(timings, "merge"):
            merged, layout, record = bracket.merge(exposures, first.layout)
            layout, record = levels.settled(layout, merged, first.layout.baseline_ev, record)  # only the headroom used
        if master is not None:
            master.check_matches(first)
        layout, flat_record = (layout, None) if master is None else flat_corrected(master, merged, layout)
        with timed(timings, "write"), writing_outputs(main):
            extra, digest = write_outputs(
                main,
                merged,
                dataclasses.replace(first, layout=layout),
                options,
                xmp=xmp,
                tone=tone,
                gain=None if master is None else master.gain,  # its preview: the longest frame's, changed so
                raised_ev=layout.baseline_ev - first.layout.baseline_ev,
                shorter=[decoded[group[0]] for group in members[:-1]],
            )
            if options.keep_groups:
                extra += _write_groups(main, options, exposures, [decoded[group[0]] for group in members])
        good = [decoded[i] for group in members for i in group]
        result = BlendRecord(
            stack=stack,
            output=main,
            sidecar=sidecar,
            extra_outputs=extra,
            frames=tuple(f.path for f in good),
            dropped=(),
            ignored=found.ignored,
            seconds=time.perf_counter() - started,
            noise_ratio=None,
            timings=timings,
            clipped=raw_clipping([decoded[i] for i in members[0]]),  # the shortest group: clipped in the merge too
            flat=flat_record,
            bracket=record,
            warnings=tuple(w for group in members for w in noise_warnings(None, [decoded[i] for i in group])),
            snr=dense.stack_snr(  # the merge's dense parts come from the longest exposure
                _group_arrays(buffer, decoded, members[-1]),
                first,
                lambda p: combine_frames(p, options),
                options,
                master,
            ),
        )
        write_json(sidecar, sidecar_json(result, options=options, good=good, stats=stats, digest=digest, film=film,
                                              count=burst_count(stack)))  # fmt: skip
        editor_sidecars(main, stack, options.editors)  # once the merge is whole; it never raises
        return result


def _blend_groups(
    name: str,
    sampled: Sequence[tuple[Frame, checks.Sample]],
    members: Sequence[Sequence[int]],
    buffer: npt.NDArray[np.generic] | None,
    *,
    options: BlendOptions,
    pool: ThreadPoolExecutor,
) -> tuple[dict[Path, checks.FrameStats], list[npt.NDArray[np.generic]]]:
    """Each group checked for noise-only differences within it, then blended with the chosen method."""
    stats: dict[Path, checks.FrameStats] = {}
    blends = []
    decoded = [f for f, _ in sampled]
    for group in members:
        measured = checks.measure([sampled[i][1] for i in group], pool.map)
        frames_g = [decoded[i] for i in group]
        bad = checks.pixel_problems(frames_g, measured, options.level_tolerance, options.max_shift_px)
        if bad:
            label = shutter_label(frames_g[0].exposure.exposure_time or 0)
            raise BadFramesError(f"{name}: the {label} group: " + "; ".join(map(str, bad)), droppable=False)
        stats |= {f.path: s for f, s in zip(frames_g, measured, strict=True)}
        blends.append(combine_frames(_group_arrays(buffer, decoded, group), options))
    return stats, blends


def _check_groups(name: str, frames: Sequence[Frame], members: Sequence[Sequence[int]]) -> None:
    if frames[0].layout is not None and frames[0].layout.linear:
        raise StackError(f"{name}: --bracket merges colour-filter mosaics; these raws hold linear RGB")
    if len(members) < 2:
        label = shutter_label(frames[0].exposure.exposure_time or 0)
        raise StackError(f"{name}: --bracket needs two or more shutter times; every frame is at {label}")
    for group in members:
        if len(group) < bracket.MIN_GROUP:
            label = shutter_label(frames[group[0]].exposure.exposure_time or 0)
            files = ", ".join(frames[i].path.name for i in group)
            raise StackError(
                f"{name}: the {label} group has {counted(len(group), 'frame')} ({files}); a bracket needs at least "
                f"{bracket.MIN_GROUP} per exposure"
            )


def _group_arrays(
    buffer: npt.NDArray[np.generic] | None, frames: Sequence[Frame], group: Sequence[int]
) -> npt.NDArray[np.generic]:
    """The group's frames as one (N, H, W) array: a view of the stack buffer when they lie side by side in it
    (a burst per exposure, as the camera shoots them), else gathered."""
    side_by_side = list(group) == list(range(group[0], group[0] + len(group)))
    if buffer is not None and side_by_side and all(np.shares_memory(frames[i].pixels, buffer[i]) for i in group):
        return buffer[group[0] : group[0] + len(group)]
    return np.stack([frames[i].pixels for i in group])


def _exposures(
    frames: Sequence[Frame], members: Sequence[Sequence[int]], blends: Sequence[npt.NDArray[np.generic]], first: Frame
) -> list[bracket.Exposure]:
    """Each group's blend with its frame noise in the longest group's shadows (from its first two frames)."""
    assert first.layout is not None
    shadows = bracket.ShadowNoise(blends[-1], first.layout)
    out = []
    for group, blend in zip(members, blends, strict=True):
        seconds = frames[group[0]].exposure.exposure_time or 0.0
        noise = shadows.of(frames[group[0]].pixels, frames[group[1]].pixels)
        label, names = shutter_label(seconds), tuple(frames[i].path.name for i in group)
        out.append(bracket.Exposure(seconds, label, names, blend.astype(np.uint16, copy=False), noise))
    return out


def _write_groups(
    main: Path, options: BlendOptions, exposures: Sequence[bracket.Exposure], firsts: Sequence[Frame]
) -> tuple[Path, ...]:
    """Each group's own blend (`--keep-groups`) beside the merge `main`, with the metadata of the group's first
    frame (`firsts`)."""
    written = []
    for group, first in zip(exposures, firsts, strict=True):
        assert first.layout is not None
        path = main.with_name(
            f"{main.stem.removesuffix('_' + options.method)}_{group.label.replace('/', '-')}s_{options.method}.dng"
        )
        dng.write_dng(
            path,
            group.blend,
            first.layout,
            first.camera,
            first.exposure,
            compress=options.compress,
            description=f"the {group.label} group of a bracket",
            metadata_from=first.path,
        )
        written.append(path)
    return tuple(written)
