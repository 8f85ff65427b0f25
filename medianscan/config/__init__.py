"""The daemon's configuration: YAML -> typed dataclasses, every problem named by file, line and key."""

from medianscan.config.loader import config_to_yaml, load_config, parse_config
from medianscan.config.rules import blend_problems
from medianscan.config.schema import (
    BlendConfig,
    CameraConfig,
    Config,
    ConfigError,
    ConsoleConfig,
    FootswitchConfig,
    HooksConfig,
    RollConfig,
    SimulatedConfig,
    TriggerConfig,
    WatchConfig,
)

__all__ = [
    "BlendConfig",
    "CameraConfig",
    "Config",
    "ConfigError",
    "ConsoleConfig",
    "FootswitchConfig",
    "HooksConfig",
    "RollConfig",
    "SimulatedConfig",
    "TriggerConfig",
    "WatchConfig",
    "blend_problems",
    "config_to_yaml",
    "load_config",
    "parse_config",
]
