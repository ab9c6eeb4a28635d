"""Config fields are checked against their annotations and stored in their types (`models.config.check_types`):
values from a hand-edited config.json or a --set used to pass and fail later, or not at all."""

import dataclasses
import json

import pytest

from oosis_jax.models import ModelConfig
from oosis_jax.training.configs import TrainConfig, get_config
from oosis_jax.training.input_pipeline import AugmentConfig
from oosis_jax.training.losses import LossConfig


@pytest.mark.parametrize("field, value, message", [
    ("output_stride", 8.5, "output_stride must be whole numbers"),  # 8.0 built, then failed in the forward
    ("num_classes", True, r"num_classes must be int, got True \(bool\)"),
    ("deep_stem", "false", r"deep_stem must be bool, got 'false' \(str\)"),  # built a deep stem
    ("width", 4.5, "width must be whole numbers"),
    ("dropout", float("nan"), "dropout must be a finite number"),
    ("stage_blocks", 3, r"stage_blocks must be a tuple or list"),
    ("stage_blocks", {1, 2, 3, 4}, r"stage_blocks must be a tuple or list"),  # a set's order is not kept
    ("width", 0, "width must be >= 1, got 0"), ("aux_width", -2, "aux_width must be >= 1, got -2"),
])
def test_model_fields_of_the_wrong_type_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ModelConfig.tiny(3), **{field: value})


def test_whole_floats_lists_and_numpy_scalars_are_stored_in_the_annotated_types():
    import numpy as np

    model = ModelConfig.tiny(np.int64(3), output_stride=8.0, stage_blocks=[1, 1, 1, 1], dropout=0,
                             deep_stem=np.False_)
    assert model.deep_stem is False
    assert (model.num_classes, model.output_stride, model.stage_blocks, model.dropout) == (3, 8, (1, 1, 1, 1), 0.0)
    assert type(model.num_classes) is int and type(model.output_stride) is int and type(model.dropout) is float
    augment = AugmentConfig(crop_size=[32, 32], scale_range=[1, 2])
    assert augment.crop_size == (32, 32) and augment.scale_range == (1.0, 2.0)
    config = get_config("smoke").replace(synthetic_size=[40, 48], augment=augment)
    assert config.synthetic_size == (40, 48)
    hash(config)  # a list left in a field made the jitted steps' cache fail: "unhashable type: 'list'"
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("make, message", [
    (lambda: AugmentConfig(contrast=1.5), r"contrast \(a maximal relative change\) must lie in \[0, 1\]"),
    (lambda: AugmentConfig(flip="yes"), "flip must be bool"),
    (lambda: LossConfig(orientation_band=1.5), "orientation_band must be whole numbers"),
    (lambda: dataclasses.replace(get_config("smoke"), batch_size="8"), r"batch_size must be int, got '8'"),
])
def test_training_config_fields_are_checked_too(make, message):
    with pytest.raises(ValueError, match=message):
        make()
