"""Held-out examples for inference and evaluation, at the dataset's test resolution (Sec. 5.3).

The split and the resolution come from the registry (``data.registry``); synthetic scenes can also be rendered
on the fly (``synthetic_scenes``) with the registry's per-split seeds, so no build is needed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from data import registry


def at_resolution(example: dict, resolution) -> dict:
    """``example`` with image (bilinear) and instance_map (nearest) resized to (height, width); None keeps it.

    Instances that vanish at the new size keep their ids (with no pixels); edges are unchanged.
    """
    if resolution is None:
        return example
    height, width = resolution
    if example["image"].shape[:2] == (height, width):
        return example
    image = np.asarray(Image.fromarray(example["image"]).resize((width, height), Image.BILINEAR))
    inst = np.asarray(Image.fromarray(example["instance_map"].astype(np.int32)).resize((width, height),
                                                                                      Image.NEAREST))
    return dict(example, image=image, instance_map=inst.astype(np.int32))


def load_examples(name: str, split: str | None, data_dir, limit: int | None = None, **config) -> list[dict]:
    """The first ``limit`` (all when None) decoded examples of a split (None: the registry's held-out split)
    at the registry's test resolution (``data.loading.load(name, split, data_dir, **config)``, which builds
    the dataset on first use)."""
    from data import loading

    dataset = registry.info(name)
    split = dataset.held_out_split if split is None else split
    source = loading.load(name, split, data_dir, **config)
    count = len(source) if limit is None else min(limit, len(source))
    if count == 0:
        raise ValueError(f"dataset {name!r} split {split!r} in {data_dir} has no examples")
    return [at_resolution(dict(source[i]), dataset.test_resolution) for i in range(count)]


def synthetic_scenes(split: str, count: int, size: tuple[int, int]) -> list[dict]:
    """``count`` synthetic scenes of ``size`` (height, width) rendered with the seeds of ``split``
    (``data.registry.SYNTHETIC_SEEDS[split] + i``); no build needed."""
    from data.synthetic import make_scene

    if split not in registry.SYNTHETIC_SEEDS:
        raise ValueError(f"synthetic scenes have no split {split!r}; choose from {', '.join(registry.SYNTHETIC_SEEDS)}")
    return [make_scene(registry.SYNTHETIC_SEEDS[split] + i, *size) for i in range(count)]
