"""How to blend: the knobs of the config's `blend` section, plus where the output goes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medianscan.config import BlendConfig
from medianscan.vocabulary import Method


@dataclass(frozen=True)
class BlendOptions:
    """How to blend (the same knobs as the `blend` section of the config)."""

    method: Method = "median"
    kappa: float = 3.0
    iterations: int = 5
    winsor_fraction: float = 0.2
    level_tolerance: float = 0.03
    max_shift_px: float = 0.5
    drop_bad_frames: bool = False
    tiff: bool = False
    compress: bool = False
    output: Path | None = None  # explicit output file; default <stack>/<stack name>_<method>.<ext>

    @classmethod
    def from_config(cls, cfg: BlendConfig, **overrides: Any) -> BlendOptions:
        fields = {
            name: getattr(cfg, name)
            for name in (
                "method",
                "kappa",
                "iterations",
                "winsor_fraction",
                "level_tolerance",
                "max_shift_px",
                "drop_bad_frames",
                "tiff",
                "compress",
            )
        }
        return cls(**{**fields, **overrides})
