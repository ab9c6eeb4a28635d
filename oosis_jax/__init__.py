"""oosis: Occlusion-Ordered Semantic Instance Segmentation (stage 1 network, inference and evaluation).

``from oosis_jax import Predictor`` is the one-line API (`oosis_jax.inference.predictor`); `ImageFailure` is
what its ``predict_iter`` gives for an image it could not predict.
"""


def __getattr__(name):
    # Lazy: importing a subpackage (e.g. the pure-numpy evaluation) must not pull in JAX.
    if name == "Predictor":
        from oosis_jax.inference.predictor import Predictor

        return Predictor
    if name == "ImageFailure":  # without JAX
        from oosis_jax.inference.instances import ImageFailure

        return ImageFailure
    raise AttributeError(f"module 'oosis_jax' has no attribute {name!r}")
