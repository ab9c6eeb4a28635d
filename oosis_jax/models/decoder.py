"""A U-Net style boundary decoder: an option beyond the paper (``ModelConfig.decoder = "unet"``).

The paper's PSPNet decides boundaries on stride-8 features and recovers pixels only by the learned
upsampling (supplement Fig. 1b). Occlusion-boundary networks such as P2ORM's ResNet-UNet instead bring
finer features back before the boundary heads. `BoundaryDecoder` does this in three steps, each a bilinear
x2 (or exact-size) resize of the coarser features, a concatenation with the skip features of that scale and
two 3x3 ConvBNReLU layers:

  PSP features (stride 4 or 8) -> + backbone stage 1 (stride 4) -> + stem (stride 2)
  [-> ``decoder_blocks`` residual blocks at stride 2] -> + a full-resolution branch (two 3x3 ConvBNReLU on
  the image) -> ``(B, H, W, decoder_width)``.

The residual blocks (``ModelConfig.decoder_blocks``, default 0) add capacity where the boundaries are told
from texture edges, at a quarter of the cost of full-resolution layers. Each starts as an identity (the
BatchNorm after its second convolution has scale 0), so a trained decoder's weights load into a model with
more blocks (`load_pretrained`) and compute the same function until it trains.

The s, b and e logits are then 1x1 convolutions of these full-resolution features (no upsampling layer).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from oosis_jax.models.config import ModelConfig
from oosis_jax.models.layers import ConvBNReLU, resize_bilinear
from oosis_jax.models.resnet import batch_norm, conv


class Stage(nnx.Module):
    """Resize ``x`` to ``skip``'s size, concatenate ``skip``, two 3x3 ConvBNReLU layers."""

    def __init__(self, cin: int, skip: int, cout: int, *, dtype, rngs: nnx.Rngs):
        self.first = ConvBNReLU(cin + skip, cout, 3, dtype=dtype, rngs=rngs)
        self.second = ConvBNReLU(cout, cout, 3, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, skip: jax.Array, train: bool) -> jax.Array:
        x = resize_bilinear(x, *skip.shape[1:3]).astype(skip.dtype)
        return self.second(self.first(jnp.concatenate([x, skip], axis=-1), train), train)


class Residual(nnx.Module):
    """``relu(x + BN(conv3x3(ConvBNReLU(x))))`` with the same channels in and out; an identity at
    initialisation for non-negative ``x`` (the last BatchNorm's scale starts at 0)."""

    def __init__(self, channels: int, *, dtype, rngs: nnx.Rngs):
        self.first = ConvBNReLU(channels, channels, 3, dtype=dtype, rngs=rngs)
        self.conv = conv(channels, channels, 3, dtype=dtype, rngs=rngs)
        self.bn = batch_norm(channels, dtype=dtype, rngs=rngs, zero_scale=True)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        return jax.nn.relu(x + self.bn(self.conv(self.first(x, train)), use_running_average=not train))


class BoundaryDecoder(nnx.Module):
    """``__call__(x, images, features, train) -> (B, H, W, decoder_width)`` full-resolution features.

    ``x``: PSP features ``(B, h, w, in_channels)``; ``images``: the network input ``(B, H, W, 3)``;
    ``features``: `DilatedResNet.features` (``stem`` at stride 2, ``stage1`` at stride 4).
    """

    def __init__(self, config: ModelConfig, in_channels: int, stem_channels: int, stage1_channels: int, *,
                 dtype, rngs: nnx.Rngs):
        width = config.decoder_width
        self.stride4 = Stage(in_channels, stage1_channels, 2 * width, dtype=dtype, rngs=rngs)
        self.stride2 = Stage(2 * width, stem_channels, width, dtype=dtype, rngs=rngs)
        self.blocks = nnx.List([Residual(width, dtype=dtype, rngs=rngs) for _ in range(config.decoder_blocks)])
        self.full_a = ConvBNReLU(3, width // 2, 3, dtype=dtype, rngs=rngs)
        self.full_b = ConvBNReLU(width // 2, width // 2, 3, dtype=dtype, rngs=rngs)
        self.stride1 = Stage(width, width // 2, width, dtype=dtype, rngs=rngs)
        self.out_channels = width

    def __call__(self, x: jax.Array, images: jax.Array, features: dict, train: bool) -> jax.Array:
        x = self.stride4(x, features["stage1"], train)
        x = self.stride2(x, features["stem"], train)
        for block in self.blocks:
            x = block(x, train)
        full = self.full_b(self.full_a(images, train), train)
        return self.stride1(x, full, train)
