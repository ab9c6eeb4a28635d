"""PSPNet with the three heads s, b, e of Sec. 3.1 (supplement Sec. 1.1, Fig. 1).

``PSPNet(config, rngs)(images, train)`` maps normalised images ``float32 (B, H, W, 3)`` to logits at input
resolution: ``s_logits (B, H, W, C+1)``, ``b_logits (B, H, W)``, ``e_logits (B, H, W, 4)`` (or, for the
entangled head, ``o_logits (B, H, W, 5)``) and, in training, ``aux_logits (B, H, W, C+1)`` from stage 3.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from oosis_jax.models.config import ModelConfig
from oosis_jax.models.decoder import BoundaryDecoder
from oosis_jax.models.layers import ConvBNReLU, resize_bilinear
from oosis_jax.models.resnet import DilatedResNet
from oosis_jax.models.upsample import TransposedUpsample

NUM_DIRECTIONS = 4


def adaptive_pool_matrix(size: int, bins: int) -> np.ndarray:
    """float32 ``(bins, size)`` averaging matrix of adaptive average pooling (PyTorch's bin edges).

    Bin ``i`` averages positions ``floor(i * size / bins) .. ceil((i + 1) * size / bins) - 1``, so bins may
    overlap and every position is covered for any ``size >= 1``, whether or not ``bins`` divides it.
    """
    if size < 1 or bins < 1:
        raise ValueError(f"adaptive pooling needs size >= 1 and bins >= 1, got {size}, {bins}")
    matrix = np.zeros((bins, size), np.float32)
    for i in range(bins):
        start, stop = (i * size) // bins, math.ceil((i + 1) * size / bins)
        matrix[i, start:stop] = 1.0 / (stop - start)
    return matrix


def adaptive_avg_pool(x: jax.Array, bins: int) -> jax.Array:
    """``(B, h, w, C) -> (B, bins, bins, C)`` adaptive average pooling for any ``h, w``."""
    rows = jnp.asarray(adaptive_pool_matrix(x.shape[1], bins), x.dtype)
    cols = jnp.asarray(adaptive_pool_matrix(x.shape[2], bins), x.dtype)
    return jnp.einsum("ih,jw,bhwc->bijc", rows, cols, x)


class PyramidPooling(nnx.Module):
    """Pyramid pooling module: pool to each bin size, 1x1 reduce to C/len(bins), upsample, concatenate."""

    def __init__(self, channels: int, bins: tuple[int, ...], *, dtype, rngs: nnx.Rngs):
        self.bins = bins
        reduced = max(channels // len(bins), 1)
        self.branches = nnx.List([ConvBNReLU(channels, reduced, 1, dtype=dtype, rngs=rngs) for _ in bins])
        self.out_channels = channels + reduced * len(bins)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        height, width = x.shape[1:3]
        pooled = [resize_bilinear(branch(adaptive_avg_pool(x, b), train), height, width)
                  for b, branch in zip(self.bins, self.branches)]
        return jnp.concatenate([x, *pooled], axis=-1)


class PSPNet(nnx.Module):
    """The joint semantic segmentation and oriented occlusion boundary network."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs = None):
        rngs = nnx.Rngs(0) if rngs is None else rngs
        self.config = config
        dtype = jnp.dtype(config.dtype)
        self.backbone = DilatedResNet(config, rngs=rngs)
        self.ppm = PyramidPooling(self.backbone.stage4_channels, config.pyramid_bins, dtype=dtype, rngs=rngs)
        self.fuse = ConvBNReLU(self.ppm.out_channels, config.head_width, 3, dtype=dtype, rngs=rngs)
        # whole channels of an image, as the reference's Dropout2d (``(B, H, W, C)``: one draw per b, c)
        self.dropout = nnx.Dropout(config.dropout, broadcast_dims=(1, 2), rngs=rngs)
        classes = config.num_classes + 1
        boundary_channels = 1 + NUM_DIRECTIONS
        if config.decoder == "unet":
            self.decoder = BoundaryDecoder(config, config.head_width, self.backbone.stem_channels,
                                           self.backbone.stage1_channels, dtype=dtype, rngs=rngs)
            head_in = self.decoder.out_channels
        else:
            self.s_upsample = TransposedUpsample(classes, config.output_stride, joint=False, dtype=dtype)
            self.be_upsample = TransposedUpsample(boundary_channels, config.output_stride,
                                                  joint=config.upsample == "joint", dtype=dtype)
            head_in = config.head_width
        logits = lambda cout: nnx.Conv(head_in, cout, (1, 1), dtype=dtype, rngs=rngs)  # noqa: E731
        self.s_head = logits(classes)
        if config.head == "disentangled":
            self.b_head = logits(1)
            self.e_head = logits(NUM_DIRECTIONS)
        else:
            self.o_head = logits(boundary_channels)
        self.aux = ConvBNReLU(self.backbone.stage3_channels, config.aux_width, 3, dtype=dtype, rngs=rngs)
        self.aux_head = nnx.Conv(config.aux_width, classes, (1, 1), dtype=dtype, rngs=rngs)

    def __call__(self, images: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        if images.ndim != 4 or images.shape[-1] != 3 or min(images.shape[1:3]) < 1:
            raise ValueError(f"images must be (B, H, W, 3) with H, W >= 1, got shape {images.shape}")
        if not jnp.issubdtype(images.dtype, jnp.floating):
            raise ValueError(f"images must be normalised floats (normalize_images), got {images.dtype}")
        height, width = images.shape[1:3]
        images = images.astype(jnp.dtype(self.config.dtype))
        features = self.backbone.features(images, train)
        stage3 = features["stage3"]
        x = self.fuse(self.ppm(features["stage4"], train), train)
        x = self.dropout(x, deterministic=not train)
        if self.config.decoder == "unet":
            x = self.decoder(x, images, features, train)
            upsample_s = upsample_be = lambda y: y  # noqa: E731
        else:
            upsample_s, upsample_be = self.s_upsample, self.be_upsample
        crop = lambda y: y[:, :height, :width].astype(jnp.float32)  # noqa: E731
        out = {"s_logits": crop(upsample_s(self.s_head(x)))}
        if self.config.head == "disentangled":
            be = crop(upsample_be(jnp.concatenate([self.b_head(x), self.e_head(x)], axis=-1)))
            out["b_logits"], out["e_logits"] = be[..., 0], be[..., 1:]
        else:
            out["o_logits"] = crop(upsample_be(self.o_head(x)))
        if train:
            aux = self.dropout(self.aux(stage3, train), deterministic=False)
            out["aux_logits"] = resize_bilinear(self.aux_head(aux), height, width).astype(jnp.float32)
        return out
