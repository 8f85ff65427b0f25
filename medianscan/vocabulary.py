"""The words medianscan's parts share, each defined once: config, CLI, daemon and protocol import them."""

from __future__ import annotations

from typing import Literal, get_args

Method = Literal["median", "mean", "sigma-clip", "winsorized"]
METHODS: tuple[Method, ...] = get_args(Method)
