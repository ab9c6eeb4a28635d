"""The U-Net decoder variant on synthetic scenes, sized for ``make demo ARGS=--train`` (~12 minutes on
2 CPU cores): beyond the paper (RESULTS.md, "Making predicted instances usable").

Against the ``synthetic`` preset (the paper's PSPNet, kept for the paper's tables): the boundary decoder
(``ModelConfig.decoder = "unet"``) decides boundaries on full-resolution features, and whole 120x160
scenes are the crops, so every step sees whole car rows instead of 64x64 pieces. Adam with one learning
rate for every layer (no pretrained backbone). ``synthetic_long`` is the same recipe run longer.
"""

from oosis_jax.training.configs.base import TrainConfig, num_classes
from oosis_jax.training.input_pipeline import AugmentConfig
from oosis_jax.models import ModelConfig


def get_config() -> TrainConfig:
    model = ModelConfig.tiny(num_classes("synthetic"), width=8, stem_width=16, head_width=64, aux_width=32,
                             output_stride=4, decoder="unet", decoder_width=32)
    return TrainConfig(
        name="synthetic_unet", dataset="synthetic", model=model,
        augment=AugmentConfig(crop_size=(120, 160), scale_range=(0.75, 1.25)),
        synthetic_scenes=1000, synthetic_val_scenes=16, synthetic_size=(120, 160), batch_size=8,
        num_steps=700, optimizer="adam", base_lr=0.003, new_layer_lr_mult=1.0, checkpoint_every=50,
        log_every=25, eval_every=350, eval_examples=16, eval_batch_size=8)
