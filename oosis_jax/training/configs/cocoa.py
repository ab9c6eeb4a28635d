"""The paper's COCOA training: as KINS (Sec. 5.3, supplement Sec. 4), evaluated at the original size."""

from oosis_jax.training.configs.base import TrainConfig, num_classes
from oosis_jax.training.input_pipeline import AugmentConfig
from oosis_jax.models import ModelConfig


def get_config() -> TrainConfig:
    return TrainConfig(
        name="cocoa", dataset="cocoa", model=ModelConfig.resnet50(num_classes("cocoa")),
        augment=AugmentConfig(crop_size=(225, 225)), data_dir="~/tensorflow_datasets", batch_size=8,
        num_epochs=200.0, base_lr=0.01, eval_resolution=None, eval_examples=200)
