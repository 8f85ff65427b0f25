"""Generated kernels on disk: content-addressed source files (`<kind>_<n>_<hash>.py`) in a cache folder, written
atomically, so numba's `cache=True` reuses the machine code across processes and concurrent writers never see a
partial file; a first compile is announced with the time it took.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medianscan import atomic
from medianscan.blend.kernels.codegen import (
    floor_source,
    mean_source,
    median_source,
    sigma_clip_source,
    winsorized_source,
)

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3  # bump when the generated code's meaning changes without its text changing
CACHE_ENV = "MEDIANSCAN_KERNEL_CACHE"
Kernel = Callable[..., Any]


def kernel_dir() -> Path:
    """Where generated kernels (and numba's cache beside them) live: $MEDIANSCAN_KERNEL_CACHE, else XDG cache."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "medianscan" / "kernels"


def cache_folder() -> Path:
    """The kernel folder this process really uses: `kernel_dir()`, or a private temporary one when that cannot
    be written (a service user without a home)."""
    return _writable_dir(kernel_dir())


def _writable_dir(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe.{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        folder = Path(tempfile.gettempdir()) / f"medianscan-kernels-{os.getuid()}"
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _source(kind: str, n: int, g: int) -> str:
    if kind == "median":
        return median_source(n)
    if kind == "mean":
        return mean_source(n)
    if kind == "winsorized":
        return winsorized_source(n, g)
    if kind == "sigma-clip":
        return sigma_clip_source(n, g)
    if kind == "floor":
        return floor_source(n)
    raise ValueError(f"unknown kernel kind {kind!r}")


_LOAD_LOCK = threading.Lock()  # one writer per process: the atomic temp name is per process


@functools.cache
def load_kernel(kind: str, n: int, g: int = 0) -> Kernel:
    """The numba kernel `kind` for stacks of n frames (g: values clamped per end for winsorized, vectorised
    rounds for sigma-clip).

    The source file is only written when absent, atomically, under a name that is the hash of its content: a
    second process either finds the finished file or writes the identical bytes, so numba's cache stays valid.
    """
    with _LOAD_LOCK:
        return _load_kernel(kind, n, g)


def _load_kernel(kind: str, n: int, g: int) -> Kernel:
    source = _source(kind, n, g)
    digest = hashlib.sha256(f"{GENERATOR_VERSION}\n{source}".encode()).hexdigest()[:16]
    tag = kind.replace("-", "_") + (f"_{n}_{g}" if kind in ("winsorized", "sigma-clip") else f"_{n}")
    folder = cache_folder()
    path = folder / f"{tag}_{digest}.py"
    data = source.encode()
    if not path.is_file() or path.read_bytes() != data:
        atomic.write_bytes(path, data)
    name = f"_medianscan_kernel_{tag}_{digest}"
    module = sys.modules.get(name)
    fresh = module is None and not any((folder / "__pycache__").glob(f"{path.stem}.kernel-*.nbi"))  # numba's index
    if fresh:
        log.info(
            "compiling the %s kernel for %d frames (first use only, then cached in %s): a few seconds",
            kind,
            n,
            folder,
        )
    if module is None:  # registered first: numba's cache re-imports the module by name when loading
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - only for a vanished cache folder
            raise ImportError(f"cannot load generated kernel {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    kernel: Kernel = module.kernel
    return _timed_first_call(kernel, f"the {kind} kernel for {n} frames") if fresh else kernel


def _timed_first_call(kernel: Kernel, what: str) -> Kernel:
    """The kernel, saying how long its first call took: numba compiles it then, not at load."""
    first = [True]

    def call(*args: Any) -> Any:
        if not first[0]:
            return kernel(*args)
        started = time.perf_counter()
        result = kernel(*args)
        first[0] = False
        log.info("compiled %s in %.1f s", what, time.perf_counter() - started)
        return result

    return call
