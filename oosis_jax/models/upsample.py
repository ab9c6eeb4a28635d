"""Learned upsampling of the stride-``f`` logits to input resolution (supplement Sec. 1.1 "Upsampling", Fig. 1b).

A transposed convolution with stride ``f`` and kernel ``2f - 1`` initialised to the bilinear (tent) kernel. It
is corner-aligned, like the backbone: with PyTorch-style symmetric padding, stride-``f`` feature ``i`` is centred
on input pixel ``f * i``, and the upsampler puts it exactly there (output ``o`` takes ``1 - |o - f*i| / f`` of
feature ``i``; features past the last one repeat it). The half-pixel kernel ``2f`` with padding ``f / 2`` of
FCN-style code would place feature ``i`` at ``f * i + (f - 1) / 2``: 3.5 px down and right at stride 8. Two
flavours:

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
    """float32 ``(2f - 1, 2f - 1)`` separable tent kernel of a corner-aligned stride-``f`` transposed conv."""
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 2:
        raise ValueError(f"upsampling factor must be an int >= 2, got {factor!r}")
    tent = 1.0 - np.abs(np.arange(2 * factor - 1) - (factor - 1)) / factor
    return np.outer(tent, tent).astype(np.float32)


class TransposedUpsample(nnx.Module):
    """``__call__(x (B, h, w, C)) -> (B, f*h, f*w, C)``, a stride-``f`` transposed conv with bilinear init.

    ``joint=False``: kernel ``(2f-1, 2f-1, 1, C)`` (depthwise); ``joint=True``: kernel ``(2f-1, 2f-1, C, C)``.
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
        # Output row f*q + r (0 <= r < f) receives input rows q and q+1 (shift d = 0, 1) through kernel tap
        # f - 1 + r - f*d (for r = 0 the d = 1 tap is -1, outside the kernel: row f*q is input q alone);
        # gathering those taps turns the transposed convolution into one einsum over 2x2 shifted views (fast
        # on every backend, unlike grouped input-dilated convolutions on CPU). The last row and column repeat.
        f = self.factor
        batch, height, width, channels = x.shape
        taps = f - 1 + np.arange(f)[None] - f * np.arange(2)[:, None]
        valid = (taps >= 0) & (taps < 2 * f - 1)
        taps = np.where(valid, taps, 0)
        kernel = self.kernel[...][taps][:, :, taps]  # (2, f, 2, f, Cin or 1, C)
        mask = (valid[:, :, None, None] & valid[None, None]).astype(np.float32)
        kernel = (kernel * mask.reshape(mask.shape + (1, 1))).astype(self.dtype)
        padded = jnp.pad(x.astype(self.dtype), ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge")
        views = jnp.stack([jnp.stack([padded[:, dy:dy + height, dx:dx + width] for dx in (0, 1)], axis=3)
                           for dy in (0, 1)], axis=3)
        if self.joint:
            out = jnp.einsum("bhwyxi,yrxsio->bhrwso", views, kernel)
        else:
            out = jnp.einsum("bhwyxc,yrxsc->bhrwsc", views, kernel[:, :, :, :, 0])
        return out.reshape(batch, height * f, width * f, channels)
