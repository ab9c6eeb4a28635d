"""Named training configurations: ``get_config(name)`` for each name of ``NAMES``."""

from __future__ import annotations

import importlib

from oosis_jax.training.configs.base import DATASETS, TrainConfig, num_classes

NAMES = ("smoke", "synthetic", "synthetic_unet", "synthetic_long", "synthetic_band", "kins", "cocoa")


def get_config(name: str, /, **overrides) -> TrainConfig:
    """The preset ``name`` (module ``oosis_jax.training.configs.<name>``) with top-level fields replaced."""
    if name not in NAMES:
        raise ValueError(f"unknown config {name!r}; choose one of {NAMES}")
    config = importlib.import_module(f"oosis_jax.training.configs.{name}").get_config()
    return config.replace(**overrides) if overrides else config


__all__ = ["DATASETS", "NAMES", "TrainConfig", "get_config", "num_classes"]
