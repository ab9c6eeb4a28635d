"""The one dataset registry: every config, loader and script reads its dataset facts here.

Dataset ``NAME`` is the package ``data.NAME``; it defines ``CLASS_NAMES`` (index k-1 = class id k, 0 is
background) and ``builder(data_dir, **config)`` (its tensorflow-datasets builder). This module adds what the
rest of the project needs to know about it: the splits used for training, validation during training and
held-out evaluation, and the resolution images are evaluated at (paper Sec. 5 "Implementation Details").

>>> info("cocoa").held_out_split
'validation'
>>> info("kins").num_classes
7
"""

from __future__ import annotations

import dataclasses
import importlib
import numbers
from types import ModuleType


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Splits and test resolution of one dataset; ``test_resolution`` is (height, width) or None (as stored)."""

    name: str
    train_split: str
    validation_split: str
    held_out_split: str
    test_resolution: tuple[int, int] | None

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(f"data.{self.name}")

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.module.CLASS_NAMES)

    @property
    def num_classes(self) -> int:
        """Foreground classes (the network predicts ``num_classes + 1`` with background)."""
        return len(self.module.CLASS_NAMES)


REGISTRY = {
    # Scenes are small already: evaluate at the size they were rendered.
    "synthetic": DatasetInfo("synthetic", "train", "validation", "test", None),
    # KINS has no validation split; the paper evaluates at 2048x615 (width x height).
    "kins": DatasetInfo("kins", "train", "test", "test", (615, 2048)),
    # COCOA's public annotations are train and val only; the paper evaluates at each image's own size.
    "cocoa": DatasetInfo("cocoa", "train", "validation", "validation", None),
}
DATASETS = tuple(REGISTRY)

# Synthetic scenes rendered on the fly (no tfds build) take seeds ``SYNTHETIC_SEEDS[split] + i`` for i below
# SYNTHETIC_SPLIT_SIZE, so training, validation and held-out scenes never coincide. A tfds build's seeds lie at
# 2**32 and above (`data.synthetic.tfds_builder.scene_seed`), apart from all of these: a seed renders the same
# layout, depths and classes at any size, so a shared seed would put a training scene into an evaluation.
# "test2" is a second held-out set like "test" (the demo's), for checking that a number is no accident of one set.
SYNTHETIC_SEEDS = {"train": 0, "validation": 10**6, "test": 2_000_000, "test2": 3_000_000}
SYNTHETIC_SPLIT_SIZE = 10**6


def check_synthetic_split(split) -> str:
    """``split`` if it names a synthetic split (`SYNTHETIC_SEEDS`), else ``ValueError`` listing them."""
    if split not in SYNTHETIC_SEEDS:
        raise ValueError(f"synthetic scenes have no split {split!r}; choose from {', '.join(SYNTHETIC_SEEDS)}")
    return split


def check_synthetic_count(count, what: str = "count") -> int:
    """``count`` if it is an int in [0, `SYNTHETIC_SPLIT_SIZE`] (more would reach into the next split's seeds);
    else ``ValueError`` naming ``what``."""
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or not 0 <= count <= SYNTHETIC_SPLIT_SIZE:
        raise ValueError(f"{what} must be an integer in [0, {SYNTHETIC_SPLIT_SIZE:,}] (more scenes would reach "
                         f"into the next split's seeds), got {count!r}")
    return count


def info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; ``ValueError`` listing the choices for an unknown name."""
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return REGISTRY[name]
