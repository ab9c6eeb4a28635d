"""Issue 13, images: one reading function (EXIF orientation, 16-bit, bad files named) and a predict run in
which every good image is written while each bad one is reported by name with a non-zero exit status."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from experiments import predict as predict_cli
from oosis_jax import eval_data, train
from oosis_jax.configs import get_config


class PixelNet(nnx.Module):
    """A 1x1 convolution with PSPNet's call signature (the real network's speed is not under test here)."""

    def __init__(self, num_classes: int):
        self.conv = nnx.Conv(3, num_classes + 6, (1, 1), rngs=nnx.Rngs(0))
        self.k = num_classes + 1

    def __call__(self, images, train: bool = False):
        out = self.conv(images)
        return {"s_logits": out[..., :self.k], "b_logits": out[..., self.k], "e_logits": out[..., self.k + 1:]}


@pytest.fixture
def fake_checkpoint(monkeypatch):
    config = get_config("smoke")
    monkeypatch.setattr(train, "restore_model", lambda workdir: (PixelNet(config.model.num_classes), config))


def _png(path, shape=(12, 16, 3), value=90):
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


def _truncated_png(path):
    """The first half of a noise PNG (noise does not compress, so the cut falls inside the pixel data)."""
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:2000])


def _run(tmp_path, capsys):
    args = ["--checkpoint", "unused", "--images", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
            "--processes", "1"]
    try:
        predict_cli.main(args)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr()


def test_item2_16_bit_greyscale_is_scaled_not_saturated(tmp_path):
    values = np.array([[0, 257 * 64, 32768, 65535]] * 3, np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    image = eval_data.read_image(tmp_path / "deep.png")
    assert image.dtype == np.uint8 and image.shape == (3, 4, 3)
    np.testing.assert_array_equal(image[0, :, 0], [0, 64, 128, 255])
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_item3_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((40, 80, 3), np.uint8)
    stored[:20, :20] = (255, 0, 0)  # red block at the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    image = eval_data.read_image(tmp_path / "photo.jpg")
    assert image.shape == (80, 40, 3)  # displayed upright: portrait
    assert image[5:15, 25:35, 0].min() > 200 and image[5:15, 5:15, 0].max() < 50  # now top-right


@pytest.mark.parametrize("content, reason", [(b"", "cannot identify"), (None, "truncated"),
                                             (b"not an image at all", "cannot identify")])
def test_item6_bad_files_are_named_in_the_error(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content is None:
        _truncated_png(path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"bad.png.*{reason}"):
        eval_data.read_image(path)


def test_item6_tiny_images_are_refused_up_front(tmp_path):
    _png(tmp_path / "line.png", shape=(1, 9, 3))
    with pytest.raises(ValueError, match="line.png is 9x1 pixels; prediction needs at least 2"):
        eval_data.read_image(tmp_path / "line.png")
