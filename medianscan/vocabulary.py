"""The words medianscan's parts share, each defined once: config, CLI, daemon and protocol import them."""

from __future__ import annotations

from typing import Literal, get_args

Method = Literal["median", "mean", "sigma-clip", "winsorized"]
METHODS: tuple[Method, ...] = get_args(Method)

Retention = Literal["keep", "delete", "archive"]  # what happens to the raws after a verified blend
RETENTIONS: tuple[Retention, ...] = get_args(Retention)

# what a press or a key asks for (scan-roll: the rig runs the strip; stop-roll stops it between frames; base: a
# burst of clear film for the roll's film base; scan-tiles: the XY stage shoots the next negative in tiles, and
# stop-tiles stops it between tiles)
Action = Literal[
    "capture",
    "retake",
    "new-roll",
    "pause",
    "resume",
    "flat",
    "base",
    "scan-roll",
    "stop-roll",
    "scan-tiles",
    "stop-tiles",
]
ACTIONS: tuple[Action, ...] = get_args(Action)
Request = Literal[Action, "status"]
REQUESTS: tuple[Request, ...] = get_args(Request)  # an action, or a query
# they run the camera (press_during_burst)
FIRING: tuple[Action, ...] = ("capture", "retake", "flat", "base", "scan-roll", "scan-tiles")

# How a burst is fired: one capture call per frame (the host waits for each); a trigger per frame with the next
# fired as soon as the body announces a file, downloads overlapping exposures; the body's own continuous burst,
# started by the host. `auto` picks the fastest the body allows.
Strategy = Literal["capture", "trigger", "native"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
StrategyChoice = Literal["auto", "capture", "trigger", "native"]
STRATEGY_CHOICES: tuple[StrategyChoice, ...] = get_args(StrategyChoice)

FlatPolicy = Literal["optional", "required"]  # roll.flat: may a roll be scanned without a flat field?

WhiteLevelFrom = Literal["darktable", "libraw"]  # blend.white_level: whose camera data a native raw's DNG follows
WHITE_LEVEL_FROM: tuple[WhiteLevelFrom, ...] = get_args(WhiteLevelFrom)

# Config key (what the user writes) -> widget names to try, in order. A key not listed is a raw widget name.
ALIASES: dict[str, tuple[str, ...]] = {
    "iso": ("iso", "isospeed", "exposureindex"),
    "shutterspeed": ("shutterspeed", "shutterspeed2", "exposuretime", "eosshutterspeed"),
    "aperture": ("aperture", "f-number", "fnumber"),
    "whitebalance": ("whitebalance", "whitebalancemode"),
    "imageformat": ("imageformat", "imagequality", "imageformatsd", "imageformatcf"),
    "focusmode": ("focusmode", "focusmode2", "autofocus"),
    "capturetarget": ("capturetarget",),
}
# Each widget name that belongs to an alias group -> that group's config key.
CANONICAL: dict[str, str] = {name: key for key, names in ALIASES.items() for name in names}
for _key in ALIASES:
    CANONICAL[_key] = _key


def canonical_key(name: str) -> str:
    """The config key a widget name belongs to (`f-number` -> `aperture`), or the name itself."""
    return CANONICAL.get(name.strip().lower(), name.strip().lower())
