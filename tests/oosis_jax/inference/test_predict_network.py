"""Full-resolution (tiled) forward pass and the end-to-end prediction of one image."""

import numpy as np
import pytest
from helpers.networks import PixelNet

from oosis_jax.inference import network as predict
from oosis_jax.inference.predictor import Predictor


@pytest.mark.parametrize("length, tile, overlap", [(160, 64, 16), (300, 100, 30), (65, 64, 32), (64, 64, 16)])
def test_tile_starts_cover_with_overlap(length, tile, overlap):
    starts = predict.tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == max(length - tile, 0)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("tile, overlap, problem", [
    (1, 0, "tile size 1 must be >= 64: images are padded to multiples of 64"), (63, 0, "tile size 63 must be >= 64"),
    (64, 64, r"tile overlap 64 must lie in \[0, 32\], half the tile size 64"), (64, -1, r"overlap -1 must lie in"),
    (100, 51, r"overlap 51 must lie in \[0, 50\]"),
    (True, 0, "tile_size must be an integer")])
def test_tiles_smaller_than_the_padding_are_refused(tile, overlap, problem):
    # a 1x1 image is padded to 64x64: in 1-pixel tiles that was 4096 network calls (914 s)
    with pytest.raises(ValueError, match=problem):
        predict.check_tiles(tile, overlap)
    predict.check_tiles(predict.PAD_MULTIPLE, 0)
    predict.check_tiles(100, 50)


def pixelwise_heads(tile):
    """A stand-in network whose outputs depend on each pixel alone, so tiling must not change them."""
    x = tile.astype(np.float32) / 255.0
    s = np.concatenate([x, 1.0 - x], axis=-1)
    s /= s.sum(-1, keepdims=True)
    e = np.concatenate([x, x[..., :1]], axis=-1) + 0.1
    return {"s": s, "b": x.mean(-1), "e": e / e.sum(-1, keepdims=True)}


def test_tiles_blend_seamlessly():
    image = np.random.default_rng(0).integers(0, 256, (150, 210, 3), dtype=np.uint8)
    whole = pixelwise_heads(image)
    tiled = predict.tiled_probabilities(pixelwise_heads, image, tile_size=64, overlap=20)
    for key in ("s", "b", "e"):
        np.testing.assert_allclose(tiled[key], whole[key], atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        predict.tiled_probabilities(pixelwise_heads, image.astype(np.float32))


def test_network_prediction_end_to_end():
    model = PixelNet(3)
    image = np.random.default_rng(0).integers(0, 256, (100, 140, 3), dtype=np.uint8)
    whole = predict.head_probabilities(model, image, tile_size=256)
    tiled = predict.head_probabilities(model, image, tile_size=64, overlap=16)
    for key in ("s", "b", "e"):  # a pixelwise network: padding and tiling change nothing
        np.testing.assert_allclose(tiled[key], whole[key], atol=1e-5)
    pred, = Predictor(model, None, processes=1, tile_size=64, tile_overlap=16).predict_many([image], progress=False)
    assert pred.s.shape == (100, 140, 4) and pred.e.shape == (100, 140, 4) and pred.b.shape == (100, 140)
    np.testing.assert_allclose(pred.s.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(pred.e.sum(-1), 1.0, atol=1e-5)
    small, = Predictor(model, None, processes=1).predict_many([image[:30, :50]], progress=False)  # one batch
    for heads in (small.s, small.b, small.e):  # its own writable arrays, not views of the padded batch
        assert heads.flags.writeable and heads.flags.owndata
    assert pred.instance_map.shape == (100, 140) and len(pred.classes) == pred.instance_map.max()
    assert np.all(pred.classes >= 1) and np.all(pred.classes <= 3) and np.all(np.isfinite(pred.scores))
