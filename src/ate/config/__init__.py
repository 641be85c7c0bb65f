"""Engine configuration (pydantic v2), loaded from JSON."""

from ate.config.loader import (
    ConfigError,
    config_schema,
    load_config,
    load_config_or_exit,
    missing_key_problems,
    parse_config,
)
from ate.config.models import EngineConfig

__all__ = ["ConfigError", "EngineConfig", "config_schema", "load_config", "load_config_or_exit",
           "missing_key_problems", "parse_config"]
