"""Stage 2 assembly (classes, ad-hoc scores), ground-truth mode, evaluation summary and the JSON output."""

import json

import numpy as np
import pytest

from oosis_jax import evaluation
from oosis_jax.inference import instances as prediction
from oosis_jax.inference import files as prediction_io


def two_boxes():
    """Instance 2 (class 3) occludes instance 1 (class 1) on a 24x32 background."""
    inst = np.zeros((24, 32), np.int32)
    inst[4:18, 3:20] = 1
    inst[9:22, 14:29] = 2
    return dict(instance_map=inst, classes=np.array([1, 3], np.int32), edges=np.array([[2, 1]], np.int32))


def test_border_scores_and_majority_classes():
    inst = np.zeros((5, 6), np.int32)
    inst[1:4, 1:5] = 1  # 3x4 instance: 10 border pixels, 2 inside
    b = np.zeros((5, 6))
    b[inst == 1] = 0.5
    b[2, 2:4] = 0.9  # the two inside pixels
    np.testing.assert_array_equal(prediction.border_pixels(inst).sum(), 10)
    assert prediction.adhoc_scores(inst, b, 1)[0] == pytest.approx(10 * 0.5 - 2 * 0.9)
    s = np.zeros((5, 6, 4))
    s[..., 0] = 1.0  # background wins everywhere: the vote is among foreground classes only
    s[..., 2] = 0.5
    s[1, 1:5, 3] = 0.8  # 4 pixels vote 3, 8 vote 2
    assert prediction.majority_classes(inst, s, 1).tolist() == [2]


def test_ground_truth_mode_recovers_instances_and_order():
    gt = two_boxes()
    pred, = prediction.label_ground_truth([gt], num_classes=3, processes=1, progress=False)
    results = evaluation.evaluate([pred], [gt], progress=False, max_dist=0.05)
    assert results["weighted_coverage"] == 1.0 and results["mask"]["mAP"] == pytest.approx(1.0)
    assert results["oair_iou"]["recall"] == [1.0] * 10 and results["oair_iou"]["accuracy"] == [1.0] * 10
    assert results["cycle_percent"] == 0.0
    assert results["boundaries"]["oriented"]["ODS"] == 1.0 and results["boundaries"]["plain"]["OIS"] == 1.0
    assert sorted(pred.classes.tolist()) == [1, 3] and pred.edges.tolist() in ([[1, 2]], [[2, 1]])
    table = evaluation.markdown_table(results)
    assert "| Joint-Labeling | 1 | 100.0 | 100.0 | 100.0 | 100.0 | 0.00 |" in table


def test_json_round_trip_and_bad_files(tmp_path):
    gt = two_boxes()
    pred = prediction.assemble(np.where(gt["instance_map"] == 2, 2, (gt["instance_map"] > 0) * 1),
                               np.eye(4)[np.zeros((24, 32), int)], np.zeros((24, 32)), np.full((24, 32, 4), 0.25))
    path = tmp_path / "p.json"
    path.write_text(json.dumps(prediction_io.prediction_json(pred, ["a", "b", "c"])))
    back = prediction_io.read_prediction_json(path)
    for key in ("instance_map", "classes", "scores", "edges"):
        np.testing.assert_array_equal(back[key], getattr(pred, key))
    with pytest.raises(FileNotFoundError):
        prediction_io.read_prediction_json(tmp_path / "missing.json")
    path.write_text("{not json")
    with pytest.raises(ValueError, match="malformed"):
        prediction_io.read_prediction_json(path)
    paths = prediction_io.write_prediction(pred, np.zeros((24, 32, 3), np.uint8), tmp_path / "out", "img")
    assert [p.name for p in paths] == ["img.json", "img_depth.png", "img_boundaries.png", "img_overlay.png"]
    from PIL import Image

    depth = np.asarray(Image.open(paths[1]))
    assert depth.shape == (24, 32, 3) and np.all(depth[0, 0] == 0) and np.any(depth[5, 5] != depth[15, 25])
    content = prediction_io.prediction_json(pred)
    content["edges"] = [[1, 9]]
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="edges name instances"):
        prediction_io.read_prediction_json(path)
    # other malformed content is named with the file, not raised from numpy or pycocotools
    for key, value, problem in (("height", 12, r"instance 1 segmentation: RLE size \[24, 32\] differs"),
                                ("height", -4, "image size -4x32 is not 1 to"), ("height", 10**8, "is not 1 to"),
                                ("height", 24.5, "height: expected an integer, got 24.5"),
                                ("height", "24", "height: expected an integer, got '24'"),
                                ("edges", [1, 2, 3], "edges must be a list of"),
                                ("edges", [[1.9, 2]], r"edge \[1.9, 2\]: expected an integer")):
        path.write_text(json.dumps({**prediction_io.prediction_json(pred), key: value}))
        with pytest.raises(ValueError, match=f"malformed prediction file {path}.*{problem}"):
            prediction_io.read_prediction_json(path)
    # an instance's fields: never rounded, and an RLE must cover the image (pycocotools would fill the rest of the
    # mask from uninitialised memory: a different mask at every read)
    for key, value, problem in (("class", 1.7, "instance 1 class: expected an integer, got 1.7"),
                                ("score", "0.5", "instance 1 score: expected a finite number"),
                                ("score", None, "instance 1 score: expected a finite number"),
                                ("score", 10**400, "instance 1 score: expected a finite number"),
                                ("class", 10**400, "instance 1 class: .* is outside the 64-bit integers"),
                                ("class", 2**32 + 1, "instance 1 has class 4294967297, beyond the int32 class ids"),
                                ("segmentation", {"size": [24, 32], "counts": "3"}, "RLE runs cover 3 pixels, the "
                                                                                    "image has 768"),
                                ("segmentation", {"size": [-4, 5], "counts": "3"}, r"RLE size \[-4, 5\] differs")):
        content = prediction_io.prediction_json(pred)
        content["instances"][0][key] = value
        path.write_text(json.dumps(content))
        with pytest.raises(ValueError, match=f"malformed prediction file {path}.*{problem}"):
            prediction_io.read_prediction_json(path)


def test_evaluate_rejects_mismatched_inputs():
    gt = two_boxes()
    with pytest.raises(ValueError, match="as many predictions"):
        evaluation.evaluate([], [gt])
    bad = dict(gt, scores=np.ones(2), instance_map=gt["instance_map"][:, :-1])
    with pytest.raises(ValueError, match="differ in shape"):
        evaluation.evaluate([bad], [gt], boundaries=False)


def test_example_and_image_helpers(tmp_path):
    from PIL import Image

    from data import examples as eval_data

    example = dict(two_boxes(), image=np.zeros((24, 32, 3), np.uint8))
    small = eval_data.at_resolution(example, (12, 16))
    assert small["image"].shape == (12, 16, 3) and small["instance_map"].shape == (12, 16)
    assert set(np.unique(small["instance_map"])) == {0, 1, 2}
    assert eval_data.at_resolution(example, None) is example
    with pytest.raises(FileNotFoundError):
        prediction_io.image_files(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no images"):
        prediction_io.image_files(tmp_path)
    Image.fromarray(np.full((5, 7, 3), 9, np.uint8)).save(tmp_path / "a.png")
    path, = prediction_io.image_files(tmp_path)
    image = prediction_io.read_image(path)
    assert path.stem == "a" and image.shape == (5, 7, 3) and image.dtype == np.uint8
