"""How to blend: the knobs of the config's `blend` section (defined and checked once, in BlendConfig), plus where
the output goes. The CLI, the daemon and the hot folder all build their options from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medianscan.config.rules import blend_problems
from medianscan.config.schema import BlendConfig
from medianscan.errors import MedianscanError


@dataclass
class BlendOptions(BlendConfig):
    """A BlendConfig, where the output goes (an explicit file, or a folder for the outputs of a whole batch, as
    when blending straight from a read-only card; by default <stack>/<stack name>_<method>.<ext>), and the
    master flat to correct raws with (a flat blended by medianscan: see `pipeline.prepare_flat`), and the editors
    whose sidecars go beside a DNG blend of a roll's negative (the config's `outputs.editors`)."""

    output: Path | None = None
    output_folder: Path | None = None
    flat: Path | None = None
    editors: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: BlendConfig, **overrides: Any) -> BlendOptions:
        options = cls(**({f.name: getattr(cfg, f.name) for f in dataclasses.fields(BlendConfig)} | overrides))
        problems = blend_problems(options)
        if problems:
            raise MedianscanError("; ".join(problems))
        return options
