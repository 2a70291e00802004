"""Config layer: schema validation (plain dataclasses) and Hydra config registration."""

from .validate import ConfigError, from_dict

__all__ = ["ConfigError", "from_dict"]
