"""Synthetic scenes rendered on the fly: a reduced PSPNet that learns boundaries in minutes on a CPU."""

from oosis_jax.configs.base import TrainConfig, num_classes
from oosis_jax.input_pipeline import AugmentConfig
from oosis_jax.models import ModelConfig


def get_config() -> TrainConfig:
    model = ModelConfig.tiny(num_classes("synthetic"), width=8, stem_width=16, head_width=64, aux_width=32)
    return TrainConfig(
        name="synthetic", dataset="synthetic", model=model,
        augment=AugmentConfig(crop_size=(96, 96), scale_range=(0.75, 1.5)),
        synthetic_scenes=256, synthetic_val_scenes=16, synthetic_size=(120, 160), batch_size=8,
        num_steps=1500, base_lr=0.05, checkpoint_every=250, log_every=25, eval_every=500, eval_examples=16,
        eval_batch_size=8)
