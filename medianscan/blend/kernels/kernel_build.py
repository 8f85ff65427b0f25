"""Build the kernels a scanning set-up will use ahead of time, so no blend waits for a compile.

numba compiles each kernel (one per method and frame count) the first time it is used: 1-6 s each, about 10 s
for sigma-clip. A burst of N frames uses N and N-1 (the noise measurement), and N-1 down to 3 when bad frames are
dropped. `medianscan kernels` (run by `make demo`, `make test` and the README's service install) builds them on
every core, and the daemon does the same at its start in the background when they are missing; afterwards a
worker loads each from the cache in a fraction of a second. A stamp in the kernel cache records a finished
build, so asking again costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numba

from medianscan import atomic
from medianscan.blend.kernels.combine import warm_up
from medianscan.blend.kernels.kernel_cache import GENERATOR_VERSION, cache_folder
from medianscan.config.schema import BlendConfig
from medianscan.vocabulary import Method

log = logging.getLogger(__name__)

SMALLEST, COMMON_LARGEST = 3, 16  # a stack has at least 3 frames; bursts of up to 15, and their N + 1


@dataclass(frozen=True)
class KernelNeed:
    """One kernel to have ready: a method for a stack of `frames` frames, as one array or as frames apart."""

    frames: int
    method: Method
    kappa: float = 3.0
    iterations: int = 5
    winsor_fraction: float = 0.2
    apart: bool = False  # a sequence of frames (TIFFs, JPEGs of the hot folder) rather than one raw stack
    dtype: str = "uint16"


def needs(blend: BlendConfig, largest: int, *, apart: bool = False) -> list[KernelNeed]:
    """The kernels `blend` uses for stacks of 3 to `largest` frames (at least COMMON_LARGEST), largest first."""
    top = max(largest, COMMON_LARGEST)
    shapes = [(False, "uint16")] + ([(True, "uint16"), (True, "uint8")] if apart else [])
    return [
        KernelNeed(n, blend.method, blend.kappa, blend.iterations, blend.winsor_fraction, frames_apart, dtype)
        for n in range(top, SMALLEST - 1, -1)
        for frames_apart, dtype in shapes
    ]


def _generators() -> str:
    """The text of the modules that write the kernels' source (this folder's), hashed: a change to what they
    generate, a move of them included, makes the stamp of an earlier build no longer match."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    return digest.hexdigest()


def _stamp(wanted: Iterable[KernelNeed]) -> str:
    key = json.dumps([GENERATOR_VERSION, numba.__version__, _generators(), [asdict(w) for w in wanted]], sort_keys=True)
    return f"built-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def built(wanted: list[KernelNeed]) -> bool:
    """True when a build of exactly these kernels finished with this code and this numba."""
    return (cache_folder() / _stamp(wanted)).is_file()


def _build_one(need: KernelNeed) -> tuple[KernelNeed, float]:
    started = time.perf_counter()
    warm_up(
        need.frames,
        need.dtype,
        (need.method,),
        kappa=need.kappa,
        iterations=need.iterations,
        winsor_fraction=need.winsor_fraction,
        frames_apart=need.apart,
    )
    return need, time.perf_counter() - started


def _nice() -> None:
    os.nice(10)  # a build at the daemon's start leaves the camera and the blends the cores they need


def build(
    wanted: list[KernelNeed],
    *,
    workers: int | None = None,
    background: bool = False,
    progress: Callable[[KernelNeed, float], None] | None = None,
) -> float:
    """Compile (or load) every kernel of `wanted` in spawned processes on every core; returns the seconds it
    took. Nothing to do when `built(wanted)`."""
    if built(wanted):
        return 0.0
    started = time.perf_counter()
    context = mp.get_context("spawn")  # numba and rawpy do not survive fork
    count = workers or min(len(wanted), os.cpu_count() or 1)
    with ProcessPoolExecutor(count, mp_context=context, initializer=_nice if background else None) as pool:
        for need, seconds in pool.map(_build_one, wanted):
            if progress is not None:
                progress(need, seconds)
    atomic.write_bytes(cache_folder() / _stamp(wanted), json.dumps([asdict(w) for w in wanted]).encode())
    return time.perf_counter() - started
