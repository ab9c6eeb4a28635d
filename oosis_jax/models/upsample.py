"""Learned upsampling of the stride-8 logits to input resolution (supplement Sec. 1.1 "Upsampling", Fig. 1b).

A transposed convolution with (even) stride ``f``, kernel ``2f`` and padding ``f / 2`` initialised to the bilinear
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
    if factor < 2 or factor % 2:
        raise ValueError(f"upsampling factor must be even and >= 2, got {factor}")
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
        # Output row f*q + r receives input rows q+1, q, q-1 (shift d = -1, 0, 1) through kernel tap
        # f*d + r + f/2; gathering those taps turns the transposed convolution into one einsum over 3x3
        # shifted views (fast on every backend, unlike grouped input-dilated convolutions on CPU).
        f = self.factor
        batch, height, width, channels = x.shape
        taps = f * (np.arange(3)[:, None] - 1) + np.arange(f)[None] + f // 2
        valid = (taps >= 0) & (taps < 2 * f)
        taps = np.where(valid, taps, 0)
        kernel = self.kernel[...][taps][:, :, taps]  # (3, f, 3, f, Cin or 1, C)
        mask = (valid[:, :, None, None] & valid[None, None]).astype(np.float32)
        kernel = (kernel * mask.reshape(mask.shape + (1, 1))).astype(self.dtype)
        padded = jnp.pad(x.astype(self.dtype), ((0, 0), (1, 1), (1, 1), (0, 0)))
        views = jnp.stack([jnp.stack([padded[:, 1 - dy:1 - dy + height, 1 - dx:1 - dx + width]
                                      for dx in (-1, 0, 1)], axis=3) for dy in (-1, 0, 1)], axis=3)
        if self.joint:
            out = jnp.einsum("bhwyxi,yrxsio->bhrwso", views, kernel)
        else:
            out = jnp.einsum("bhwyxc,yrxsc->bhrwsc", views, kernel[:, :, :, :, 0])
        return out.reshape(batch, height * f, width * f, channels)
