"""Small building blocks shared by the PSP head and the boundary decoder."""

from __future__ import annotations

import jax
from flax import nnx

from oosis_jax.models.resnet import batch_norm, conv


def resize_bilinear(x: jax.Array, height: int, width: int) -> jax.Array:
    """Bilinear resize of ``(B, h, w, C)`` to ``(B, height, width, C)`` (half-pixel centres). Never antialiased:
    a pyramid-pooling branch of 6 bins brought back to a smaller map keeps its bins' values (as PyTorch's).
    The PSPNet reference resizes its branches with ``align_corners=True`` instead; half-pixel centres are a
    deliberate choice (the grid of every other resize here), and only backbone weights are ever converted
    from the reference, so no loaded weights depend on it."""
    return jax.image.resize(x, (x.shape[0], height, width, x.shape[3]), "bilinear", antialias=False)


class ConvBNReLU(nnx.Module):
    """``kernel x kernel`` convolution (bias-free, same padding) -> BatchNorm -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, *, dtype, rngs: nnx.Rngs):
        self.conv = conv(cin, cout, kernel, dtype=dtype, rngs=rngs)
        self.bn = batch_norm(cout, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        return jax.nn.relu(self.bn(self.conv(x), use_running_average=not train))
