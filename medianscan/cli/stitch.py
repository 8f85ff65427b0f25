"""`medianscan stitch TILE... --output OUT.dng`: tiles of one negative stitched on the raw mosaic into one DNG."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from medianscan.wording import counted


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "stitch",
        help="stitch overlapping tiles of one negative into one raw DNG, on the mosaic",
        description=(
            "Each TILE is a raw or DNG file, or a stack folder (its median blend, blended first if it has none). "
            "The tiles are placed from the pictures in their overlaps, brought to one exposure and feathered "
            "into one DNG that is still a raw; OUT.json beside it records where each tile went."
        ),
    )
    parser.add_argument("tiles", nargs="+", type=Path, metavar="TILE", help="a raw or DNG file, or a stack folder")
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="OUT.dng", help="the stitched DNG")
    parser.add_argument("--flat", type=Path, metavar="FLAT", help="a master flat DNG, or a folder of flat frames")
    parser.add_argument("--compress", action="store_true", help="lossless JPEG tiles: about half the size")
    parser.add_argument(
        "--layout",
        metavar="COLSxROWS",
        help="the tiles were shot in this grid, given row by row, left to right: a prior for their places",
    )
    parser.add_argument(
        "--overlap",
        type=float,
        default=0.25,
        metavar="F",
        help="with --layout: the share each tile overlaps the next (0.25)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # The stitch's BLAS calls are small fits (the flat's smooth surface, the solve): OpenBLAS's threads only wait
    # on one another there, and on a busy 2-core machine the flat's 12,000 x 15 fit took 0.1-0.3 s a call where
    # one thread takes 2 ms. Set before NumPy loads, so the pipeline is imported here; a setting given wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from medianscan.stitch.pipeline import StitchOptions, stitch

    options = StitchOptions(flat=args.flat, compress=args.compress, layout=args.layout, overlap=args.overlap)
    record = stitch(args.tiles, args.output, options)
    resampled = record.resampled
    print(
        f"{record.output}: {counted(len(record.tiles), 'tile')} stitched, {record.width}x{record.height} photosites "
        f"(crop {record.default_crop[2]}x{record.default_crop[3]}), {record.seconds:.1f} s"
    )
    for tile in record.tiles:
        how = f"resampled, turned {tile.rotation_degrees:+.3f} deg" if tile.resampled else "copied"
        blended = " (blended now)" if tile.blended_now else ""
        print(f"  {tile.source.name}{blended}: at x {tile.x:.2f}, y {tile.y:.2f}, gain {tile.gain:.4f}, {how}")
    if resampled:
        print(f"  resampled per colour plane: {', '.join(t.source.name for t in resampled)}")
    for seam in record.seams:
        a, b = record.tiles[seam.a].source.name, record.tiles[seam.b].source.name
        at = (
            f"{seam.residual_px:.2f} px"
            if seam.residual_px is not None
            else "from the prior grid (too little to register)"
        )
        level = f", levels within {seam.level_median:.2%}" if seam.level_median is not None else ""
        print(f"  seam {a} / {b}: {at}{level}")
    print(f"  record: {record.output.with_suffix('.json')}")
    alone = record.placed_alone
    if alone:
        names = ", ".join(t.source.name for t in alone)
        said = f"no overlap registered for {counted(len(alone), 'tile')} ({names}): placed by the --layout grid alone"
        print(f"medianscan: warning: {said}, so look at their seams before trusting the stitch", file=sys.stderr)
    return 0
