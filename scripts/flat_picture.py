"""Makes docs/flat-before-after.jpg for the README: the real CR2 seen through a lens falling to 0.62 at the
corners and past sensor dust, blended without and with the flat-field correction (the test case of
tests/test_flat.py), each rendered as the DNG's own preview. Run: .venv/bin/python -m scripts.flat_picture"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import imagecodecs
import numpy as np

from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack, prepare_flat
from medianscan.blend.reading import frames
from medianscan.outputs.preview import render_preview
from tests.conftest import find_sample_raw
from tests.flats import flat_light, truth, write_stack
from tests.stacks import load_scene

SPOTS = ((0.3, 0.6, 14.0), (0.62, 0.25, 18.0), (0.2, 0.85, 10.0))  # dust big enough to see at this size


def preview(path: Path, white: int) -> np.ndarray:
    frame = frames.read_frame(path)
    assert frame.layout is not None
    # both at the sensor's own white level, so the corrected one is not shown darker for its headroom
    return render_preview(frame.pixels.astype(np.uint16), replace(frame.layout, white_level=white), 1440)


def main() -> int:
    raw = find_sample_raw()
    if raw is None:
        print("no sample raw (Debian's rawtran-doc or MEDIANSCAN_SAMPLE_RAW; make test installs it)", file=sys.stderr)
        return 1
    scene = load_scene(raw).crop(300, 400, 960, 1440)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_stack(root / "flat", scene, flat_light(scene), 5, seed=1, spots=SPOTS)
        write_stack(root / "frame-001", scene, truth(scene), 5, seed=2, spots=SPOTS)
        before = blend_stack(root / "frame-001", BlendOptions(output=root / "before.dng")).output
        after = blend_stack(root / "frame-001", BlendOptions(flat=prepare_flat(root / "flat"))).output
        white = round(scene.layout.white_level * 0.45)  # the CR2 is a dark frame: shown brighter, both alike
        left, right = preview(before, white), preview(after, white)
        gap = np.full((left.shape[0], 8, 3), 255, dtype=np.uint8)
        side_by_side = np.ascontiguousarray(np.concatenate([left, gap, right], axis=1))
    out = Path(__file__).resolve().parent.parent / "docs" / "flat-before-after.jpg"
    out.write_bytes(bytes(imagecodecs.jpeg8_encode(side_by_side, level=88)))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
