"""What a blend worker runs: one blend task (a stack folder, or the frames the hot folder planned), its output
read back, its record returned; or one stitch task (a tiled negative, `service.stitch_job`); and the warm-up
that loads the kernels before the first stack. The blend (numba's kernels, scipy) is imported by the functions
that run it, in the worker: the service's own process imports this module for BlendTask alone."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from medianscan.blend.options import BlendOptions
from medianscan.config.schema import BlendConfig
from medianscan.errors import DROP_HINT_CONFIG, BadFramesError, StackError
from medianscan.records import BlendRecord
from medianscan.service.stitch_job import StitchTask, stitch_job
from medianscan.stitch.record import StitchRecord


@dataclass(frozen=True)
class BlendTask:
    """One stack to blend: a stack folder (capture mode), or the frames of a planned stack (the hot folder),
    with the options; it crosses to the worker process pickled."""

    source: Path | tuple[Path, ...]
    options: BlendOptions
    flat: Path | None = None  # the folder of the roll's flat field, blended to its master flat when first used
    name: str | None = None  # the stack's name in messages, when not its folder's (a count or gap group)
    drop_hint: str = DROP_HINT_CONFIG  # how the user who started the service drops bad frames


def blend_job(stack: Path, task: BlendTask) -> BlendRecord:
    """Blend `task` (known to the pool as `stack`), read the written output back, return the record. Bad frames
    are named with the hint that fits how the service was started (the config key, or a command line flag)."""
    from medianscan.blend.pipeline import blend_stack, prepare_flat
    from medianscan.blend.verify import verify_output

    del stack
    source = task.source if isinstance(task.source, Path) else list(task.source)
    options = task.options if task.flat is None else dataclasses.replace(task.options, flat=prepare_flat(task.flat))
    try:
        record = blend_stack(source, options, name=task.name)
    except BadFramesError as exc:
        raise StackError(exc.hinted(task.drop_hint)) from None
    verify_output(record)
    return record


Task = BlendTask | StitchTask  # what the services' pool is handed
Result = BlendRecord | StitchRecord  # what it gives back


def run_job(key: Path, task: Task) -> Result:
    """The services' job: a blend, or the stitch of a tiled negative once its tiles are blended."""
    if isinstance(task, StitchTask):
        return stitch_job(key, task)
    return blend_job(key, task)


def warm_up_blend(frames: int, blend: BlendConfig | None = None) -> None:
    """Load (or compile, when `medianscan kernels` has not built them) the kernels a stack of `frames` frames uses
    before the first stack: the blend itself and the (frames - 1)-frame blend its noise measurement makes (see
    blend.measuring.noise), down to 3 and 2 frames when bad frames are dropped, with the configured method and its
    parameters. Bind the arguments with functools.partial (it pickles) to pass this as a pool's `warm`."""
    from medianscan.blend import pipeline, verify  # noqa: F401  (the blend's modules too, before the first stack)
    from medianscan.blend.kernels.combine import warm_up

    cfg = blend or BlendConfig()
    for n in range(frames, 1, -1) if cfg.drop_bad_frames else (frames, frames - 1):
        warm_up(
            n, methods=(cfg.method,), kappa=cfg.kappa, iterations=cfg.iterations, winsor_fraction=cfg.winsor_fraction
        )
