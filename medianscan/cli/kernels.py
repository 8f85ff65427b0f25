"""`medianscan kernels [--config FILE]`: build the blend kernels a set-up uses, before its first blend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medianscan.blend.kernels.kernel_build import KernelNeed, build, built, needs
from medianscan.blend.kernels.kernel_cache import cache_folder
from medianscan.config.loader import load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "kernels",
        help="build the blend kernels ahead of time, so no blend waits for a compile",
        description=(
            "Compiles, on every core, the kernels the configured method uses for stacks of 3 to 16 frames (or up to "
            "the configured frames, when more), and for the hot folder's TIFFs and JPEGs in watch mode. `make demo`"
            " and `make test` run it; run it once as the service's user after installing (see the README). A "
            "finished build is remembered: asking again costs nothing."
        ),
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="the configuration to build for (default: the defaults)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    wanted = needs(cfg.blend, cfg.frames_range()[1], apart=cfg.mode == "watch")
    if built(wanted):
        print(f"{len(wanted)} kernels are built already ({cache_folder()})")
        return 0

    def progress(need: KernelNeed, seconds: float) -> None:
        shape = "frames apart" if need.apart else "one stack"
        print(f"  {need.method} for {need.frames} frames ({shape}, {need.dtype}): {seconds:.1f} s", file=sys.stderr)

    seconds = build(wanted, progress=progress)
    print(f"built {len(wanted)} kernels in {seconds:.1f} s ({cache_folder()})")
    return 0
