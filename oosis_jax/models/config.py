"""Hyper-parameters of the joint s/b/e network (paper Sec. 3.1, supplement Sec. 1.1)."""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from data.annotations import is_finite_number

HEADS = ("disentangled", "entangled")
UPSAMPLERS = ("joint", "separate")
DTYPES = ("float32", "bfloat16")
OUTPUT_STRIDES = (4, 8)
DECODERS = ("none", "unet")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the modified PSPNet.

    Attributes:
      num_classes: number of foreground classes C; the semantic head ``s`` has C + 1 channels (0 = background).
      stage_blocks: bottleneck blocks per ResNet stage (ResNet-50: (3, 4, 6, 3)).
      width: channels of the first stage's bottleneck (64 in ResNet-50); stage k uses ``width * 2**(k-1)``
        and outputs ``bottleneck_expansion`` times as many.
      bottleneck_expansion: a stage's output channels over its bottleneck channels (4 in ResNet-50). Doubling
        ``width`` while halving this widens only the 3x3 convolutions inside the blocks (as Wide ResNet-50-2
        does) and keeps every feature the rest of the network reads, so a trained run grows in place
        (`load_pretrained`).
      stem_width: channels of the first two stem convolutions; the deep stem ends with ``2 * stem_width``.
      deep_stem: True for the PSPNet reference's three 3x3 convolutions, False for torchvision's single 7x7.
      head_width: channels of the PSP head's 3x3 convolution (512 in the reference).
      aux_width: channels of the auxiliary head on stage 3 (256 in the reference).
      pyramid_bins: output sizes of the pyramid pooling module (1, 2, 3, 6).
      dropout: rate at which whole channels of an image's PSP features are dropped (the reference's Dropout2d),
        before the 1x1 logit layers, or before the U-Net decoder when there is one; also on the auxiliary head.
      head: "disentangled" (s, b, e heads; Eq. 3-4) or "entangled" (one 5-way softmax, P2ORM-style, Tab. 3a).
      upsample: "joint" (b and e upsampled together by a kernel spanning the channel axis, supplement Fig. 1b)
        or "separate" (each b/e channel upsampled on its own, the ablation of Tab. 5).
      dtype: compute dtype, "float32" or "bfloat16"; parameters are always float32.
      output_stride: 8 (the paper's dilated ResNet) or 4 (stage 2 keeps the stem's resolution: finer
        boundaries for small models and images, at several times the compute of the head).
      decoder: "none" (the paper: heads on the PSP features, learned upsampling) or "unet" (beyond the paper:
        `oosis_jax.models.decoder.BoundaryDecoder` brings stride-4, stride-2 and full-resolution features
        back, and every head is a 1x1 convolution at full resolution; ``upsample`` is then unused).
      decoder_width: channels of the decoder's full-resolution features (twice that at stride 4).
      decoder_blocks: residual blocks the decoder adds at stride 2 (beyond the paper; 0 = none). Added blocks
        start as identities, so a trained run grows in place (`load_pretrained`).
    """

    num_classes: int
    stage_blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    width: int = 64
    bottleneck_expansion: int = 4
    stem_width: int = 64
    deep_stem: bool = True
    head_width: int = 512
    aux_width: int = 256
    pyramid_bins: tuple[int, ...] = (1, 2, 3, 6)
    dropout: float = 0.1
    head: str = "disentangled"
    upsample: str = "joint"
    dtype: str = "float32"
    output_stride: int = 8
    decoder: str = "none"
    decoder_width: int = 32
    decoder_blocks: int = 0

    # fields added after configurations were first saved: a file without them was written before they existed,
    # and their defaults are what its network was (`check_fields`)
    ADDED_LATER = ("bottleneck_expansion", "output_stride", "decoder", "decoder_width", "decoder_blocks")

    def __post_init__(self):
        check_types(self)
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if len(self.stage_blocks) != 4 or min(self.stage_blocks) < 1:
            raise ValueError(f"stage_blocks must be 4 positive counts, got {self.stage_blocks}")
        for name in ("width", "bottleneck_expansion", "stem_width", "head_width", "aux_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.decoder_width < 2:
            raise ValueError(f"decoder_width must be >= 2 (its full-resolution branch has half as many "
                             f"channels), got {self.decoder_width}")
        if self.decoder_blocks < 0:
            raise ValueError(f"decoder_blocks must be >= 0, got {self.decoder_blocks}")
        if not self.pyramid_bins or min(self.pyramid_bins) < 1:
            raise ValueError(f"pyramid_bins must be positive, got {self.pyramid_bins}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        for name, value, allowed in (("head", self.head, HEADS), ("upsample", self.upsample, UPSAMPLERS),
                                     ("dtype", self.dtype, DTYPES), ("decoder", self.decoder, DECODERS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {self.output_stride}")

    @classmethod
    def resnet50(cls, num_classes: int, **overrides) -> "ModelConfig":
        """The paper's network: PSPNet on a dilated ResNet-50 with the deep stem."""
        return cls(num_classes=num_classes, **overrides)

    @classmethod
    def tiny(cls, num_classes: int, **overrides) -> "ModelConfig":
        """A ~0.1M-parameter variant with the same topology (one block per stage), for tests and CPU runs."""
        settings = dict(stage_blocks=(1, 1, 1, 1), width=4, stem_width=8, head_width=16, aux_width=8)
        settings.update(overrides)
        return cls(num_classes=num_classes, **settings)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """Inverse of ``dataclasses.asdict`` (JSON turns tuples into lists); `from_fields`' errors."""
        return from_fields(cls, values)


def _typed(name: str, kind: str, value):
    """``value`` as the ``kind`` ("int", "float", "bool" or "str") of the field ``name``, else ``ValueError``."""
    if kind == "bool" and type(value).__name__ in ("bool", "bool_"):  # numpy's too
        return bool(value)
    if (kind in ("int", "float") and isinstance(value, numbers.Real)
            and type(value).__name__ not in ("bool", "bool_")):
        if kind == "int" and isinstance(value, numbers.Integral):
            return int(value)
        if not is_finite_number(value):  # an int too large for a float is not
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if kind == "float":
            return float(value)
        if float(value).is_integer():
            return int(value)
        raise ValueError(f"{name} must be whole numbers, got {value!r}")
    if kind == "str" and isinstance(value, str):
        return value
    raise ValueError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")


def check_types(config) -> None:
    """Check each field of the frozen dataclass ``config`` against its annotation, where it names ``int``,
    ``float``, ``bool``, ``str`` or a ``tuple`` of ints or floats, or one of those or ``None`` (``X | None``),
    and store it in that type: whole floats as ints, lists (JSON's tuples) as tuples, numpy
    scalars as Python ones. ``ValueError`` naming the field otherwise (a hand-edited ``config.json`` or a
    ``--set`` value: ``output_stride=8.0`` or ``deep_stem="false"`` used to pass and fail later, or not at all).
    Other annotations (nested configs, ``object``) are left to the config's own checks."""
    for field in dataclasses.fields(config):
        value, kinds = getattr(config, field.name), [k.strip() for k in str(field.type).split("|")]
        if value is None and "None" in kinds:
            continue
        kinds = [k for k in kinds if k != "None"]
        if len(kinds) != 1:
            continue
        kind = kinds[0]
        element = kind.removeprefix("tuple[").split(",")[0].strip(" ]") if kind.startswith("tuple[") else None
        if kind in ("int", "float", "bool", "str"):
            object.__setattr__(config, field.name, _typed(field.name, kind, value))
        elif element in ("int", "float"):
            if not isinstance(value, (tuple, list, np.ndarray)):  # a set or dict has no order to keep
                raise ValueError(f"{field.name} must be a tuple or list ({kind}), got {value!r}")
            object.__setattr__(config, field.name, tuple(_typed(field.name, element, v) for v in value))


def from_fields(cls, values: dict):
    """The dataclass ``cls`` built from ``values``, which must name every one of its fields and nothing else
    (`check_fields`)."""
    check_fields(cls, values)
    return cls(**values)


def check_fields(cls, values: dict) -> None:
    """``values`` must be a dict naming every field of the dataclass ``cls`` and nothing else: a field left out of
    a saved configuration would silently take its default, which need not be what the saved run used. Only the
    fields in ``cls.ADDED_LATER`` (if any) may be absent: a file written before they existed, whose run their
    defaults describe. ``ValueError`` naming the missing and unknown fields; ``TypeError`` if ``values`` is not
    a dict."""
    if not isinstance(values, dict):
        raise TypeError(f"{cls.__name__} must be a JSON object of its fields, not {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    missing = sorted(names - set(values) - set(getattr(cls, "ADDED_LATER", ())))
    if unknown or missing:
        raise ValueError(f"{cls.__name__}: " + "; ".join(
            f"{what} fields {fields}" for what, fields in (("missing", missing), ("unknown", unknown)) if fields))
