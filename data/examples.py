"""Loading a dataset split for inference and evaluation, at the dataset's test resolution (Sec. 5.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


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


def load_examples(name: str, split: str, data_dir, limit: int | None = None, **config) -> list[dict]:
    """The first ``limit`` (all when None) decoded examples of a split at the dataset's TEST_RESOLUTION
    (``data.loading.load(name, split, data_dir, **config)``, which builds the dataset on first use)."""
    from data import loading

    module = loading.dataset_module(name)
    source = loading.load(name, split, data_dir, **config)
    count = len(source) if limit is None else min(limit, len(source))
    if count == 0:
        raise ValueError(f"dataset {name!r} split {split!r} in {data_dir} has no examples")
    return [at_resolution(dict(source[i]), module.TEST_RESOLUTION) for i in range(count)]


def parse_config(pairs) -> dict:
    """``["num_test=20", "seed=3"]`` -> ``{"num_test": 20, "seed": 3}`` (ints, floats, else strings)."""
    config = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"dataset config must be KEY=VALUE, got {pair!r}")
        for cast in (int, float, str):
            try:
                config[key] = cast(value)
                break
            except ValueError:
                continue
    return config


def read_images(folder) -> list[tuple[str, np.ndarray]]:
    """``(stem, uint8 (H, W, 3) RGB)`` for every image file in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return [(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in files]
