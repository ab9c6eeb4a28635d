"""A seconds-long CPU run of the whole training loop (CI): tiny model, tiny synthetic scenes.

The model keeps every module type of the paper's network but uses the 7x7 stem and two pyramid bins:
a smaller graph that XLA compiles about a quarter faster (compilation dominates CI time)."""

from oosis_jax.training.configs.base import TrainConfig, num_classes
from oosis_jax.training.input_pipeline import AugmentConfig
from oosis_jax.models import ModelConfig


def get_config() -> TrainConfig:
    return TrainConfig(
        name="smoke", dataset="synthetic",
        model=ModelConfig.tiny(num_classes("synthetic"), dropout=0.0, deep_stem=False, pyramid_bins=(1, 2)),
        augment=AugmentConfig(crop_size=(32, 32), scale_range=(0.75, 1.25)),
        synthetic_scenes=8, synthetic_val_scenes=2, synthetic_size=(40, 48), batch_size=4, num_steps=6,
        base_lr=0.05, checkpoint_every=3, keep_checkpoints=2, log_every=2, eval_every=6, eval_examples=2,
        eval_batch_size=2, loader_threads=2)
