"""The words medianscan's parts share, each defined once: config, CLI, daemon and protocol import them."""

from __future__ import annotations

from typing import Literal, get_args

Method = Literal["median", "mean", "sigma-clip", "winsorized"]
METHODS: tuple[Method, ...] = get_args(Method)

Retention = Literal["keep", "delete", "archive"]  # what happens to the raws after a verified blend
RETENTIONS: tuple[Retention, ...] = get_args(Retention)

Action = Literal["capture", "retake", "new-roll", "pause", "resume", "flat"]  # what a press or a key asks for
ACTIONS: tuple[Action, ...] = get_args(Action)
Request = Literal["capture", "retake", "new-roll", "pause", "resume", "flat", "status"]  # an action, or a query
REQUESTS: tuple[Request, ...] = get_args(Request)
FIRING: tuple[Action, ...] = ("capture", "retake", "flat")  # actions that run the camera (press_during_burst)

FlatPolicy = Literal["optional", "required"]  # roll.flat: may a roll be scanned without a flat field?

WhiteLevelFrom = Literal["darktable", "libraw"]  # blend.white_level: whose camera data a native raw's DNG follows
WHITE_LEVEL_FROM: tuple[WhiteLevelFrom, ...] = get_args(WhiteLevelFrom)
