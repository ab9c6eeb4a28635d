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


def test_item1_two_files_with_one_stem_are_refused_by_name_not_overwritten(tmp_path, capsys, fake_checkpoint):
    (tmp_path / "in").mkdir()
    _png(tmp_path / "in" / "x.png")
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tmp_path / "in" / "x.jpg")
    _png(tmp_path / "in" / "y.png")
    status, out = _run(tmp_path, capsys)
    assert status == 1 and "wrote 1 predictions" in out.out
    assert "FAILED x.jpg: " in out.err and "FAILED x.png: " in out.err and "rename one" in out.err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == ["y.json"]


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


def test_item6_one_bad_image_never_sinks_the_run(tmp_path, capsys, fake_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a_good.png")
    _png(folder / "b_smallest.png", shape=(2, 2, 3))
    (folder / "c_empty.png").write_bytes(b"")
    _truncated_png(folder / "d_truncated.png")
    _png(folder / "e_column.png", shape=(7, 1, 3))
    Image.fromarray(np.full((9, 11), 40000, np.uint16)).save(folder / "f_deep.png")
    status, out = _run(tmp_path, capsys)
    assert status == 1 and "wrote 3 predictions" in out.out
    for name in ("c_empty.png", "d_truncated.png", "e_column.png"):
        assert f"FAILED {name}: " in out.err
    assert "3 image(s) failed" in out.err
    written = sorted(p.name for p in (tmp_path / "out").glob("*.json"))
    assert written == ["a_good.json", "b_smallest.json", "f_deep.json"]
    assert json.loads((tmp_path / "out" / "f_deep.json").read_text())["height"] == 9


def test_item6_a_crf_failure_on_one_image_keeps_the_others(tmp_path, capsys, fake_checkpoint, monkeypatch):
    import crf.batch

    solve = crf.batch.METHODS["solve"]

    def fails_on_width_11(sigma, occ, **kwargs):
        if sigma.shape[1] == 11:
            raise ValueError("synthetic CRF failure")
        return solve(sigma, occ, **kwargs)

    monkeypatch.setitem(crf.batch.METHODS, "solve", fails_on_width_11)
    (tmp_path / "in").mkdir()
    _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "b.png", shape=(9, 11, 3))
    status, out = _run(tmp_path, capsys)
    assert status == 1 and "wrote 1 predictions" in out.out
    assert "FAILED b: CRF failed: ValueError: synthetic CRF failure" in out.err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == ["a.json"]
