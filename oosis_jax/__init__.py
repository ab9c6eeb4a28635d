"""oosis: Occlusion-Ordered Semantic Instance Segmentation (stage 1 network, inference and evaluation).

``from oosis_jax import Predictor`` is the one-line API (`oosis_jax.inference.predictor`); `ImageFailure` is
what its ``predict_iter`` gives for an image it could not predict.
"""

# What the base install (the CRF, the readers, the evaluation) leaves out and the network needs.
NETWORK_MODULES = ("jax", "jaxlib", "flax", "optax", "orbax", "matplotlib")


def __getattr__(name):
    # Lazy: importing a subpackage (e.g. the pure-numpy evaluation) must not pull in JAX.
    if name == "Predictor":
        try:
            from oosis_jax.inference.predictor import Predictor
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] not in NETWORK_MODULES:
                raise
            raise ModuleNotFoundError(f"oosis_jax.Predictor needs {err.name}, which the base install leaves out; "
                                      "pip install 'oosis[network]'", name=err.name) from err
        return Predictor
    if name == "ImageFailure":  # without JAX
        from oosis_jax.inference.instances import ImageFailure

        return ImageFailure
    raise AttributeError(f"module 'oosis_jax' has no attribute {name!r}")
