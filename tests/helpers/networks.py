"""Stand-in networks for tests that need a model but not its speed or accuracy."""

from flax import nnx


class PixelNet(nnx.Module):
    """A 1x1-convolution stand-in with PSPNet's call signature and output names (compiling the real tiny
    PSPNet's initialisation and forward takes seconds to tens of seconds on CI; experiments/predict.py runs the
    real one)."""

    def __init__(self, num_classes: int):
        self.conv = nnx.Conv(3, num_classes + 1 + 1 + 4, (1, 1), rngs=nnx.Rngs(0))
        self.num_classes = num_classes

    def __call__(self, images, train: bool = False):
        out = self.conv(images)
        k = self.num_classes + 1
        return {"s_logits": out[..., :k], "b_logits": out[..., k], "e_logits": out[..., k + 1:]}


def quick_pspnet(config, seed: int = 0):
    """A `PSPNet` of ``config`` in evaluation-ready form, built without XLA: eager initialisation compiles one
    small program per kernel shape (tens of seconds for the tiny model on CI) and `fresh_pspnet` one program
    (several seconds), so the structure is traced with ``nnx.eval_shape`` and filled with numpy values of the
    same distributions (He-normal convolution kernels with fan-out scaling, zero biases, unit BatchNorm scales
    and variances, bilinear upsampling kernels)."""
    import jax
    import numpy as np

    from oosis_jax.models import PSPNet
    from oosis_jax.models.upsample import TransposedUpsample

    abstract = nnx.eval_shape(lambda: PSPNet(config, rngs=nnx.Rngs(seed)))
    rng = np.random.default_rng(seed)
    for path, variable in nnx.to_flat_state(nnx.state(abstract)):
        value, name = variable.get_value(), str(path[-1])
        if isinstance(variable, nnx.RngKey):
            new = jax.random.key(seed)
        elif isinstance(variable, nnx.RngCount):
            new = np.zeros(value.shape, value.dtype)
        elif name == "kernel" and str(path[0]).endswith("_upsample"):
            continue  # replaced below
        elif name == "kernel":
            fan_out = int(np.prod(value.shape[:-2])) * value.shape[-1]
            new = rng.normal(0.0, np.sqrt(2.0 / fan_out), value.shape).astype(value.dtype)
        elif name in ("scale", "var"):
            new = np.ones(value.shape, value.dtype)
        else:
            new = np.zeros(value.shape, value.dtype)
        variable.set_value(jax.numpy.asarray(new))
    if config.decoder == "none":
        classes, stride = config.num_classes + 1, config.output_stride
        abstract.s_upsample.kernel.set_value(TransposedUpsample(classes, stride, joint=False).kernel.get_value())
        abstract.be_upsample.kernel.set_value(
            TransposedUpsample(5, stride, joint=config.upsample == "joint").kernel.get_value())
    return abstract
