"""Learned upsampling of the stride-8 logits to input resolution (supplement Sec. 1.1 "Upsampling", Fig. 1b).

A transposed convolution with stride ``f``, kernel ``2f`` and padding ``f / 2`` initialised to the bilinear
kernel reproduces half-pixel bilinear interpolation exactly away from the image border (the weight of
input ``i`` at output ``o`` is ``1 - |(o + 0.5) / f - 0.5 - i|``). Two flavours:

- per-channel ("2D"): every channel has its own spatial kernel, channels never mix (the ``s`` logits, and
  the ``b``/``e`` logits in the ``separate`` ablation);
- joint ("3D"): each output channel's kernel spans space *and* every input channel, initialised to bilinear
  on the diagonal and zero elsewhere, so the ``b`` and ``e`` logits learn to share information.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def bilinear_kernel(factor: int) -> np.ndarray:
    """float32 ``(2f, 2f)`` separable bilinear kernel of a stride-``f`` transposed convolution."""
    if factor < 1:
        raise ValueError(f"upsampling factor must be >= 1, got {factor}")
    size = 2 * factor
    center = (size - 1) / 2.0
    tent = 1.0 - np.abs(np.arange(size) - center) / factor
    return np.outer(tent, tent).astype(np.float32)


class TransposedUpsample(nnx.Module):
    """``__call__(x (B, h, w, C)) -> (B, f*h, f*w, C)``, a stride-``f`` transposed conv with bilinear init.

    ``joint=False``: kernel ``(2f, 2f, 1, C)`` (depthwise); ``joint=True``: kernel ``(2f, 2f, C, C)``.
    """

    def __init__(self, channels: int, factor: int, *, joint: bool, dtype=jnp.float32):
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.factor = factor
        self.joint = joint
        self.dtype = dtype
        tent = bilinear_kernel(factor)[:, :, None, None]
        if joint:
            kernel = tent * np.eye(channels, dtype=np.float32)[None, None]
        else:
            kernel = np.broadcast_to(tent, tent.shape[:3] + (channels,))
        self.kernel = nnx.Param(jnp.asarray(kernel, jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        f = self.factor
        channels = x.shape[-1]
        # A transposed convolution is a convolution of the f-dilated input with the spatially flipped kernel.
        kernel = self.kernel[...][::-1, ::-1].astype(self.dtype)
        edge = 2 * f - 1 - f // 2
        return jax.lax.conv_general_dilated(
            x.astype(self.dtype), kernel, window_strides=(1, 1), padding=((edge, edge + f % 2),) * 2,
            lhs_dilation=(f, f), dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=1 if self.joint else channels)
