"""Learned instance scores (`oosis_jax.inference.scoring`) and how `Predictor` ships and applies them."""

import json

import numpy as np
import pytest
from test_predictor import images, make_predictor

from oosis_jax import Predictor
from oosis_jax.inference.instances import assemble
from oosis_jax.inference.predictor import CONFIG_FILE, export
from oosis_jax.inference.scoring import (FEATURES, ScoreModel, best_ious, fit_score_model, instance_features,
                                         rescore)

K = len(FEATURES)


def two_squares():
    """A 10x10 labelling with two 4x4 instances (label 1 at the top left, label 2 at the bottom right), and
    heads: s says class 1 (0.8) inside the squares, b = 1 on the first square's border, 0.5 inside it."""
    labels = np.zeros((10, 10), np.int32)
    labels[0:4, 0:4] = 1
    labels[5:9, 5:9] = 2
    s = np.zeros((10, 10, 3), np.float32)
    s[..., 0] = 1.0
    s[labels > 0] = (0.2, 0.8, 0.0)
    b = np.zeros((10, 10), np.float32)
    b[0:4, 0:4] = 0.5
    b[[0, 3], 0:4] = b[0:4, [0, 3]] = 1.0
    return assemble(labels, s, b, np.zeros((10, 10, 4), np.float32))


def test_features_of_two_squares():
    prediction = two_squares()
    features = instance_features(prediction)
    assert features.shape == (2, K) and np.all(np.isfinite(features))
    np.testing.assert_allclose(features[:, 0], np.log(16))          # area
    # the first square touches another id only on its right and bottom sides: border = 7 pixels
    np.testing.assert_allclose(features[0, 1:3], [1.0, (5 * 1.0 + 4 * 0.5) / 9])   # mean b: border, inside
    np.testing.assert_allclose(features[1, 1:3], 0.0)
    np.testing.assert_allclose(features[:, 3:5], 0.8)               # foreground and class probability
    # its outline: those 7 and the 7 pixels on the image's frame, (0, 3) and (3, 0) both: 7 of 12 on the frame
    np.testing.assert_allclose(features[0, 5], 7 / 12)
    np.testing.assert_allclose(features[1, 5], 0.0)
    half = np.zeros((20, 30), np.int32)
    half[:, :15] = 1  # an object cut by three sides of the image: most of its outline is the frame
    cut = assemble(half, np.full((20, 30, 2), 0.5, np.float32), np.zeros((20, 30), np.float32),
                   np.zeros((20, 30, 4), np.float32))
    # frame: 15 + 15 + 20 - 2 corners = 48 pixels; outline: those and the 20 of column 14, 2 counted in both
    np.testing.assert_allclose(instance_features(cut)[0, 5], 48 / 66)
    assert instance_features(assemble(np.zeros((4, 4), np.int32), np.ones((4, 4, 2), np.float32) / 2,
                                      np.zeros((4, 4), np.float32), np.zeros((4, 4, 4), np.float32))).shape == (0, K)


def test_best_ious():
    gt = np.zeros((4, 6), np.int32)
    gt[:, :3] = 1
    pred = np.zeros((4, 6), np.int32)
    pred[:, :2] = 1          # 8 of gt 1's 12 pixels: IoU 2/3
    pred[:, 4:] = 2          # only background
    np.testing.assert_allclose(best_ious(pred, gt), [2 / 3, 0.0])
    assert best_ious(np.zeros((2, 2), int), np.zeros((2, 2), int)).shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        best_ious(pred, gt[:2])


def test_fit_recovers_a_logistic_relation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, K)) * 3 + 1
    truth = 1 / (1 + np.exp(-(0.8 * (x[:, 0] - 1) / 3 - 0.5 * (x[:, 4] - 1) / 3 + 0.2)))
    model = ScoreModel.fit(x, truth, l2=1e-6)
    np.testing.assert_allclose(model(x), truth, atol=2e-3)
    assert ScoreModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model


def test_bad_models_and_inputs_raise():
    with pytest.raises(ValueError, match="needs 8"):
        ScoreModel((0.0,), (1.0,), (1.0,), 0.0)
    with pytest.raises(ValueError, match="positive scales"):
        ScoreModel((0.0,) * K, (0.0,) * K, (1.0,) * K, 0.0)
    with pytest.raises(ValueError, match="finite"):
        ScoreModel((np.nan,) * K, (1.0,) * K, (1.0,) * K, 0.0)
    with pytest.raises(ValueError, match="not a ScoreModel"):
        ScoreModel.from_dict({"mean": [0.0] * K})
    # a model saved by an earlier version (no names, or another feature in a slot) is refused, not misapplied
    saved = ScoreModel((0.0,) * K, (1.0,) * K, (1.0,) * K, 0.0).to_dict()
    with pytest.raises(ValueError, match=r"feature 0: missing, here 'log area'.*--fit-scores"):
        ScoreModel.from_dict({k: v for k, v in saved.items() if k != "features"})
    assert ScoreModel.from_dict({**saved, "features": tuple(FEATURES)}) == ScoreModel.from_dict(saved)
    old = [*FEATURES[:5], "share of the border on the image edge", *FEATURES[6:]]
    with pytest.raises(ValueError, match=r"other features than this version's \(feature 5: 'share of"):
        ScoreModel.from_dict({**saved, "features": old})
    with pytest.raises(ValueError, match="N >= 2"):
        ScoreModel.fit(np.zeros((1, K)), np.zeros(1))
    with pytest.raises(ValueError, match="ious in"):
        ScoreModel.fit(np.zeros((3, K)), np.array([0.0, 2.0, 0.5]))
    with pytest.raises(ValueError, match="2 predictions but 1"):
        fit_score_model([two_squares()] * 2, [{"instance_map": np.zeros((10, 10), int)}])


def test_rescore_changes_only_the_scores():
    prediction = two_squares()
    gt = {"instance_map": prediction.instance_map.copy()}
    gt["instance_map"][5:9, 5:7] = 0   # the second instance is only half right
    model = fit_score_model([prediction, prediction], [gt, gt])
    rescored = rescore(prediction, model)
    assert rescored.scores.shape == (2,) and np.all((rescored.scores > 0) & (rescored.scores < 1))
    assert rescored.scores[0] > rescored.scores[1]
    np.testing.assert_array_equal(rescored.instance_map, prediction.instance_map)
    np.testing.assert_array_equal(rescored.edges, prediction.edges)


def test_predictor_ships_and_applies_a_score_model(tmp_path):
    predictor = make_predictor("unet")
    model = ScoreModel((0.0,) * K, (1.0,) * K, (1.0,) + (0.0,) * (K - 1), -3.0)   # the score grows with area
    folder = export(predictor.model, predictor.config, tmp_path / "scored",
                    extra={"lam": 30.0, "score_model": model.to_dict()})
    loaded = Predictor.from_pretrained(folder, processes=1)
    assert loaded.score_model == model and loaded.lam == 30.0
    assert loaded.replace(lam=20.0).score_model == model
    (image,) = images((37, 53), seed=5)
    plain, scored = predictor(image), loaded.replace(lam=predictor.lam)(image)
    np.testing.assert_array_equal(scored.instance_map, plain.instance_map)
    np.testing.assert_allclose(scored.scores, model(instance_features(plain)))
    values = json.loads((folder / CONFIG_FILE).read_text())
    values["export"]["score_model"] = {"mean": [0.0]}
    (folder / CONFIG_FILE).write_text(json.dumps(values))
    with pytest.raises(ValueError, match="not a ScoreModel"):
        Predictor.from_pretrained(folder)
