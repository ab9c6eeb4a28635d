"""The recipe of the shipped synthetic model (``Predictor.from_pretrained("synthetic")``): the
``synthetic_unet`` recipe (U-Net boundary decoder, whole-scene crops, Adam) run for 3000 steps on 4000
distinct training scenes, so that a long run does not memorise (resumable across sessions)."""

from oosis_jax.training.configs import synthetic_unet


def get_config():
    return synthetic_unet.get_config().replace(name="synthetic_long", synthetic_scenes=4000, num_steps=3000,
                                               checkpoint_every=250, eval_every=500)
