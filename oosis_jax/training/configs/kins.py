"""The paper's KINS training (Sec. 5.3, supplement Sec. 4): PSPNet-ResNet-50, 225x225 crops, batch 8, SGD
momentum 0.9, weight decay 1e-4, poly LR (power 0.9), 200 epochs, 10x LR on new layers, wCE w = 0.9."""

from oosis_jax.training.configs.base import TrainConfig, num_classes
from oosis_jax.training.input_pipeline import AugmentConfig
from oosis_jax.models import ModelConfig


def get_config() -> TrainConfig:
    return TrainConfig(
        name="kins", dataset="kins", model=ModelConfig.resnet50(num_classes("kins")),
        augment=AugmentConfig(crop_size=(225, 225)), data_dir="~/tensorflow_datasets", batch_size=8,
        num_epochs=200.0, base_lr=0.01, eval_resolution=(615, 2048), eval_examples=200)
