"""Input image files for the image-reading and predict tests: plain, and cut short."""

import numpy as np
from PIL import Image


def write_png(path, shape=(12, 16, 3), value=90) -> None:
    """A constant image of ``shape`` (uint8) saved as PNG."""
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


def write_truncated_png(path) -> None:
    """The first half of a noise PNG (noise does not compress, so the cut falls inside the pixel data)."""
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:2000])
