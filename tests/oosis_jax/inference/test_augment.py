"""Test-time augmentation of the heads (`oosis_jax.inference.augment`, beyond the paper)."""

import dataclasses

import numpy as np
import pytest

from oosis_jax import Predictor
from oosis_jax.inference.augment import Augmentation, augmented_heads, heads_back, resize_map, view_image
from oosis_jax.inference.predictor import export


def test_parse_and_to_text_round_trip_and_reject_bad_items():
    assert Augmentation.parse("none") == Augmentation() and Augmentation().to_text() == "none"
    tta = Augmentation.parse("scales=1:1.25,flip")
    assert tta == Augmentation(scales=(1.0, 1.25), flip=True)
    assert Augmentation.parse(tta.to_text()) == tta
    assert tta.views == [(1.0, False), (1.0, True), (1.25, False), (1.25, True)]
    assert Augmentation(scales=[2]).scales == (2.0,)  # lists from config.json become tuples
    for bad, problem in (("scales=0", "positive"), ("flop", "expected"), ("scales=a", "could not convert"),
                         ("flip=1", "expected")):
        with pytest.raises(ValueError, match=problem):
            Augmentation.parse(bad)
    with pytest.raises(ValueError, match="non-empty"):
        Augmentation(scales=())


@pytest.mark.parametrize("shape", [(2, 2), (37, 53)])
def test_views_and_their_heads_map_back_to_the_image_grid(shape):
    image = np.random.default_rng(0).integers(0, 256, shape + (3,), dtype=np.uint8)
    view = view_image(image, 1.25, mirrored=True)
    assert view.dtype == np.uint8 and view.shape == (max(2, round(shape[0] * 1.25)), max(2, round(shape[1] * 1.25)), 3)
    np.testing.assert_array_equal(view_image(image, 1.0, True), image[:, ::-1])
    e = np.zeros(view.shape[:2] + (4,), np.float32)
    e[..., 0] = 1.0                        # every pixel of the mirrored view occludes its left neighbour
    b = np.tile(np.linspace(0, 1, view.shape[1], dtype=np.float32), (view.shape[0], 1))
    back = heads_back({"s": np.ones(view.shape[:2] + (3,), np.float32) / 3, "b": b, "e": e}, shape, True)
    assert back["b"].shape == shape and back["s"].shape == shape + (3,) and back["e"].shape == shape + (4,)
    np.testing.assert_allclose(back["e"][..., 1], 1.0)   # ... which, mirrored back, is its right neighbour
    np.testing.assert_allclose(back["s"].sum(-1), 1.0, rtol=1e-6)
    if shape[1] > 2:
        assert np.all(np.diff(back["b"], axis=1) <= 0)   # the ramp now falls from left to right


def test_resize_map_keeps_sharp_maps_sharp_and_constant_maps_constant():
    line = np.zeros((40, 40), np.float32)
    line[:, 20] = 1.0
    up = resize_map(line, (50, 50))
    assert up.shape == (50, 50) and up.max() <= 1.0
    back = resize_map(up, (40, 40))
    assert back.shape == (40, 40) and np.argmax(back[5]) == 20 and back[5, 20] > 0.6
    np.testing.assert_allclose(resize_map(np.full((7, 9, 4), 0.25, np.float32), (11, 3)), 0.25)


def test_augmented_heads_average_the_views_of_a_pixelwise_network():
    def pixelwise(images):   # s and b from colour, e uniform: equivariant to mirroring and (up to resampling) scale
        out = []
        for image in images:
            red = image[..., 0].astype(np.float32) / 255
            out.append({"s": np.stack([1 - red, red], -1), "b": red,
                        "e": np.full(image.shape[:2] + (4,), 0.25, np.float32)})
        return out
    image = np.zeros((12, 16, 3), np.uint8)
    image[:, 5:11, 0] = 255
    plain = augmented_heads(pixelwise, [image], Augmentation())[0]
    flipped = augmented_heads(pixelwise, [image], Augmentation(flip=True))[0]
    for key in ("s", "b", "e"):
        np.testing.assert_allclose(flipped[key], plain[key], atol=1e-6)
    scaled = augmented_heads(pixelwise, [image], Augmentation(scales=(1.0, 1.5), flip=True))[0]
    assert scaled["b"].shape == (12, 16)
    np.testing.assert_allclose(scaled["b"][:, :4], 0.0, atol=1e-6)
    np.testing.assert_allclose(scaled["b"][:, 6:10], 1.0, atol=1e-6)


def test_predictor_uses_and_exports_its_augmentation(tmp_path):
    from helpers.networks import quick_pspnet
    from oosis_jax.training.configs import get_config

    config = get_config("smoke")
    tta = Augmentation(scales=(1.0, 1.25), flip=True)
    predictor = Predictor(quick_pspnet(config.model), config, processes=1, augmentation=tta)
    rng = np.random.default_rng(1)
    for shape in ((2, 2), (21, 34)):
        prediction = predictor(rng.integers(0, 256, shape + (3,), dtype=np.uint8))
        assert prediction.instance_map.shape == shape and prediction.e.shape == shape + (4,)
    folder = export(predictor.model, config, tmp_path / "tta", extra={"augmentation": dataclasses.asdict(tta)})
    assert Predictor.from_pretrained(folder).augmentation == tta
    assert predictor.replace(lam=5.0).augmentation == tta


def test_view_grid_labels_on_the_largest_view_and_brings_the_labels_back():
    from oosis_jax.inference.augment import resample_labels
    from oosis_jax.inference.instances import label_heads
    from oosis_jax.inference.robustness import Robustness

    tta = Augmentation.parse("scales=1:1.5,flip,view_grid")
    assert tta.view_grid and Augmentation.parse(tta.to_text()) == tta
    assert tta.label_shape((20, 30)) == (30, 45) and Augmentation(scales=(1.5,)).label_shape((20, 30)) == (20, 30)
    labels = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(resample_labels(np.kron(labels, np.ones((2, 2), int)), (3, 4)), labels)
    np.testing.assert_array_equal(resample_labels(labels, (6, 8)), np.kron(labels, np.ones((2, 2), int)))
    # A pixelwise network: heads on the views' grid; the prediction is the labelling made there, sampled back
    # onto the image's grid.
    rng = np.random.default_rng(0)
    image = np.zeros((16, 24, 3), np.uint8)
    image[3:12, 2:10], image[4:14, 12:22] = 200, 90
    heads_of = lambda views: [{"s": np.stack([v[..., 0] < 50, v[..., 0] >= 50], -1).astype(np.float32),  # noqa
                               "b": np.zeros(v.shape[:2], np.float32) + rng.uniform(0, 0.01, v.shape[:2]),
                               "e": np.full(v.shape[:2] + (4,), 0.25, np.float32)} for v in views]
    fine = augmented_heads(heads_of, [image], tta, label_grid=True)[0]
    assert fine["b"].shape == (24, 36) and augmented_heads(heads_of, [image], tta)[0]["b"].shape == (16, 24)
    pred = label_heads([fine], processes=1, progress=False, robustness=Robustness(), shapes=[(16, 24)])[0]
    assert pred.instance_map.shape == pred.labels.shape == pred.b.shape == (16, 24) and pred.s.shape[:2] == (16, 24)
    on_views = label_heads([fine], processes=1, progress=False, robustness=Robustness())[0]
    assert on_views.labels.shape == (24, 36)
    np.testing.assert_array_equal(pred.labels, resample_labels(on_views.labels, (16, 24)))
    with pytest.raises(ValueError, match="1 shapes but 2 heads"):
        label_heads([fine, fine], processes=1, progress=False, shapes=[(16, 24)])


def test_shifted_views_pad_with_the_edge_and_come_back_aligned():
    tta = Augmentation.parse("scales=1.25,flip,shift=2,view_grid")
    assert tta.shift == 2 and tta.shifts == (0, 2) and Augmentation.parse(tta.to_text()) == tta
    assert Augmentation().shifts == (0,)
    for bad in ("shift=-1", "shift=1.5", "shift"):
        with pytest.raises(ValueError, match="shift|expected|invalid literal"):
            Augmentation.parse(bad)
    image = np.random.default_rng(2).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    view = view_image(image, 1.0, mirrored=True, shift=3)
    assert view.shape == (12, 16, 3)
    np.testing.assert_array_equal(view[3:, 3:], image[:, ::-1])
    np.testing.assert_array_equal(view[0, 3:], image[0, ::-1])      # the pad repeats the first row ...
    np.testing.assert_array_equal(view[3:, 0], image[:, -1])        # ... and column of the (mirrored) view

    def pixelwise(images):   # a translation-equivariant "network": the shifted views' heads line up exactly
        return [{"s": np.stack([1 - v[..., 0] / 255, v[..., 0] / 255], -1).astype(np.float32),
                 "b": (v[..., 1] / 255).astype(np.float32),
                 "e": np.repeat((v[..., 2:3] / 255).astype(np.float32), 4, -1)} for v in images]
    plain = augmented_heads(pixelwise, [image], Augmentation())[0]
    for shifted in (Augmentation(shift=2), Augmentation(flip=True, shift=1)):
        heads = augmented_heads(pixelwise, [image], shifted)[0]
        for key in ("s", "b", "e"):
            np.testing.assert_allclose(heads[key], plain[key], atol=1e-6)
    # a network that sees the pad differs there and nowhere else: the views are really averaged
    calls = []
    marked = lambda views: calls.append(len(views)) or [  # noqa
        {**h, "b": h["b"] + (v.shape[0] != 9)} for h, v in zip(pixelwise(views), views)]
    heads = augmented_heads(marked, [image], Augmentation(shift=2))[0]
    assert len(calls) == 2
    np.testing.assert_allclose(heads["b"], plain["b"] + 0.5, atol=1e-6)


def test_max_pixels_scales_large_images_views_less_but_never_below_one():
    tta = Augmentation.parse("scales=1:2,flip,view_grid,max_pixels=1200")
    assert tta.max_pixels == 1200 and Augmentation.parse(tta.to_text()) == tta
    assert tta.view_scale((10, 15), 2.0) == 2.0                              # 20x30 = 600 px: within the cap
    assert tta.view_scale((20, 30), 2.0) == pytest.approx(np.sqrt(2.0))      # 40x60 would be 2400 px
    assert tta.view_scale((40, 60), 2.0) == 1.0 and tta.view_scale((40, 60), 0.5) == 0.5  # never below 1
    assert tta.label_shape((20, 30)) == (28, 42) and tta.label_shape((40, 60)) == (40, 60)
    assert Augmentation(scales=(2.0,)).view_scale((400, 600), 2.0) == 2.0  # no cap by default
    for bad in ("max_pixels=0", "max_pixels=2.5", "max_pixels"):
        with pytest.raises(ValueError, match="max_pixels|expected|invalid literal"):
            Augmentation.parse(bad)
    with pytest.raises(ValueError, match="max_pixels"):
        Augmentation(max_pixels=True)
    # the network sees each image at its own capped scale; the heads come back on its label grid
    seen = []

    def heads_of(views):
        seen.extend(v.shape[:2] for v in views)
        return [{"s": np.full(v.shape[:2] + (2,), 0.5, np.float32), "b": np.zeros(v.shape[:2], np.float32),
                 "e": np.full(v.shape[:2] + (4,), 0.25, np.float32)} for v in views]

    images = [np.zeros((10, 15, 3), np.uint8), np.zeros((40, 60, 3), np.uint8)]
    heads = augmented_heads(heads_of, images, tta, label_grid=True)
    assert [h["b"].shape for h in heads] == [(20, 30), (40, 60)]
    assert sorted(set(seen)) == [(10, 15), (20, 30), (40, 60)]


@pytest.mark.parametrize("shape", [(8, 10), (16, 20), (5, 7), (12, 9), (31, 40)])
def test_labels_come_back_by_area_and_commute_with_mirrors(shape):
    """Each pixel takes the label covering most of it, ties to the larger (nearer) label; a mirrored or
    transposed labelling comes back mirrored or transposed (sampling at pixel centres took the lower-right cell
    of a 2x grid, so a one-cell seam survived or vanished with its column's parity)."""
    from oosis_jax.inference.augment import resample_labels

    rng = np.random.default_rng(sum(shape))
    labels = rng.integers(0, 4, (16, 20))
    back = resample_labels(labels, shape)
    assert back.shape == shape and np.isin(back, labels).all()
    np.testing.assert_array_equal(resample_labels(labels[:, ::-1], shape), back[:, ::-1])
    np.testing.assert_array_equal(resample_labels(labels[::-1], shape), back[::-1])
    np.testing.assert_array_equal(resample_labels(labels.T, shape[::-1]), back.T)


def test_a_pixel_takes_the_label_of_most_of_its_area_and_a_tie_the_nearer():
    from oosis_jax.inference.augment import resample_labels

    seam = np.array([[1, 1, 3, 2, 2, 2]])  # a one-cell occluder seam at 2x: half of pixel 1's area
    np.testing.assert_array_equal(resample_labels(np.repeat(seam, 2, 0), (1, 3)), [[1, 3, 2]])
    np.testing.assert_array_equal(resample_labels(np.repeat(seam[:, ::-1], 2, 0), (1, 3)), [[2, 3, 1]])
    thirds = np.array([[5, 5, 7]])  # 1.5x: pixel 0 covers 5 and half of the middle 5
    np.testing.assert_array_equal(resample_labels(thirds, (1, 2)), [[5, 7]])


def test_a_capped_view_never_rounds_past_max_pixels():
    from oosis_jax.inference.augment import view_shape

    tta = Augmentation(scales=(2.0,), max_pixels=307200)
    assert view_shape((240, 320), tta.view_scale((240, 320), 2.0)) == (480, 640)  # exactly the cap: kept
    assert view_shape((200, 408), tta.view_scale((200, 408), 2.0)) == (388, 791)  # 388x792 rounded past it
    for height in range(150, 400, 7):
        for width in range(150, 600, 11):
            scale = tta.view_scale((height, width), 2.0)
            assert scale == 1.0 or np.prod(view_shape((height, width), scale)) <= 307200, (height, width)
