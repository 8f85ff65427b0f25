"""DNG write speed: medianscan.outputs.dng.write_dng against the floor and against tifffile + exiv2, in one run.

On the real CR2's mosaic (8.5 MP; `--scale 2` tiles it to 34 MP), interleaved, medians of `--repeats` runs:

- floor:        the mosaic's bytes written to a temp name, fsynced, renamed (what any atomic writer must pay)
- ours:         write_dng uncompressed (preview included), and with lossless-JPEG tiles
- preview:      render_preview alone (part of "ours")
- tifffile+exiv2: the other way the notes name: tifffile writes preview + SubIFD with the DNG tags (it
                cannot write the ExifIFD pointer), then exiv2 adds the EXIF tags to the temp file in place

Ratios are against the floor; sizes against the uncompressed mosaic.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rawpy

from medianscan.atomic import atomic_path
from medianscan.blend.reading.frames import read_metadata
from medianscan.blend.reading.raw_layout import layout_from_rawpy
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout
from medianscan.outputs.dng import write_dng
from medianscan.outputs.preview import render_preview
from tests.conftest import find_sample_raw


def floor(path: Path, mosaic: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        fh.write(mosaic.data)


def tifffile_exiv2(
    path: Path, mosaic: np.ndarray, layout: MosaicLayout, camera: CameraInfo, exposure: Exposure
) -> None:
    import exiv2
    import tifffile

    preview = render_preview(mosaic, layout)
    top, left, bottom, right = layout.active_area
    cfa = [{"R": 0, "G": 1, "B": 2}[layout.colors[i]] for i in layout.pattern.reshape(-1)]
    matrix = np.round(np.asarray(layout.color_matrix).reshape(-1) * 10000).astype(int)
    raw_tags = [
        (33421, "H", 2, layout.pattern.shape, True),
        (33422, "B", len(cfa), cfa, True),
        (50713, "H", 2, (1, 1), True),
        (50714, "I", 1, (int(np.mean(layout.black_levels)),), True),
        (50717, "I", 1, (layout.white_level,), True),
        (50829, "I", 4, (top, left, bottom, right), True),
    ]
    ifd0_tags = [
        (271, "s", 0, camera.make, True),
        (272, "s", 0, camera.model, True),
        (50706, "B", 4, (1, 4, 0, 0), True),
        (50707, "B", 4, (1, 1, 0, 0), True),
        (50708, "s", 0, f"{camera.make} {camera.model}", True),
        (50721, "2i", 9, [v for m in matrix for v in (m, 10000)], True),
        (50728, "2I", 3, [v for n in layout.as_shot_neutral for v in (round(n * 10000), 10000)], True),
        (50778, "H", 1, (21,), True),
    ]
    with atomic_path(path) as tmp:
        with tifffile.TiffWriter(tmp) as tif:
            tif.write(preview, photometric="rgb", subfiletype=1, subifds=1, extratags=ifd0_tags, metadata=None)
            tif.write(mosaic, photometric=32803, subfiletype=0, extratags=raw_tags, metadata=None)
        image = exiv2.ImageFactory.open(str(tmp))
        image.readMetadata()
        exif = image.exifData()
        exif["Exif.Photo.ISOSpeedRatings"] = int(exposure.iso or 0)
        exif["Exif.Photo.ExposureTime"] = exiv2.URationalValue([(1, 400)])
        exif["Exif.Photo.FNumber"] = exiv2.URationalValue([(22, 1)])
        exif["Exif.Photo.DateTimeOriginal"] = exposure.taken or ""
        exif["Exif.Photo.LensModel"] = camera.lens
        image.writeMetadata()


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--scale", type=int, default=1, help="tile the mosaic scale x scale times")
    args = parser.parse_args()
    sample = find_sample_raw()
    if sample is None:
        raise SystemExit("the sample CR2 is missing (see tests/conftest.py)")
    with rawpy.imread(str(sample)) as raw:
        mosaic = np.tile(raw.raw_image.copy(), (args.scale, args.scale))
        layout = layout_from_rawpy(raw)
    meta = read_metadata(sample)
    camera, exposure = meta.camera, meta.exposure
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        out = Path(folder)
        cases: dict[str, Callable[[], object]] = {
            "floor (bytes + fsync + rename)": lambda: floor(out / "floor.bin", mosaic),
            "ours, uncompressed": lambda: write_dng(out / "plain.dng", mosaic, layout, camera, exposure),
            "ours, lossless JPEG": lambda: write_dng(
                out / "packed.dng", mosaic, layout, camera, exposure, compress=True
            ),
            "preview alone": lambda: render_preview(mosaic, layout),
            "tifffile + exiv2 EXIF": lambda: tifffile_exiv2(out / "tf.dng", mosaic, layout, camera, exposure),
        }
        for fn in cases.values():  # warm caches and page faults
            fn()
        results = {name: [] for name in cases}  # type: dict[str, list[float]]
        for _ in range(args.repeats):  # interleaved: machine noise hits every case alike
            for name, fn in cases.items():
                results[name].append(median_ms(fn, 1))
        base = statistics.median(results["floor (bytes + fsync + rename)"])
        print(f"{mosaic.shape[1]}x{mosaic.shape[0]} mosaic, {mosaic.nbytes / 1e6:.1f} MB, median of {args.repeats}")
        for name, times in results.items():
            ms = statistics.median(times)
            print(f"  {name:32s} {ms:7.1f} ms  {ms / base:5.2f}x floor")
        for name in ("plain.dng", "packed.dng", "tf.dng"):
            print(f"  {name:32s} {(out / name).stat().st_size / mosaic.nbytes:7.2f} of the mosaic's bytes")


if __name__ == "__main__":
    main()
