"""Decoded images of any common pixel mode as uint8 RGB, for the dataset builders and the prediction CLI alike."""

from __future__ import annotations

import numpy as np
import PIL.Image

INTEGER_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


def rgb8(image: PIL.Image.Image) -> np.ndarray:
    """uint8 (H, W, 3) of a decoded PIL image; 16- and 32-bit integer greyscale are scaled (0..65535 to 0..255),
    not saturated as ``image.convert("RGB")`` would. ``ValueError`` naming the mode for any other mode."""
    if image.mode in INTEGER_GREY_MODES:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"integer image mode {image.mode} with values {values.min()}..{values.max()} "
                             "outside 0..65535 is not supported")
        grey = np.round(values / 257.0).astype(np.uint8)  # 0..65535 -> 0..255 (16-bit PNG)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode in EIGHT_BIT_MODES:
        return np.asarray(image.convert("RGB"))  # 8-bit modes (16-bit RGB PNGs decode to 8-bit RGB)
    raise ValueError(f"image mode {image.mode!r} is not supported (expected 8-bit or 16-bit integer pixels)")
