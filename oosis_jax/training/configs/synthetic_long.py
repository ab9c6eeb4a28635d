"""The recipe of the shipped synthetic model (``Predictor.from_pretrained("synthetic")``): beyond the paper.

Measured levers against the ``synthetic`` CPU preset (RESULTS.md, "Making predicted instances usable"):
the U-Net decoder (``ModelConfig.decoder = "unet"``) decides boundaries on full-resolution features, whole
120x160 scenes as crops give every step the context of whole car rows, 4000 distinct training scenes keep a
long run from memorising, and the run is long (resumable across sessions). Adam with one learning rate for
every layer, as the ``synthetic`` preset (no pretrained backbone).
"""

from oosis_jax.training.configs.base import TrainConfig, num_classes
from oosis_jax.training.input_pipeline import AugmentConfig
from oosis_jax.models import ModelConfig


def get_config() -> TrainConfig:
    model = ModelConfig.tiny(num_classes("synthetic"), width=8, stem_width=16, head_width=64, aux_width=32,
                             output_stride=4, decoder="unet", decoder_width=32)
    return TrainConfig(
        name="synthetic_long", dataset="synthetic", model=model,
        augment=AugmentConfig(crop_size=(120, 160), scale_range=(0.75, 1.25)),
        synthetic_scenes=4000, synthetic_val_scenes=16, synthetic_size=(120, 160), batch_size=8,
        num_steps=3000, optimizer="adam", base_lr=0.003, new_layer_lr_mult=1.0, checkpoint_every=250,
        log_every=25, eval_every=500, eval_examples=16, eval_batch_size=8)
