"""Helpers writing small annotation fixtures in the public KINS / COCOA formats (tests only)."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
from pycocotools import mask as mask_utils


def box(y0: int, y1: int, x0: int, x1: int) -> list[float]:
    """Flat polygon of the rectangle covering rows ``y0..y1-1`` and columns ``x0..x1-1`` once rasterised."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def box_mask(shape: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a ``bool (H, W)`` mask, counts as a str (as in the JSON files)."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def uncompressed_rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE (``counts`` a list of run lengths, column-major, starting with zeros)."""
    runs, current, count = [], False, 0
    for value in mask.T.ravel():
        if value == current:
            count += 1
        else:
            runs.append(count)
            current, count = value, 1
    runs.append(count)
    return {"size": list(mask.shape), "counts": runs}


def write_image(path, height: int, width: int, seed: int, fmt: str = "PNG") -> np.ndarray:
    """A random RGB image saved at ``path``; returns the pixels as read back (JPEG is lossy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(path, format=fmt)
    return np.asarray(PIL.Image.open(path).convert("RGB"))


def write_json(path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
