"""Joining the pieces of an object cut by an occluder (`oosis_jax.inference.joining`)."""

import dataclasses
import json

import numpy as np
import pytest
from test_predictor import images, make_predictor

from oosis_jax import Predictor
from oosis_jax.inference import joining
from oosis_jax.inference.instances import Prediction
from oosis_jax.inference import predictor as predictor_lib
from oosis_jax.inference.predictor import CONFIG_FILE, export


def cut_object(occluder_label: int = 2, right_class: int = 1) -> Prediction:
    """A red object (class 1) cut by a blue post (class 2): ids left piece 1, post 2, right piece 3."""
    instance_map = np.zeros((30, 40), np.int32)
    instance_map[10:20, 5:15] = 1
    instance_map[5:25, 15:22] = 2
    instance_map[10:20, 22:32] = 3
    labels = np.choose(instance_map, [0, 1, occluder_label, 1]).astype(np.int32)
    upper = 2 if occluder_label > 1 else 1
    edges = np.array([[upper, 1 if upper == 2 else 2], [upper, 3 if upper == 2 else 2]], np.int32)
    return Prediction(instance_map=instance_map, classes=np.array([1, 2, right_class], np.int32),
                      scores=np.ones(3), edges=edges, labels=labels, b=np.zeros((30, 40), np.float32),
                      e=np.zeros((30, 40, 4), np.float32), s=np.zeros((30, 40, 3), np.float32))


def cut_image() -> np.ndarray:
    image = np.full((30, 40, 3), 90, np.uint8)
    image[10:20, 5:32] = (200, 30, 30)
    image[5:25, 15:22] = (30, 30, 200)
    return image


def test_candidates_are_same_class_pieces_with_an_occluder_between():
    pairs, features = joining.join_candidates(cut_object(), cut_image())
    np.testing.assert_array_equal(pairs, [[1, 3]])
    named = dict(zip(joining.JOIN_FEATURES, features[0]))
    assert named["gap (px)"] == 8.0 and named["share of the gap in front of both"] == 1.0
    assert named["row overlap"] == 1.0 and named["mean colour distance"] == 0.0 and named["class 1"] == 1.0
    # another class, or a "post" behind the pieces, proposes nothing; nor does a gap wider than max_gap
    assert len(joining.join_candidates(cut_object(right_class=2), cut_image())[0]) == 0
    assert len(joining.join_candidates(cut_object(occluder_label=0), cut_image())[0]) == 0
    assert len(joining.join_candidates(cut_object(), cut_image(), max_gap=7)[0]) == 0
    with pytest.raises(ValueError, match="share one grid"):
        joining.join_candidates(cut_object(), cut_image()[:20])


def test_candidates_and_features_are_the_same_for_a_mirrored_image():
    # the views flip images left-right: a mirrored image must get the same joins (the features once held a
    # "left offset" and a "right offset", which swapped)
    prediction, image = cut_object(), cut_image()
    prediction.instance_map[10:20, 5:9] = 0  # pieces of unequal widths: left and right offsets differ
    prediction.labels[10:20, 5:9] = 0
    image[10:20, 5:9] = 90
    mirrored = dataclasses.replace(prediction, instance_map=prediction.instance_map[:, ::-1],
                                   labels=prediction.labels[:, ::-1])
    pairs, features = joining.join_candidates(prediction, image)
    mirrored_pairs, mirrored_features = joining.join_candidates(mirrored, image[:, ::-1])
    named = dict(zip(joining.JOIN_FEATURES, features[0]))
    assert named["smaller side offset"] < named["larger side offset"]
    np.testing.assert_array_equal(mirrored_pairs, pairs)
    np.testing.assert_allclose(mirrored_features, features, rtol=0, atol=1e-12)


def test_join_pieces_joins_above_the_threshold_and_keeps_the_graph_acyclic():
    prediction = cut_object()
    joined = joining.join_pieces(prediction, np.array([[1, 3]]), np.array([0.9]), 0.6)
    assert len(joined.classes) == 2 and joined.classes.tolist() == [1, 2]
    assert set(np.unique(joined.instance_map[10:20, 5:32])) == {1, 2}
    assert (joined.instance_map[prediction.instance_map == 3] == 1).all()
    np.testing.assert_array_equal(joined.edges, [[2, 1]])
    assert joined.scores.shape == (2,)
    assert joining.join_pieces(prediction, np.array([[1, 3]]), np.array([0.5]), 0.6) is prediction
    # 1 occludes 2 occludes 3: joining 1 and 3 would close a cycle, so it is skipped
    chain = Prediction(**{**vars(prediction), "edges": np.array([[1, 2], [2, 3]], np.int32)})
    assert joining.join_pieces(chain, np.array([[1, 3]]), np.array([0.9]), 0.6) is chain
    # an edge between the two pieces orders them in depth: not one object (the graph's link_gap can add one)
    ordered = Prediction(**{**vars(prediction), "edges": np.array([[2, 1], [2, 3], [3, 1]], np.int32)})
    assert joining.join_pieces(ordered, np.array([[1, 3]]), np.array([0.9]), 0.6) is ordered
    with pytest.raises(ValueError, match="one finite probability per pair"):
        joining.join_pieces(prediction, np.array([[1, 3]]), np.array([np.nan]), 0.6)
    with pytest.raises(ValueError, match="one finite probability per pair"):
        joining.join_pieces(prediction, np.array([[1, 3]]), np.array([0.9, 0.9]), 0.6)
    for bad in ([0, 1], [1, 4], [-1, 2]):  # the background, an id beyond the 3 instances, a negative one
        with pytest.raises(ValueError, match=rf"pair 1 is \[{bad[0]}, {bad[1]}\]: instance ids run from 1 to 3"):
            joining.join_pieces(prediction, np.array([[1, 3], bad]), np.array([0.9, 0.9]), 0.6)


def test_same_object_targets():
    prediction = cut_object()
    one = np.where(prediction.instance_map == 2, 2, (prediction.instance_map > 0).astype(int))  # one object
    two = prediction.instance_map  # each piece its own object
    pairs = np.array([[1, 3]])
    assert joining.same_object(prediction, one, pairs).tolist() == [1.0]
    assert joining.same_object(prediction, two, pairs).tolist() == [0.0]
    assert joining.same_object(prediction, np.zeros_like(two), pairs).tolist() == [0.0]
    with pytest.raises(ValueError, match="differ in shape"):
        joining.same_object(prediction, two[:5], pairs)


def fitted_model() -> joining.JoinModel:
    """Fitted on two copies of the cut object: the same object in one ground truth, two in the other."""
    prediction, image = cut_object(), cut_image()
    one = np.where(prediction.instance_map == 2, 2, (prediction.instance_map > 0).astype(int))
    other = prediction.instance_map.copy()
    recoloured = image.copy()
    recoloured[10:20, 22:32] = (30, 200, 30)  # the right piece has another colour: another object
    return joining.fit_join_model([prediction, prediction], [image, recoloured],
                                  [{"instance_map": one}, {"instance_map": other}])


def test_fitting_needs_both_kinds_of_pair():
    prediction, image = cut_object(), cut_image()
    one = np.where(prediction.instance_map == 2, 2, (prediction.instance_map > 0).astype(int))
    with pytest.raises(ValueError, match="both kinds"):
        joining.fit_join_model([prediction, prediction], [image, image], [{"instance_map": one}] * 2)


def test_join_model_fits_serialises_and_validates():
    model = fitted_model()
    _, same = joining.join_candidates(cut_object(), cut_image())
    recoloured = cut_image()
    recoloured[10:20, 22:32] = (30, 200, 30)
    _, different = joining.join_candidates(cut_object(), recoloured)
    assert model(same)[0] > model.threshold > model(different)[0]
    assert joining.JoinModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    with pytest.raises(ValueError, match="not a JoinModel"):
        joining.JoinModel.from_dict({"mean": [0.0]})
    stale = {**model.to_dict(), "features": [*joining.JOIN_FEATURES[:-1], "an old feature"]}
    with pytest.raises(ValueError, match="other features than this version's \\(feature 32: 'an old feature'"):
        joining.JoinModel.from_dict(stale)
    for features in (None, 3, [[1]]):  # an earlier version's (no names), or not names at all
        with pytest.raises(ValueError, match="other features than this version's \\(feature 0: "):
            joining.JoinModel.from_dict({**model.to_dict(), "features": features})
    with pytest.raises(ValueError, match="needs"):
        joining.JoinModel(model.mean[:3], model.scale[:3], model.weights[:3], 0.0)
    with pytest.raises(ValueError, match="threshold"):
        joining.JoinModel(model.mean, model.scale, model.weights, 0.0, threshold=1.5)
    with pytest.raises(ValueError, match="targets"):
        joining.JoinModel.fit(same, np.array([2.0]))
    joined = joining.join(cut_object(), cut_image(), model)
    assert len(joined.classes) == 2


def test_predictor_ships_and_applies_a_join_model(tmp_path, monkeypatch):
    predictor = make_predictor("unet")
    model = fitted_model()
    folder = export(predictor.model, predictor.config, tmp_path / "joined", extra={"join_model": model.to_dict()})
    loaded = Predictor.from_pretrained(folder, processes=1)
    assert loaded.join_model == model and loaded.replace(lam=20.0).join_model == model
    joined = loaded.finish(cut_object(), cut_image())  # the model joins the two pieces of the cut object
    assert len(joined.classes) == 2 and (joined.instance_map[10:20, 5:32] > 0).all()
    seen = []
    monkeypatch.setattr(predictor_lib, "join", lambda p, image, model: seen.append((image.shape, model)) or p)
    (image,) = images((37, 53), seed=5)
    prediction = loaded(image)  # predict_many hands each image to the joins
    assert seen == [((37, 53, 3), model)] and prediction.instance_map.shape == (37, 53)
    with pytest.raises(ValueError, match="2 images for 1 heads"):
        loaded.label(loaded.heads([image], progress=False, label_grid=True), progress=False, images=[image] * 2)
    with pytest.raises(ValueError, match="needs the images"):
        loaded.label(loaded.heads([image], progress=False, label_grid=True), progress=False)
    with pytest.raises(ValueError, match="needs the image"):
        loaded.finish(prediction)
    values = json.loads((folder / CONFIG_FILE).read_text())
    values["export"]["join_model"] = {"mean": [0.0]}
    (folder / CONFIG_FILE).write_text(json.dumps(values))
    with pytest.raises(ValueError, match="not a JoinModel"):
        Predictor.from_pretrained(folder)
