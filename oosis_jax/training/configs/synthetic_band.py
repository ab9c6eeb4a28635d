"""The shipped recipe (``synthetic_long``) with the e head also trained on a one-pixel band around each
boundary pixel (``LossConfig.orientation_band = 1``, beyond the paper): NMS keeps a pixel next to the true
boundary for about a sixth of the boundary, and reads e there, where Eq. (4) never trained it (issue 14's
diagnosis, ``experiments.boundary_errors``)."""

import dataclasses

from oosis_jax.training.configs import synthetic_long


def get_config():
    config = synthetic_long.get_config()
    return config.replace(name="synthetic_band", loss=dataclasses.replace(config.loss, orientation_band=1))
