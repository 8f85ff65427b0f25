"""Per-pixel combine of a stack of frames: median, mean, sigma-clipped mean, winsorized mean.

Arrays only (no files, no metadata). `combine` checks what it is given and runs the numba kernel generated for
the stack's N (see `medianscan.blend.kernels.codegen`, loaded and cached by
`medianscan.blend.kernels.kernel_cache`); each pixel's N values stay in registers and a row's loop vectorises,
so a kernel runs near the speed of reading the stack once, with no (N, H, W) temporaries.

The robust means judge a value against the noise the stack itself shows (`medianscan.blend.kernels.noise_model`: read
noise plus shot noise at the pixel's level, per colour), not against the pixel's own N values: a sample sigma of
3 or 5 values cannot tell dust from noise (at N = 3 no value ever lies 3 sample sigmas from the median). So
sigma-clip and winsorized reject a speck of dust from N = 3 on, as the median does, and on a clean stack keep
every value, as the mean does.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from medianscan.blend.kernels.codegen import VECTOR_ROUNDS
from medianscan.blend.kernels.kernel_cache import load_kernel
from medianscan.blend.kernels.networks import winsor_count
from medianscan.blend.kernels.noise_model import NoiseModel, measure_rows
from medianscan.vocabulary import METHODS, Method

SUPPORTED_DTYPES = (np.dtype(np.uint16), np.dtype(np.uint8))

log = logging.getLogger(__name__)


def frames_buffer(n: int, shape: tuple[int, ...], dtype: npt.DTypeLike = np.uint16) -> npt.NDArray[Any]:
    """A C-contiguous (n, *shape) buffer with every page already touched.

    A long-lived worker allocates this once and decodes each burst into it: first touches of fresh memory cost
    page faults (seconds for gigabytes here) that a reused buffer pays only once.
    """
    frames = np.empty((n, *shape), dtype=dtype)
    frames.fill(0)
    return frames


Frames = npt.NDArray[Any] | Sequence[npt.NDArray[Any]]  # one (N, H, W[, C]) array, or N (H, W[, C]) frames


def _as_rows(frames: Frames) -> tuple[npt.NDArray[Any] | tuple[npt.NDArray[Any], ...], tuple[int, ...], np.dtype[Any]]:
    """What the kernels read: an (N, H, W*C) array or a tuple of N (H, W*C) frames (no copies for C-contiguous
    input), with the frame shape and dtype; anything else is a ValueError saying what is wrong."""
    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4):
            raise ValueError(f"frames must be (N, H, W) or (N, H, W, C), got shape {frames.shape}")
        if frames.shape[0] < 1:
            raise ValueError("no frames to combine")
        if frames.ndim == 4 and not frames.flags.c_contiguous:
            raise ValueError("an (N, H, W, C) array of frames must be C-contiguous")
        shape, dtype = frames.shape[1:], frames.dtype
        rows: npt.NDArray[Any] | tuple[npt.NDArray[Any], ...] = (
            frames.reshape(frames.shape[0], frames.shape[1], -1) if frames.ndim == 4 else frames
        )
    else:
        seq = tuple(frames)
        if not seq or not all(isinstance(f, np.ndarray) for f in seq):
            raise ValueError("frames must be a numpy array or a non-empty sequence of numpy arrays")
        shape, dtype = seq[0].shape, seq[0].dtype
        if len(shape) not in (2, 3) or any(f.shape != shape or f.dtype != dtype for f in seq):
            raise ValueError(f"frames must all be (H, W) or (H, W, C) of one shape and dtype, got {shape} {dtype}")
        if len(shape) == 3 and not all(f.flags.c_contiguous for f in seq):
            raise ValueError("(H, W, C) frames must be C-contiguous")
        rows = tuple(_read_only(f.reshape(shape[0], -1)) for f in seq)
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"the frames' dtype must be uint16 or uint8, got {dtype}")
    return rows, shape, dtype


def _read_only(rows: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A read-only view: numba compiles one kernel per writeable flag, so every sequence of frames (memory-mapped
    TIFFs, decoded JPEGs) shares the one `warm_up(..., frames_apart=True)` loads."""
    view = rows.view()
    view.flags.writeable = False
    return view


def _check_out(out: npt.NDArray[Any] | None, shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    if out is None:
        return np.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out must be {shape} {dtype}, got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous array")
    return out


def combine(
    frames: Frames,
    method: Method = "median",
    *,
    kappa: float = 3.0,
    iterations: int = 5,
    winsor_fraction: float = 0.2,
    noise: NoiseModel | None = None,
    out: npt.NDArray[Any] | None = None,
) -> npt.NDArray[Any]:
    """Combine frames: one (N, H, W) or (N, H, W, C) uint16/uint8 array, or a sequence of N such frames (memory-mapped
    files, say: read where they lie, never gathered), into one frame of the same dtype.

    - median: odd N bit-identical to `np.median(frames, axis=0)`; even N the two middle values' mean, rounded half
      up.
    - mean: arithmetic mean, rounded half up.
    - sigma-clip: sigma is one frame's noise at the pixel's level (`noise`). Round 1 rejects the values further
      than kappa sigma from the median; each later round (up to `iterations` in all, stopping when nothing
      changes) rejects, among those kept, the values further than kappa sigma from their mean. Result: the kept
      values' mean, rounded half up (if a round would reject everything it is not applied; if the first does, at
      even N, the median).
    - winsorized: of the g = floor(winsor_fraction*N) lowest and highest values (at least 1 when N >= 3, fewer
      than half), each lying further than kappa sigma from the median is replaced by its nearest kept neighbour
      (rank g or N-1-g); then the mean, rounded half up.
    `noise` is the stack's noise model (`noise_model.measure_frames`, with each colour's CFA phase and black level);
    without one the robust means measure it on the frames given, their 2x2 positions (a Bayer mosaic's colours)
    or an (H, W, C) frame's channels as its colours. A non-contiguous stack works but is slower; `out`
    (C-contiguous, shape[1:], same dtype) is filled and returned.
    """
    if not isinstance(frames, np.ndarray | Sequence):
        raise TypeError(f"frames must be a numpy array or a sequence of them, not {type(frames).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown combine method {method!r}; choose one of {', '.join(METHODS)}")
    if not kappa > 0:
        raise ValueError(f"kappa must be positive, got {kappa}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if not 0 <= winsor_fraction < 0.5:
        raise ValueError(f"winsor_fraction must be in [0, 0.5), got {winsor_fraction}")
    view, shape, dtype = _as_rows(frames)
    result = _check_out(out, shape, dtype)
    n = len(view)
    if n == 1 or result.size == 0:
        result[...] = view[0].reshape(shape) if n == 1 else 0
        return result
    target = result.reshape(shape[0], -1)
    g = winsor_count(n, winsor_fraction)
    args: tuple[Any, ...] = ()  # the robust means' thresholds
    if method == "median":
        kernel = load_kernel("median", n)
    elif method == "mean" or (method == "sigma-clip" and iterations == 0) or (method == "winsorized" and not g):
        kernel = load_kernel("mean", n)
    else:
        model = noise or _measured(view, shape)
        ta, tb, tz = model.thresholds(kappa, target.shape[1])
        if method == "sigma-clip":
            kernel, args = load_kernel("sigma-clip", n, min(iterations, VECTOR_ROUNDS)), (ta, tb, tz, int(iterations))
        else:
            kernel, args = load_kernel("winsorized", n, g), (ta, tb, tz)
    with _LAUNCH, _threads_for(n * result.size):
        kernel(view, target, *args)
    return result


_LAUNCH = threading.Lock()  # one kernel launch at a time: numba's workqueue layer aborts on two (omp and tbb do not)


SERIAL_VALUES = 1 << 23  # a stack of fewer values (16 MB of uint16) is combined on the calling thread alone


@contextlib.contextmanager
def _threads_for(values: int) -> Iterator[None]:
    """Small stacks (the noise measures' windows and subsamples) on the calling thread
    only: a few milliseconds of work, where starting the kernels' worker threads cost 30-70 ms on a busy host (the
    region waits for a thread the scheduler has not run yet). numba's thread count is the calling thread's own."""
    if values >= SERIAL_VALUES:
        yield
        return
    import numba  # loaded with the kernels already

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _measured(view: npt.NDArray[Any] | tuple[npt.NDArray[Any], ...], shape: tuple[int, ...]) -> NoiseModel:
    """The noise model of frames given without one: per channel of (H, W, C) frames, per 2x2 position else."""
    if len(shape) == 3:
        return measure_rows(view, np.arange(shape[2]).reshape(1, shape[2]))
    return measure_rows(view)


def warm_up(
    n_frames: int,
    dtype: npt.DTypeLike = np.uint16,
    methods: Iterable[Method] = METHODS,
    *,
    kappa: float = 3.0,
    iterations: int = 5,
    winsor_fraction: float = 0.2,
    frames_apart: bool = False,
) -> None:
    """Compile (first time: ~1-6 s per kernel) or load from numba's cache (~0.3 s)
    the kernels for n_frames, as `combine` will call them with these parameters.

    Call it when a worker starts so the first blend does not pay for it. Pass only the configured method to
    save time. `frames_apart`: for a sequence of frames (memory-mapped files, say) rather than one array.
    """
    tiny = np.zeros((n_frames, 2, 3), dtype=dtype)
    frames: Frames = tiny
    if frames_apart:
        frames = list(tiny)
    for method in methods:
        combine(frames, method, kappa=kappa, iterations=iterations, winsor_fraction=winsor_fraction)
