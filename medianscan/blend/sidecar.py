"""The sidecar JSON written beside every blend: method, parameters, every frame with its hash, exposure, level and
shift, frames rejected or left out and why, camera, versions and timings (read back by
`medianscan.blend.reading.recorded`, which files a sidecar says were blended, to skip stacks already blended).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rawpy

from medianscan import __version__
from medianscan.blend.kernels.noise_model import NoiseModel
from medianscan.blend.measuring import checks
from medianscan.blend.options import BlendOptions
from medianscan.blend.reading import frames
from medianscan.blend.reading.frames import Frame
from medianscan.records import BlendRecord, FramesRecord


def sidecar_json(
    result: BlendRecord,
    *,
    options: BlendOptions,
    good: Sequence[Frame],
    stats: dict[Path, checks.FrameStats],
    digest: str,
    film: dict[str, Any] | None = None,
    count: FramesRecord | None = None,
    noise: NoiseModel | None = None,
) -> dict[str, Any]:

    first = good[0]
    return {
        "medianscan": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "stack": result.stack.name,
        "method": options.method,
        "parameters": parameters_json(options, noise),
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
                "differs": round(stats[f.path].differs, 4) if f.path in stats else None,  # share beyond noise
            }
            for f in good
        ],
        "rejected": [
            {"file": d.path.name, "reason": d.reason, "sha256": frames.sha256_if_readable(d.path)}
            for d in result.dropped
        ],
        "ignored": [
            {"file": i.path.name, "reason": i.reason, "sha256": frames.sha256_if_readable(i.path)}
            for i in result.ignored
        ],
        "noise_ratio": result.to_json()["noise_ratio"],
        "snr": {  # in the negative's densest tenth, the colour that limits (blend.measuring.dense)
            "blend": result.to_json()["snr"],  # what this blend reached, measured on its own frames
            "frames_auto": None if count is None else count.to_json(),  # a `frames: auto` burst's count and why
        },
        "warnings": list(result.warnings),
        "raw_clipped": result.to_json()["clipped"],  # colour -> share of photosites at white, in the worst frame
        "flat": result.to_json()["flat"],  # the flat field: master flat, gains, dust, clip control
        "film": film,  # the roll's film record, its roll id and this negative's number in it
        "bracket": result.to_json()["bracket"],  # a multi-exposure merge: groups, measured ratios, roll-off, noise
        "seconds": round(result.seconds, 3),
        "timings": result.to_json()["timings"],
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "rawpy": rawpy.__version__,  # type: ignore[attr-defined]
            "libraw": rawpy.libraw_version,
        },
    }


def parameters_json(options: BlendOptions, noise: NoiseModel | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "level_tolerance": options.level_tolerance,
        "max_shift_px": options.max_shift_px,
        "drop_bad_frames": options.drop_bad_frames,
        "white_level": options.white_level,
    }
    if options.method == "sigma-clip":
        params |= {"kappa": options.kappa, "iterations": options.iterations}
        params["rule"] = (
            f"values further than {options.kappa:g} sigma from the median (later rounds: from the kept values' "
            "mean) left out, sigma one frame's noise at that level as measured on the stack; the kept values' mean"
        )
    if options.method == "winsorized":
        params |= {"kappa": options.kappa, "winsor_fraction": options.winsor_fraction}
        params["rule"] = (
            f"of the {options.winsor_fraction:g} lowest and highest values, those further than {options.kappa:g} "
            "sigma from the median replaced by the nearest kept value, sigma one frame's noise at that level as "
            "measured on the stack; then the mean"
        )
    if noise is not None:
        params["noise"] = noise.to_json()  # what sigma was: read noise plus shot noise, per colour
    return params
