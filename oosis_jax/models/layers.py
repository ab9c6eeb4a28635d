"""Small building blocks shared by the PSP head and the boundary decoder."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from oosis_jax.models.resnet import batch_norm, conv


def resize_bilinear(x: jax.Array, height: int, width: int) -> jax.Array:
    """Bilinear resize of ``(B, h, w, C)`` to ``(B, height, width, C)`` (half-pixel centres). Never antialiased:
    a pyramid-pooling branch of 6 bins brought back to a smaller map keeps its bins' values (as PyTorch's)."""
    return jax.image.resize(x, (x.shape[0], height, width, x.shape[3]), "bilinear", antialias=False)


def _aligned_axis(x: jax.Array, axis: int, stride: int, size: int) -> jax.Array:
    position = np.arange(size) / stride
    low = np.minimum(np.floor(position).astype(int), x.shape[axis] - 1)
    high = np.minimum(low + 1, x.shape[axis] - 1)
    weight = np.clip(position - low, 0.0, 1.0).reshape((-1,) + (1,) * (x.ndim - 1 - axis))
    return jnp.take(x, low, axis=axis) * (1 - weight) + jnp.take(x, high, axis=axis) * weight


def resize_from_stride(x: jax.Array, stride: int, height: int, width: int) -> jax.Array:
    """``(B, h, w, C)`` features of a backbone stage with stride ``stride`` -> ``(B, height, width, C)`` at the
    pixels: linear, corner-aligned as the backbone (feature ``i`` is centred on pixel ``stride * i``, see
    ``upsample``); pixels past the last feature take its value."""
    return _aligned_axis(_aligned_axis(x, 1, stride, height), 2, stride, width).astype(x.dtype)


class ConvBNReLU(nnx.Module):
    """``kernel x kernel`` convolution (bias-free, same padding) -> BatchNorm -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, *, dtype, rngs: nnx.Rngs):
        self.conv = conv(cin, cout, kernel, dtype=dtype, rngs=rngs)
        self.bn = batch_norm(cout, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        return jax.nn.relu(self.bn(self.conv(x), use_running_average=not train))
