"""The joint semantic segmentation and oriented occlusion boundary network (Sec. 3.1)."""

from oosis_jax.models.config import ModelConfig
from oosis_jax.models.fresh import fresh_pspnet, fresh_state
from oosis_jax.models.outputs import normalize_images, probabilities
from oosis_jax.models.pretrained import flat_state, load_pretrained
from oosis_jax.models.pspnet import PSPNet

__all__ = ["ModelConfig", "PSPNet", "flat_state", "fresh_pspnet", "fresh_state", "load_pretrained", "normalize_images",
           "probabilities"]
