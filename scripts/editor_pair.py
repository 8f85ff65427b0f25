"""Makes docs/dng-beside-its-source.jpg for the README: the real CR2 (left) and the median DNG of three copies of
it (right), each developed by darktable-cli with a new user's defaults, and prints how far apart the two are in
darktable, RawTherapee (default profile) and LibRaw, per channel in linear light.
Run: .venv/bin/python -m scripts.editor_pair"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import imagecodecs
import numpy as np

from medianscan.blend.pipeline import blend_stack
from tests.conftest import find_sample_raw
from tests.readers import exposure_gap, linear_light, render_libraw, start_darktable, start_rawtherapee


def main() -> int:
    raw = find_sample_raw()
    if raw is None:
        print("no sample raw (../shared/samples/IMG_5952.CR2 or MEDIANSCAN_SAMPLE_RAW)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        stack = Path(tmp) / "frame-001"
        stack.mkdir()
        for i in range(3):
            shutil.copy(raw, stack / f"IMG_{i + 1:04d}.CR2")
        blend = blend_stack(stack).output
        dt = start_darktable([raw, blend], Path(tmp) / "dt", size=900)
        rt = start_rawtherapee([raw, blend], Path(tmp) / "rt", size=900, default_profile=True)
        darktable, rawtherapee = dt.wait(), rt.wait()
        for name, images in (("darktable", darktable), ("RawTherapee", rawtherapee)):
            gap = exposure_gap(linear_light(images[blend]), linear_light(images[raw]))
            print(f"{name}: blend - source = {' / '.join(f'{g:+.3f}' for g in gap)} EV (R / G / B)")
        gap = exposure_gap(render_libraw(blend, linear=False), render_libraw(raw, linear=False))
        print(f"LibRaw: blend - source = {' / '.join(f'{g:+.3f}' for g in gap)} EV (R / G / B)")
        left, right = darktable[raw], darktable[blend]
        white = np.full((left.shape[0], 8, 3), 255, dtype=np.uint8)
        pair = np.ascontiguousarray(np.concatenate([left, white, right], axis=1))
    out = Path(__file__).resolve().parent.parent / "docs" / "dng-beside-its-source.jpg"
    out.write_bytes(bytes(imagecodecs.jpeg8_encode(pair, level=88)))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
