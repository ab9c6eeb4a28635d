"""Loading a dataset split for inference and evaluation, at the dataset's test resolution (Sec. 5.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MIN_IMAGE_SIZE = 2  # pixels in each dimension: boundary NMS takes second derivatives along both axes


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


def _rgb8(image: Image.Image) -> np.ndarray:
    """uint8 (H, W, 3) of a decoded PIL image; 16- and 32-bit integer greyscale are scaled, not saturated."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"integer image mode {image.mode} with values {values.min()}..{values.max()} "
                             "outside 0..65535 is not supported")
        grey = np.round(values / 257.0).astype(np.uint8)  # 0..65535 -> 0..255 (16-bit PNG)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(image.convert("RGB"))  # 8-bit modes (16-bit RGB PNGs decode to 8-bit RGB)
    raise ValueError(f"image mode {image.mode!r} is not supported (expected 8-bit or 16-bit integer pixels)")


def read_image(path) -> np.ndarray:
    """uint8 (H, W, 3) RGB of one image file, upright as a viewer shows it (the EXIF orientation applied).

    16-bit greyscale is scaled to 8 bits. Raises ``ValueError`` naming the file for an empty, truncated or
    corrupt file, an unsupported pixel mode, or an image smaller than ``MIN_IMAGE_SIZE`` pixels in a dimension.
    """
    try:
        with Image.open(path) as image:
            image.load()
            rgb = _rgb8(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from err
    if min(rgb.shape[:2]) < MIN_IMAGE_SIZE:
        raise ValueError(f"image {path} is {rgb.shape[1]}x{rgb.shape[0]} pixels; prediction needs at least "
                         f"{MIN_IMAGE_SIZE} in each dimension")
    return rgb


def read_images(folder, failures: list | None = None) -> list[tuple[str, np.ndarray]]:
    """``(stem, uint8 (H, W, 3) RGB)`` for every image file in ``folder``, sorted by name (`read_image`).

    Files whose stems coincide (``x.png`` and ``x.jpg``) would write the same outputs, so both are refused.
    A file that cannot be read or is refused raises ``ValueError`` naming it; when a ``failures`` list is
    given, its ``(file name, reason)`` is appended there instead and the other files are still read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    images = []
    for path in files:
        try:
            twins = [p.name for p in files if p.stem == path.stem and p != path]
            if twins:
                raise ValueError(f"{path.name} and {', '.join(twins)} would write the same outputs "
                                 f"{path.stem}.json etc.; rename one of them")
            images.append((path.stem, read_image(path)))
        except ValueError as err:
            if failures is None:
                raise
            failures.append((path.name, str(err)))
    return images
