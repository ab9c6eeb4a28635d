"""The paper's COCOA training: as KINS (``kins.py``: supplement Sec. 4 says "similar to KINS"), evaluated at the
original size."""

from oosis_jax.training.configs import kins
from oosis_jax.training.configs.base import num_classes
from oosis_jax.models import ModelConfig


def get_config():
    return kins.get_config().replace(name="cocoa", dataset="cocoa", model=ModelConfig.resnet50(num_classes("cocoa")),
                                     eval_resolution=None)
