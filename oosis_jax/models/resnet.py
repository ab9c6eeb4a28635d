"""Dilated ResNet backbone of PSPNet (output stride 8), supplement Sec. 1.1 "Features".

Stages 3 and 4 keep stride 1 and dilate their 3x3 convolutions by 2 and 4, as in the PSPNet reference, so
the features of an ``(H, W)`` image are ``(ceil(H / 8), ceil(W / 8))`` (``(ceil(H / 4), ceil(W / 4))``
with ``output_stride=4``, where stage 2 does not downsample either). Module and attribute names follow
torchvision's ResNet (``conv1``, ``bn1``, ``layer1/0/conv2``, ...) so pretrained weights map one to one
(``experiments/convert_torch_resnet.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from oosis_jax.models.config import ModelConfig

# (stride, dilation) of stages 1..4 for each output stride.
STAGE_GEOMETRY = {8: ((1, 1), (2, 1), (1, 2), (1, 4)), 4: ((1, 1), (1, 1), (1, 2), (1, 4))}


def conv(cin, cout, kernel, *, stride=1, dilation=1, dtype, rngs):
    """Bias-free convolution with PyTorch-style symmetric padding ``dilation * (kernel // 2)``."""
    pad = dilation * (kernel // 2)
    return nnx.Conv(cin, cout, (kernel, kernel), strides=stride, padding=((pad, pad), (pad, pad)),
                    kernel_dilation=dilation, use_bias=False, dtype=dtype,
                    kernel_init=nnx.initializers.variance_scaling(2.0, "fan_out", "normal"), rngs=rngs)


def batch_norm(features, *, dtype, rngs, zero_scale=False):
    """BatchNorm with PyTorch's defaults (momentum 0.1 there = 0.9 here, eps 1e-5)."""
    init = nnx.initializers.zeros if zero_scale else nnx.initializers.ones
    return nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, dtype=dtype, scale_init=init, rngs=rngs)


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """3x3 max pooling, stride 2, padding 1 (PyTorch semantics: the padding never wins the max)."""
    return nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


class Bottleneck(nnx.Module):
    """1x1 -> 3x3 (strided, dilated) -> 1x1 residual block with a projection shortcut where shapes change;
    ``width`` channels inside, ``width * expansion`` out."""

    def __init__(self, cin: int, width: int, *, stride: int, dilation: int, expansion: int, dtype,
                 rngs: nnx.Rngs):
        cout = width * expansion
        self.conv1 = conv(cin, width, 1, dtype=dtype, rngs=rngs)
        self.bn1 = batch_norm(width, dtype=dtype, rngs=rngs)
        self.conv2 = conv(width, width, 3, stride=stride, dilation=dilation, dtype=dtype, rngs=rngs)
        self.bn2 = batch_norm(width, dtype=dtype, rngs=rngs)
        self.conv3 = conv(width, cout, 1, dtype=dtype, rngs=rngs)
        self.bn3 = batch_norm(cout, dtype=dtype, rngs=rngs, zero_scale=True)
        if stride != 1 or cin != cout:
            self.downsample_conv = conv(cin, cout, 1, stride=stride, dtype=dtype, rngs=rngs)
            self.downsample_bn = batch_norm(cout, dtype=dtype, rngs=rngs)
        else:
            self.downsample_conv = self.downsample_bn = None

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        frozen = not train
        y = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=frozen))
        y = jax.nn.relu(self.bn2(self.conv2(y), use_running_average=frozen))
        y = self.bn3(self.conv3(y), use_running_average=frozen)
        if self.downsample_conv is not None:
            x = self.downsample_bn(self.downsample_conv(x), use_running_average=frozen)
        return jax.nn.relu(x + y)


class DilatedResNet(nnx.Module):
    """``__call__(x (B, H, W, 3), train) -> (stage3, stage4)`` features at stride ``s = output_stride``.

    ``stage3``: ``(B, ceil(H/s), ceil(W/s), 4 * e * width)`` (feeds the auxiliary head);
    ``stage4``: ``(B, ceil(H/s), ceil(W/s), 8 * e * width)`` (feeds the pyramid pooling module), with
    ``e = bottleneck_expansion`` (4: 16 and 32 times ``width``).
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        dtype = jnp.dtype(config.dtype)
        stem = config.stem_width
        if config.deep_stem:
            self.conv1 = conv(3, stem, 3, stride=2, dtype=dtype, rngs=rngs)
            self.bn1 = batch_norm(stem, dtype=dtype, rngs=rngs)
            self.conv2 = conv(stem, stem, 3, dtype=dtype, rngs=rngs)
            self.bn2 = batch_norm(stem, dtype=dtype, rngs=rngs)
            self.conv3 = conv(stem, 2 * stem, 3, dtype=dtype, rngs=rngs)
            self.bn3 = batch_norm(2 * stem, dtype=dtype, rngs=rngs)
            cin = 2 * stem
        else:
            self.conv1 = conv(3, stem, 7, stride=2, dtype=dtype, rngs=rngs)
            self.bn1 = batch_norm(stem, dtype=dtype, rngs=rngs)
            self.conv2 = self.bn2 = self.conv3 = self.bn3 = None
            cin = stem
        stages = []
        geometry = STAGE_GEOMETRY[config.output_stride]
        expansion = config.bottleneck_expansion
        for k, (blocks, (stride, dilation)) in enumerate(zip(config.stage_blocks, geometry)):
            width = config.width * 2**k
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(cin, width, stride=stride if i == 0 else 1, dilation=dilation,
                                        expansion=expansion, dtype=dtype, rngs=rngs))
                cin = width * expansion
            stages.append(nnx.List(stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.stem_channels = 2 * stem if config.deep_stem else stem
        self.stage1_channels = config.width * expansion
        self.stage3_channels = config.width * 4 * expansion
        self.stage4_channels = config.width * 8 * expansion

    def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
        features = self.features(x, train)
        return features["stage3"], features["stage4"]

    def features(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
        """Every scale the decoder variant needs: ``stem`` (stride 2, ``stem_channels``), ``stage1``
        (stride 4, ``e * width``), ``stage3`` and ``stage4`` (stride ``output_stride``, as `__call__`)."""
        frozen = not train
        x = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=frozen))
        if self.conv2 is not None:
            x = jax.nn.relu(self.bn2(self.conv2(x), use_running_average=frozen))
            x = jax.nn.relu(self.bn3(self.conv3(x), use_running_average=frozen))
        out = {"stem": x}
        x = max_pool_3x3_s2(x)
        for block in self.layer1:
            x = block(x, train)
        out["stage1"] = x
        for block in (*self.layer2, *self.layer3):
            x = block(x, train)
        out["stage3"] = x
        for block in self.layer4:
            x = block(x, train)
        out["stage4"] = x
        return out
