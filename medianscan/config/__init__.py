"""The daemon's configuration: YAML -> typed dataclasses, every problem named by file, line and key."""

from medianscan.config.loader import config_to_yaml, load_config, parse_config
from medianscan.config.rules import blend_problems
from medianscan.config.schema import (
    AutoFrames,
    BlendConfig,
    CameraConfig,
    Config,
    ConfigError,
    ConsoleConfig,
    FootswitchConfig,
    HooksConfig,
    LineProtocol,
    OutputsConfig,
    RigConfig,
    RollConfig,
    SheetConfig,
    SimulatedConfig,
    StripConfig,
    TilesConfig,
    TriggerConfig,
    WatchConfig,
)

__all__ = [
    "AutoFrames",
    "BlendConfig",
    "CameraConfig",
    "Config",
    "ConfigError",
    "ConsoleConfig",
    "FootswitchConfig",
    "HooksConfig",
    "LineProtocol",
    "OutputsConfig",
    "RigConfig",
    "RollConfig",
    "SheetConfig",
    "SimulatedConfig",
    "StripConfig",
    "TilesConfig",
    "TriggerConfig",
    "WatchConfig",
    "blend_problems",
    "config_to_yaml",
    "load_config",
    "parse_config",
]
