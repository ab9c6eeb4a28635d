"""The one-line API: `Predictor`, `export` / `load_exported` and `check_image`."""

import dataclasses
import json
import warnings

import crf
import numpy as np
import pytest
from helpers.networks import quick_pspnet

from oosis_jax import Predictor
from oosis_jax.inference import network
from oosis_jax.inference.predictor import CONFIG_FILE, WEIGHTS_FILE, check_image, export, load_exported
from oosis_jax.models import flat_state
from oosis_jax.training.configs import get_config

SIZES = [(2, 2), (3, 5), (37, 53), (20, 600)]


def make_predictor(decoder: str) -> Predictor:
    """An untrained tiny network (the smoke preset's model with ``decoder``) and its `TrainConfig`."""
    config = get_config("smoke")
    config = config.replace(model=dataclasses.replace(config.model, decoder=decoder, decoder_width=8))
    return Predictor(quick_pspnet(config.model), config, processes=1, batch_size=3)


@pytest.fixture(scope="module")
def predictor():
    return make_predictor("unet")


@pytest.fixture(scope="module")
def paper_predictor():
    return make_predictor("none")


def images(*sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def check_prediction(prediction, height, width, num_classes):
    """The array conventions of docs/contracts.md, and ids consistent across the fields."""
    instance_map, classes, scores, edges = (prediction.instance_map, prediction.classes, prediction.scores,
                                            prediction.edges)
    assert instance_map.dtype == np.int32 and instance_map.shape == (height, width)
    n = int(instance_map.max(initial=0))
    assert instance_map.min(initial=0) >= 0
    assert set(np.unique(instance_map)) - {0} == set(range(1, n + 1))
    assert classes.dtype == np.int32 and classes.shape == (n,)
    assert np.all((classes >= 1) & (classes <= num_classes))
    assert np.issubdtype(scores.dtype, np.floating) and scores.shape == (n,) and np.all(np.isfinite(scores))
    assert edges.dtype == np.int32 and edges.ndim == 2 and edges.shape[1] == 2
    assert np.all((edges >= 1) & (edges <= n)) and np.all(edges[:, 0] != edges[:, 1])
    for a, b in edges:  # an edge joins 4-neighbours
        mask_a = instance_map == a
        near = np.zeros_like(mask_a)
        near[1:] |= mask_a[:-1]
        near[:-1] |= mask_a[1:]
        near[:, 1:] |= mask_a[:, :-1]
        near[:, :-1] |= mask_a[:, 1:]
        assert np.any(near & (instance_map == b))
    assert prediction.b.shape == (height, width) and prediction.e.shape == (height, width, 4)
    assert prediction.s.shape == (height, width, num_classes + 1)


def assert_same_prediction(got, expected):
    for field in dataclasses.fields(expected):
        a, b = getattr(got, field.name), getattr(expected, field.name)
        if field.name in ("b", "e", "s", "scores"):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=field.name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=field.name)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_prediction_contract_at_odd_sizes(predictor, size):
    assert max(SIZES[-1]) > network.TILE_SIZE  # the last size takes the tiled path
    (image,) = images(size)
    prediction = predictor(image)
    check_prediction(prediction, *size, predictor.config.model.num_classes)


def test_paper_decoder_predicts_too(paper_predictor):
    for image in images((3, 5), (37, 53)):
        check_prediction(paper_predictor(image), *image.shape[:2], paper_predictor.config.model.num_classes)


def test_predict_many_equals_single_calls(predictor):
    # 37x53, 40x60 and 64x64 share the padded shape 64x64 (one batch of 3); 70x30 pads to 128x64; 20x600 tiles
    batch = images((37, 53), (70, 30), (40, 60), (20, 600), (64, 64), (2, 2), seed=1)
    many = predictor.predict_many(batch, progress=False)
    assert len(many) == len(batch)
    for image, prediction in zip(batch, many):
        assert_same_prediction(prediction, predictor(image))
    # the batched network path equals the single-image (tiled) one
    heads = predictor.heads(batch[:3], progress=False)
    for image, head in zip(batch[:3], heads):
        reference = network.head_probabilities(predictor.model, image)
        for key in ("s", "b", "e"):
            np.testing.assert_allclose(head[key], reference[key], rtol=1e-5, atol=1e-5)
    assert predictor.predict_many([], progress=False) == []


@pytest.mark.parametrize("count, batch_size, padded", [
    (1, 8, 1), (2, 8, 2), (3, 8, 4), (5, 8, 8), (8, 8, 8), (2, 3, 2), (3, 3, 3), (1, 1, 1)])
def test_padded_batch_is_the_next_power_of_two_within_the_batch_size(count, batch_size, padded):
    assert network.padded_batch(count, batch_size) == padded


@pytest.mark.parametrize("count", [0, 9])
def test_padded_batch_refuses_counts_outside_the_batch(count):
    with pytest.raises(ValueError, match=f"count must be in 1..8, got {count}"):
        network.padded_batch(count, 8)


def test_a_short_chunk_runs_at_a_padded_batch_with_unchanged_heads(predictor, monkeypatch):
    batched = predictor.replace(batch_size=8)
    batch = images((37, 53), (40, 60), (64, 64), seed=5)  # one padded shape (64x64), 3 images -> batch 4
    calls = []

    def spy(model, normalized):
        calls.append(normalized.shape)
        return forward(model, normalized)

    forward = network.forward
    monkeypatch.setattr(network, "forward", spy)
    heads = batched.forward(batch, progress=False)
    assert calls == [(4, 64, 64, 3)]
    for image, head in zip(batch, heads):
        alone = batched.forward([image], progress=False)[0]
        for key in ("s", "b", "e"):
            assert head[key].shape[:2] == image.shape[:2]
            np.testing.assert_allclose(head[key], alone[key], rtol=1e-5, atol=1e-6)
    assert calls[1:] == [(1, 64, 64, 3)] * 3


@pytest.mark.parametrize("bad, problem", [
    (np.zeros((8, 8, 3), np.float32), "uint8"),
    (np.zeros((8, 8), np.uint8), r"\(H, W, 3\)"),
    (np.zeros((8, 8, 4), np.uint8), r"\(H, W, 3\)"),
    (np.zeros((0, 9, 3), np.uint8), "0x9"),
    (np.zeros((0, 0, 3), np.uint8), "0x0"),
    (np.zeros((0,), np.uint8), r"\(H, W, 3\)"),
])
def test_a_bad_image_is_named_and_the_others_are_predicted(predictor, bad, problem):
    good = images((4, 4), (5, 6), (6, 4), seed=3)
    with pytest.raises(crf.BatchError, match=f"predict_many: 1 of 4 items failed: item 2: ValueError: image 2 "
                                             f"(.*{problem}|{problem})") as info:
        predictor.predict_many(good[:2] + [bad] + good[2:], progress=False)
    results = info.value.results
    assert results[2] is None and list(info.value.failures) == [2]
    for image, prediction in zip(good, results[:2] + results[3:]):
        assert_same_prediction(prediction, predictor(image))
    with pytest.raises(crf.BatchError, match="Predictor.heads: 1 of 4 items failed: item 2: ") as info:
        predictor.heads(good[:2] + [bad] + good[2:], progress=False)
    heads = info.value.results
    assert heads[2] is None
    for image, head in zip(good, heads[:2] + heads[3:]):
        np.testing.assert_array_equal(head["b"], predictor.heads([image], progress=False)[0]["b"])
    with pytest.raises(ValueError, match=f"image (.*{problem}|{problem})"):
        predictor(bad)
    with pytest.raises(ValueError, match="photo"):
        check_image(bad, "photo")
    assert check_image(good[0]) is not None and check_image(good[0]).dtype == np.uint8
    with pytest.raises(ValueError, match="photo is not an array"):
        check_image(good, "photo")  # a list of images of different sizes


def test_one_image_in_place_of_a_sequence_is_refused_whole(predictor):
    """Iterated, an (H, W, 3) array gave H items that each failed ("image 0 must have shape (H, W, 3), got (W,
    3)"): the mistake is the call's, so it is named once; an (N, H, W, 3) batch is a sequence of images."""
    image = images((6, 5), seed=5)[0]
    for call in (predictor.predict_many, predictor.heads, lambda x, progress: list(predictor.predict_iter(x, 4,
                                                                                                       progress))):
        for one in (image, image[..., 0]):
            with pytest.raises(ValueError, match=r"expected a sequence of uint8 \(H, W, 3\) images .* got one array of "
                                                 r"shape \(6, 5(, 3)?\): pass \[image\] for one image"):
                call(one, progress=False)
    assert_same_prediction(predictor.predict_many(image[None], progress=False)[0], predictor(image))


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2)])
def test_images_one_pixel_wide_or_high_are_predicted(predictor, shape):
    image = images(shape, seed=4)[0]
    prediction = predictor(image)
    assert prediction.instance_map.shape == shape and prediction.b.shape == shape
    assert prediction.e.shape == (*shape, 4) and len(prediction.classes) == prediction.instance_map.max()


def _fails_on_narrow(sigma, occ, **kwargs):
    """``crf.solve``, but failing on images narrower than 5 pixels (a CRF failure on demand)."""
    if sigma.shape[1] < 5:
        raise ValueError(f"too narrow: {sigma.shape}")
    return crf.solve(sigma, occ, **kwargs)


def test_a_crf_failure_is_named_and_the_others_are_predicted_and_finished(predictor):
    failing = predictor.replace(method=_fails_on_narrow)
    batch = images((6, 7), (5, 4), (9, 8), seed=4)
    with pytest.raises(crf.BatchError, match=r"1 of 3 items failed: item 1: ValueError: too narrow") as info:
        failing.predict_many(iter(batch), progress=False)  # any iterable: a generator is read once, up front
    assert info.value.results[1] is None
    for i in (0, 2):
        assert_same_prediction(info.value.results[i], predictor(batch[i]))
    with pytest.raises(ValueError, match="too narrow") as single:
        failing(batch[1])
    assert not isinstance(single.value, crf.BatchError)


def test_export_round_trip(predictor, paper_predictor, tmp_path):
    image = images((37, 53), seed=2)[0]
    for p, name in ((predictor, "unet"), (paper_predictor, "none")):
        folder = export(p.model, p.config, tmp_path / name, extra={"run": {"note": "test"}})
        assert (folder / CONFIG_FILE).exists() and (folder / WEIGHTS_FILE).exists()
        assert json.loads((folder / CONFIG_FILE).read_text())["export"] == {"run": {"note": "test"}}
        model, config = load_exported(folder)
        assert config == p.config
        original, loaded = flat_state(p.model), flat_state(model)
        assert set(original) == set(loaded)
        for key in original:
            np.testing.assert_array_equal(loaded[key].get_value(), original[key].get_value(), err_msg=key)
        heads, reloaded = p.heads([image], progress=False)[0], Predictor(model, config).heads([image], False)[0]
        for key in ("s", "b", "e"):
            np.testing.assert_array_equal(reloaded[key], heads[key])
        from_folder = Predictor.from_pretrained(folder, processes=1)
        assert from_folder.config == p.config and from_folder.processes == 1
        assert_same_prediction(from_folder(image), p(image))


def test_a_failed_export_leaves_the_earlier_one_whole(predictor, paper_predictor, tmp_path):
    from oosis_jax.inference.robustness import Robustness

    folder = export(predictor.model, predictor.config, tmp_path / "model")
    (folder / "MODEL_CARD.md").write_text("a card of these weights")
    before = {name: (folder / name).read_bytes() for name in (CONFIG_FILE, WEIGHTS_FILE)}
    for model, config, extra, problem in (
            (paper_predictor.model, predictor.config, None, "not the one config.model describes"),
            (paper_predictor.model, paper_predictor.config, {"robustness": Robustness()}, "cannot be written as JSON")):
        with pytest.raises(ValueError, match=problem):
            export(model, config, folder, extra=extra)
    assert {name: (folder / name).read_bytes() for name in before} == before
    assert (folder / "MODEL_CARD.md").exists() and sorted(p.name for p in folder.iterdir()) == sorted(
        [CONFIG_FILE, WEIGHTS_FILE, "MODEL_CARD.md"])
    export(paper_predictor.model, paper_predictor.config, folder)  # other weights: the old card goes
    assert not (folder / "MODEL_CARD.md").exists() and load_exported(folder)[1] == paper_predictor.config


def test_load_exported_rejects_damaged_folders(predictor, tmp_path):
    folder = export(predictor.model, predictor.config, tmp_path / "good")
    config_text = (folder / CONFIG_FILE).read_text()

    def variant(name, config=config_text, arrays=None):
        out = tmp_path / name
        out.mkdir()
        if config is not None:
            (out / CONFIG_FILE).write_text(config)
        if arrays is None:
            (out / WEIGHTS_FILE).write_bytes((folder / WEIGHTS_FILE).read_bytes())
        elif arrays:
            np.savez(out / WEIGHTS_FILE, **arrays)
        return out

    with pytest.raises(ValueError, match="config.json is missing"):
        load_exported(variant("no_config", config=None))
    with pytest.raises(ValueError, match="not valid JSON"):
        load_exported(variant("truncated", config=config_text[:len(config_text) // 2]))
    values = json.loads(config_text)
    del values["model"]
    with pytest.raises(ValueError, match="config.json"):
        load_exported(variant("no_model", config=json.dumps(values)))
    with pytest.raises(ValueError, match=r"config.json is not a valid exported configuration: a JSON list, not an"):
        load_exported(variant("list", config="[1, 2]"))  # said as it is (it was pop()'s TypeError)
    # a field left out would silently take its default: named instead, as is a field the config does not have
    values = json.loads(config_text)
    del values["model"]["head_width"]
    with pytest.raises(ValueError, match=r"config.json .*ModelConfig: missing fields \['head_width'\]"):
        load_exported(variant("no_stride", config=json.dumps(values)))
    values = json.loads(config_text)
    values["model"]["colour"] = 3
    with pytest.raises(ValueError, match=r"config.json .*ModelConfig: unknown fields \['colour'\]"):
        load_exported(variant("extra_field", config=json.dumps(values)))
    with np.load(folder / WEIGHTS_FILE) as archive:
        arrays = {name: archive[name] for name in archive.files}
    dropped = min(name for name in arrays if name.startswith("backbone/"))
    partial = {k: v for k, v in arrays.items() if k != dropped}
    with warnings.catch_warnings():  # one error, not also load_pretrained's warning of arrays left initialised
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=f"lacks 1 of the model's arrays.*{dropped}"):
            load_exported(variant("partial", arrays=partial))
    with pytest.raises(FileNotFoundError, match="weights.npz"):
        load_exported(variant("no_weights", arrays={}))
    # an exported folder without its weights is not taken for a training run
    with pytest.raises(ValueError, match="neither weights.npz .* nor a checkpoints/ folder"):
        Predictor.from_pretrained(tmp_path / "no_weights")
    cut = (folder / WEIGHTS_FILE).read_bytes()[:500]
    for name, content in (("empty", b""), ("text", b"not an archive"), ("cut", cut)):
        damaged = variant(name)
        (damaged / WEIGHTS_FILE).write_bytes(content)
        with pytest.raises(ValueError, match=f"{damaged / WEIGHTS_FILE} is not a readable npz archive"):
            load_exported(damaged)


@pytest.mark.parametrize("export_options, problem", [
    ({"lam": "sixty"}, "export.lam is not valid: TypeError"), ({"robustness": {"bogus": 1}}, "export.robustness"),
    ({"augmentation": [1, 2]}, "export.augmentation"), ({"lam": float("nan")}, "lam and mu must be finite"),
    ({"method": "qpbo"}, "method must be one of"),
    # values JSON hands over that used to load as something else or fail at the first prediction
    ({"lam": True}, "export.lam is not valid: TypeError: expected a number, got True"),
    ({"augmentation": {"flip": "false"}}, "export.augmentation is not valid: .*flip must be bool"),
    ({"augmentation": {"max_pixels": float("inf")}}, "max_pixels must be a finite number"),
    ({"robustness": {"link_gap": 1.5}}, "export.robustness is not valid: .*link_gap must be whole numbers"),
    ({"robustness": {"high": 0.05}}, "high=0.05 is below the weak threshold"),
])
def test_from_pretrained_names_the_file_of_bad_export_options(predictor, tmp_path, export_options, problem):
    folder = export(predictor.model, predictor.config, tmp_path / "exported", extra=export_options)
    with pytest.raises(ValueError, match=f"config.json: .*{problem}"):
        Predictor.from_pretrained(folder)


def test_an_unreadable_config_json_is_named(predictor, tmp_path):
    from oosis_jax.inference.exported import exported_options

    folder = export(predictor.model, predictor.config, tmp_path / "exported")
    (folder / CONFIG_FILE).write_text('{"export": ')
    with pytest.raises(ValueError, match="config.json is not a JSON object"):
        exported_options(folder)


def test_an_export_key_no_loader_reads_is_refused_on_writing_and_on_reading(predictor, tmp_path):
    with pytest.raises(ValueError, match=r"export: extra holds \['lamda'\]; it takes the options"):
        export(predictor.model, predictor.config, tmp_path / "typo", extra={"lamda": 60.0})
    folder = export(predictor.model, predictor.config, tmp_path / "edited", extra={"lam": 60.0})
    values = json.loads((folder / CONFIG_FILE).read_text())
    values["export"]["lamda"] = 60.0  # edited by hand
    (folder / CONFIG_FILE).write_text(json.dumps(values))
    with pytest.raises(ValueError, match=r"config.json: export must be an object of the options .* got \['lamda'\]"):
        Predictor.from_pretrained(folder)


def test_exported_crf_options_come_back(predictor, tmp_path):
    folder = export(predictor.model, predictor.config, tmp_path / "exported",
                    extra={"lam": 60.0, "mu": 50.0, "method": "jump", "run": {"steps": 1}})
    loaded = Predictor.from_pretrained(folder)
    assert (loaded.lam, loaded.mu, loaded.method) == (60.0, 50.0, "jump")


@pytest.mark.parametrize("option, problem", [
    ({"lam": float("nan")}, "lam and mu must be finite"), ({"mu": -1.0}, "lam and mu must be finite and >= 0"),
    ({"lam": "20"}, "lam must be a real number"),
    ({"method": "foo"}, "method must be one of"), ({"processes": 0}, "processes must be"),
    ({"batch_size": 2.5}, "batch_size must be an int"), ({"tile_size": 0}, "tile size 0 must be >= 64"),
    ({"tile_overlap": 600}, r"tile overlap 600 must lie in \[0, 256\]"),
    ({"tile_size": 64.0}, "tile_size must be an integer"),
    ({"robustness": {"min_area": 5}}, r"robustness must be of type Robustness \(Robustness.parse"),
    ({"augmentation": "scales=2"}, "augmentation must be of type Augmentation"),
    ({"score_model": "fitted"}, "score_model must be None or a ScoreModel"),
])
def test_bad_options_are_refused_at_construction(predictor, option, problem):
    with pytest.raises(ValueError, match=problem):
        predictor.replace(**option)


def test_from_pretrained_rejects_missing_paths(tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(ValueError, match=str(missing)):
        Predictor.from_pretrained(missing)
    with pytest.raises(ValueError, match="nor an existing model"):
        Predictor.from_pretrained(str(tmp_path / "missing.npz"))
    for empty in ("", " "):  # it meant the current folder: inside a run folder, that run
        with pytest.raises(ValueError, match="an empty model name or folder"):
            Predictor.from_pretrained(empty)


def test_from_pretrained_reads_a_training_workdir(tmp_path):
    from oosis_jax.training import loop as train

    config = get_config("smoke", num_steps=2, checkpoint_every=1, log_every=1)
    state = train.train(config, tmp_path / "run")
    predictor = Predictor.from_pretrained(tmp_path / "run", processes=1)
    assert predictor.config == config
    np.testing.assert_array_equal(predictor.model.s_head.kernel.get_value(),
                                  np.asarray(state.params["s_head"]["kernel"].get_value()))
    (image,) = images((33, 47), seed=3)
    check_prediction(predictor(image), 33, 47, config.model.num_classes)


def test_replace_shares_the_model(predictor):
    jump = predictor.replace(method="jump", lam=5.0)
    assert jump.model is predictor.model and jump.config is predictor.config
    assert (jump.method, jump.lam, jump.mu) == ("jump", 5.0, predictor.mu)
    assert (jump.processes, jump.batch_size, jump.robustness) == (1, 3, predictor.robustness)
    assert predictor.method == "solve"
    (image,) = images((37, 53), seed=4)
    check_prediction(jump(image), 37, 53, predictor.config.model.num_classes)
    with pytest.raises(ValueError, match="batch_size"):
        predictor.replace(batch_size=0)

