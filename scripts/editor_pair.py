"""Makes docs/dng-beside-its-source.jpg for the README: the real CR2 (left) and the median DNG of three copies of
it (right), each developed by darktable-cli with a new user's defaults, and prints, for darktable, RawTherapee
(its default profile, Auto-Matched Curve) and LibRaw (dcraw_emu's defaults): the size each shows of the source and
of the blend, and how far apart the two are per channel in linear light; and whether the blend carries the
camera's own preview byte for byte (what RawTherapee's curve is fitted to). Every editor renders at full size.
Run: .venv/bin/python -m scripts.editor_pair"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt

from medianscan.blend.pipeline import blend_stack
from medianscan.outputs.preview import stored_preview
from tests.conftest import find_sample_raw
from tests.readers import exposure_gap, linear_light, render_libraw, start_darktable, start_rawtherapee

FULL = 8000  # a render size no source reaches: the editors render at full size, so sizes compare exactly
PICTURE_WIDTH = 900  # each half of the picture, at most


def main() -> int:
    raw = find_sample_raw()
    if raw is None:
        print("no sample raw (Debian's rawtran-doc or MEDIANSCAN_SAMPLE_RAW; make test installs it)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        stack = Path(tmp) / "frame-001"
        stack.mkdir()
        for i in range(3):
            shutil.copy(raw, stack / f"IMG_{i + 1:04d}.CR2")
        blend = blend_stack(stack).output
        same = stored_preview(blend) == stored_preview(raw) is not None
        dt = start_darktable([raw, blend], Path(tmp) / "dt", size=FULL)
        rt = start_rawtherapee([raw, blend], Path(tmp) / "rt", size=FULL, default_profile=True)
        darktable, rawtherapee = dt.wait(), rt.wait()
        libraw = {path: render_libraw(path, linear=False, half_size=False) for path in (raw, blend)}
    carried = "the camera's own, byte for byte" if same else "not the camera's"
    print(f"the blend's embedded preview: {carried}")
    renders = {  # linear light, each
        "darktable": {path: linear_light(image) for path, image in darktable.items()},
        "RawTherapee": {path: linear_light(image) for path, image in rawtherapee.items()},
        "LibRaw": libraw,
    }
    for name, images in renders.items():
        source, ours = images[raw], images[blend]
        gap = exposure_gap(ours, source)
        print(
            f"{name}: source {_size(source)}, blend {_size(ours)}; "
            f"blend - source = {' / '.join(f'{g:+.3f}' for g in gap)} EV (R / G / B)"
        )
    left, right = _shrunk(darktable[raw]), _shrunk(darktable[blend])
    white = np.full((left.shape[0], 8, 3), 255, dtype=np.uint8)
    pair = np.ascontiguousarray(np.concatenate([left, white, right], axis=1))
    out = Path(__file__).resolve().parent.parent / "docs" / "dng-beside-its-source.jpg"
    out.write_bytes(bytes(imagecodecs.jpeg8_encode(pair, level=88)))
    print(out)
    return 0


def _size(image: npt.NDArray[np.generic]) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


def _shrunk(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """`image` reduced by whole blocks (their mean) to at most PICTURE_WIDTH columns."""
    k = max(1, math.ceil(image.shape[1] / PICTURE_WIDTH))
    h, w = image.shape[0] // k * k, image.shape[1] // k * k
    blocks = np.asarray(image[:h, :w, :3], dtype=np.float64).reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))
    out: npt.NDArray[np.uint8] = np.clip(np.round(blocks), 0, 255).astype(np.uint8)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
