"""`Predictor.predict_iter`: any number of images in the memory of one chunk, one item per image, and an
`ImageFailure` naming each image that fails (bad input, network or CRF) while the others still come."""

import dataclasses

import crf
import numpy as np
import pytest
from helpers.networks import quick_pspnet

from oosis_jax import ImageFailure, Predictor
from oosis_jax.inference.instances import in_chunks
from oosis_jax.training.configs import get_config


@pytest.fixture(scope="module")
def predictor():
    config = get_config("smoke")
    config = config.replace(model=dataclasses.replace(config.model, decoder="unet", decoder_width=8))
    return Predictor(quick_pspnet(config.model), config, processes=1, batch_size=2)


def _images(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (int(rng.integers(4, 12)), int(rng.integers(4, 12)), 3), dtype=np.uint8)
            for _ in range(count)]


def _same(got, expected):
    for name in ("instance_map", "classes", "edges"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5, atol=1e-6)


def test_predict_iter_reads_one_chunk_ahead_and_equals_predict_many(predictor):
    batch = _images(7)
    pulled = []

    def lazily():
        for image in batch:
            pulled.append(1)
            yield image

    stream = predictor.predict_iter(lazily(), chunk_size=3, progress=False)
    first = next(stream)
    assert len(pulled) == 3  # the first chunk only
    streamed = [first, *stream]
    assert len(pulled) == 7 and len(streamed) == 7
    for got, expected in zip(streamed, predictor.predict_many(batch, progress=False)):
        _same(got, expected)
    assert list(predictor.predict_iter([], progress=False)) == []
    keyed = list(predictor.predict_keyed(((f"k{k}", image) for k, image in enumerate(batch)), 3, progress=False))
    assert [key for key, _ in keyed] == [f"k{k}" for k in range(7)]
    for (_, got), expected in zip(keyed, streamed):
        _same(got, expected)


def _fails_on_narrow(sigma, occ, **kwargs):
    if sigma.shape[1] < 5:
        raise ValueError(f"too narrow: {sigma.shape}")
    return crf.solve(sigma, occ, **kwargs)


def test_each_failure_is_named_by_index_and_the_others_come(predictor, monkeypatch):
    good = _images(5, seed=1)
    good = [g[:, :6] if g.shape[1] < 5 else g for g in good]
    narrow = np.zeros((6, 4, 3), np.uint8)
    huge = np.zeros((13, 13, 3), np.uint8)  # the network "runs out of memory" on this size only
    batch = [good[0], np.zeros((6, 6), np.uint8), good[1], narrow, good[2], huge, good[3], good[4]]
    failing = predictor.replace(method=_fails_on_narrow)
    forward = failing.forward

    def forward_failing_on_huge(images, progress=True, desc="network"):
        if any(image.shape[:2] == (13, 13) for image in images):
            raise MemoryError("device out of memory")
        return forward(images, progress, desc)

    monkeypatch.setattr(failing, "forward", forward_failing_on_huge)
    items = list(failing.predict_iter(iter(batch), chunk_size=3, progress=False))
    assert len(items) == len(batch)
    failures = {k: item for k, item in enumerate(items) if isinstance(item, ImageFailure)}
    assert sorted(failures) == [1, 3, 5]
    assert failures[1].index == 1
    assert str(failures[1]).startswith("image 1: not a valid image: the image must have shape (H, W, 3)")
    assert str(failures[3]).startswith("image 3: CRF failed: ValueError: too narrow")
    assert failures[5].reason == "network failed: MemoryError: device out of memory"
    assert isinstance(failures[5], ValueError)
    for k, image in ((0, good[0]), (2, good[1]), (4, good[2]), (6, good[3]), (7, good[4])):
        _same(items[k], predictor(image))


def test_in_chunks():
    assert list(in_chunks(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(in_chunks([], 2)) == []

    def failing():
        yield from range(4)
        raise OSError("read failed")

    chunks = in_chunks(failing(), 3)
    assert next(chunks) == [0, 1, 2] and next(chunks) == [3]  # what was read before the error still comes
    with pytest.raises(OSError, match="read failed"):
        next(chunks)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="chunk size"):
            list(in_chunks([1], bad))


def test_ground_truth_labelling_streams_and_names_crf_failures(monkeypatch):
    import pickle

    from helpers.crf_problems import fail_solve_on_width

    from data.synthetic import make_scene
    from oosis_jax.inference.instances import label_ground_truth, label_ground_truth_iter

    fail_solve_on_width(monkeypatch, 37)
    scenes = [make_scene(k, 24, 36 + (k == 2)) for k in range(4)]  # scene 2 is 37 wide: its CRF fails
    pairs = list(label_ground_truth_iter(iter(scenes), 5, chunk_size=3, processes=1, progress=False))
    assert [example is scene for (example, _), scene in zip(pairs, scenes)] == [True] * 4
    items = [item for _, item in pairs]
    assert [type(item).__name__ for item in items] == ["Prediction", "Prediction", "ImageFailure", "Prediction"]
    assert str(items[2]) == "image 2: CRF failed: ValueError: synthetic CRF failure"
    for k in (0, 1, 3):
        np.testing.assert_array_equal(items[k].instance_map,
                                      label_ground_truth([scenes[k]], 5, processes=1, progress=False)[0].instance_map)
    copy = pickle.loads(pickle.dumps(items[2]))
    assert (copy.index, copy.reason, str(copy)) == (2, items[2].reason, str(items[2]))


def test_a_malformed_ground_truth_costs_only_its_example():
    from data.synthetic import make_scene
    from oosis_jax.inference.instances import label_ground_truth_iter

    scenes = [make_scene(k, 24, 36) for k in range(3)]
    bad = dict(scenes[1], classes=scenes[1]["classes"] + 10)  # class ids beyond the 5 of the dataset
    pairs = list(label_ground_truth_iter([scenes[0], bad, scenes[2]], 5, chunk_size=3, processes=1, progress=False))
    items = [item for _, item in pairs]
    assert [type(item).__name__ for item in items] == ["Prediction", "ImageFailure", "Prediction"]
    assert str(items[1]).startswith("image 1: bad ground truth: ValueError: class id") and "exceeds" in str(items[1])


def test_a_malformed_heads_dict_costs_only_its_image_and_a_bad_pair_is_named(predictor):
    import crf

    image = np.random.default_rng(1).integers(0, 256, (10, 12, 3), np.uint8)
    heads = predictor.heads([image], progress=False)[0]
    with pytest.raises(crf.BatchError, match=r"labelling: 2 of 3 items failed: item 1: BadItem: bad heads: "
                                             r".*NaN or inf; "
                                             r"item 2: BadItem: bad heads: KeyError: 'e'") as info:
        predictor.label([heads, dict(heads, b=np.full_like(heads["b"], np.nan)),
                         {k: v for k, v in heads.items() if k != "e"}], progress=False)
    assert info.value.results[1:] == [None, None]
    np.testing.assert_array_equal(info.value.results[0].instance_map, predictor.label([heads], progress=False)[0]
                                  .instance_map)
    # a malformed pair of predict_keyed is its own failure; the pairs around it come
    (key_a, a), (key_bad, bad), (key_c, c) = predictor.predict_keyed([("a", image), image, ("c", image)],
                                                                      progress=False)
    assert (key_a, key_bad, key_c) == ("a", None, "c") and isinstance(bad, ImageFailure)
    assert str(bad) == "image 1: not a (key, image) pair: got ndarray"
    np.testing.assert_array_equal(a.instance_map, c.instance_map)


def test_an_item_that_cannot_be_finished_costs_only_itself(predictor, monkeypatch):
    """A failure after the CRF (e.g. a join model given an image of another size) fails its item alone."""
    images = _images(3, seed=2)
    heads = predictor.heads(images, progress=False)
    finish = predictor.finish

    def finish_failing_on_the_second(prediction, image=None):
        if image is images[1]:
            raise ValueError("image (5, 5) and labels (6, 6) must share one grid")
        return finish(prediction, image)

    monkeypatch.setattr(predictor, "finish", finish_failing_on_the_second)
    with pytest.raises(crf.BatchError, match=r"labelling: 1 of 3 items failed: item 1: BadItem: finishing "
                                             r"failed: ValueError: image \(5, 5\)") as info:
        predictor.label(heads, progress=False, images=images)
    assert info.value.results[1] is None
    with pytest.raises(ValueError, match="finishing failed") as alone:  # one image: its own error, with its cause
        predictor(images[1])
    assert str(alone.value.__cause__).startswith("image (5, 5) and labels (6, 6)")
    for k in (0, 2):
        _same(info.value.results[k], predictor.label([heads[k]], progress=False, images=[images[k]])[0])


def test_images_read_before_a_failing_source_are_predicted_first(predictor):
    batch = _images(4, seed=3)

    def source():
        yield from batch[:3]
        raise OSError("disk read failed")

    stream = predictor.predict_iter(source(), chunk_size=2, progress=False)
    got = [next(stream) for _ in range(3)]  # the full chunk, then the one image read before the error
    with pytest.raises(OSError, match="disk read failed"):
        next(stream)
    for item, image in zip(got, batch):
        _same(item, predictor(image))


def test_each_view_s_network_pass_names_its_progress_bar(predictor, monkeypatch):
    from oosis_jax.inference.augment import Augmentation

    names = []
    viewed = predictor.replace(augmentation=Augmentation(scales=(1.0,), flip=True))
    forward = viewed.forward
    monkeypatch.setattr(viewed, "forward", lambda images, progress=True, desc="network": (
        names.append(desc), forward(images, progress, desc))[1])
    viewed.heads([np.zeros((16, 16, 3), np.uint8)], progress=False)
    assert names == ["network (view 1/2)", "network (view 2/2)"]


def test_chunk_bars_show_the_network_and_the_crf_within_each_chunk(predictor, capsys):
    """The CLIs keep their own bar of images and ask for the chunk's network and CRF bars below it (a chunk of
    KINS images takes minutes on a CPU); without either flag nothing is drawn."""
    list(predictor.predict_iter(_images(3), chunk_size=2, progress=False))
    assert capsys.readouterr().err == ""
    list(predictor.predict_iter(_images(3), chunk_size=2, progress=False, chunk_progress=True))
    err = capsys.readouterr().err
    assert "network" in err and "crf solve" in err and "predict" not in err
    list(predictor.predict_keyed(((k, image) for k, image in enumerate(_images(3))), chunk_size=2))
    err = capsys.readouterr().err
    assert "predict" in err and "crf solve" in err  # progress: its bar and the chunks'
    tiled = predictor.replace(tile_size=64, tile_overlap=8)  # images above the tile size go through one by one
    list(tiled.predict_iter([np.zeros((40, 70, 3), np.uint8)] * 2, chunk_size=2, progress=False,
                            chunk_progress=True))
    assert "network:   0%|          | 0/2 [" in capsys.readouterr().err  # counted as they come, not all before
