"""The joint semantic segmentation and oriented occlusion boundary network (Sec. 3.1).

Names are loaded on first use, so that the JAX-free `oosis_jax.models.config` (read by the CRF options of
`oosis_jax.inference.robustness`) imports without JAX.
"""

import importlib

_MODULES = {"ModelConfig": "config", "fresh_pspnet": "fresh", "fresh_state": "fresh", "normalize_images": "outputs",
            "probabilities": "outputs", "flat_state": "pretrained", "load_pretrained": "pretrained",
            "PSPNet": "pspnet"}

__all__ = sorted(_MODULES)


def __getattr__(name):
    if name not in _MODULES:
        raise AttributeError(f"module 'oosis_jax.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"oosis_jax.models.{_MODULES[name]}"), name)


def __dir__():
    return sorted(set(globals()) | set(_MODULES))
