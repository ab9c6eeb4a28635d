"""The first stage of the shipped synthetic model's recipe (``Predictor.from_pretrained("synthetic")``; its
model card lists the fine-tunes that followed: Dice++ b loss, orientation band, deeper blocks, zoomed scenes): the
``synthetic_unet`` network (U-Net boundary decoder, Adam) trained on whole 120x160 scenes as crops, so every
step sees whole car rows, for 3000 steps on 4000 distinct training scenes, so that a long run does not
memorise (resumable across sessions)."""

from oosis_jax.training.configs import synthetic_unet
from oosis_jax.training.input_pipeline import AugmentConfig


def get_config():
    return synthetic_unet.get_config().replace(
        name="synthetic_long", augment=AugmentConfig(crop_size=(120, 160), scale_range=(0.75, 1.25)),
        synthetic_scenes=4000, num_steps=3000, checkpoint_every=250, eval_every=500)
