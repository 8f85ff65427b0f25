"""The words medianscan's parts share, each defined once: config, CLI, daemon and protocol import them."""

from __future__ import annotations

from typing import Literal, get_args

Method = Literal["median", "mean", "sigma-clip", "winsorized"]
METHODS: tuple[Method, ...] = get_args(Method)

Retention = Literal["keep", "delete", "archive"]  # what happens to the raws after a verified blend
RETENTIONS: tuple[Retention, ...] = get_args(Retention)

Action = Literal["capture", "retake", "new-roll", "pause", "resume"]  # what a press or a key asks for
ACTIONS: tuple[Action, ...] = get_args(Action)
Request = Literal["capture", "retake", "new-roll", "pause", "resume", "status"]  # an action, or a status query
REQUESTS: tuple[Request, ...] = get_args(Request)
FIRING: tuple[Action, ...] = ("capture", "retake")  # actions that run the camera, subject to press_during_burst
