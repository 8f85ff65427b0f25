"""What a blend wrote and what went into it: the record that crosses from the worker to the daemon, the manifest,
the watch service and status, and the sidecar JSON written beside every blend.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medianscan import __version__
from medianscan.blend import checks, frames
from medianscan.blend.frames import Frame
from medianscan.blend.options import BlendOptions
from medianscan.library.contents import LeftOut


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
    noise_ratio: float | None  # noise of the blend / noise of one frame, measured (see noise_ratio)
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


def sidecar_json(
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
        "parameters": parameters_json(options),
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


def parameters_json(options: BlendOptions) -> dict[str, Any]:
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
