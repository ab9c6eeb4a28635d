"""Stand-in networks for tests that need a model but not its speed or accuracy."""

from flax import nnx


class PixelNet(nnx.Module):
    """A 1x1-convolution stand-in with PSPNet's call signature and output names (building the real tiny
    PSPNet takes tens of seconds on CI; experiments/predict.py runs the real one)."""

    def __init__(self, num_classes: int):
        self.conv = nnx.Conv(3, num_classes + 1 + 1 + 4, (1, 1), rngs=nnx.Rngs(0))
        self.num_classes = num_classes

    def __call__(self, images, train: bool = False):
        out = self.conv(images)
        k = self.num_classes + 1
        return {"s_logits": out[..., :k], "b_logits": out[..., k], "e_logits": out[..., k + 1:]}
