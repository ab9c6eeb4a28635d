"""Metric edge cases (issue 13) that used to give a silently wrong number or an error from inside numpy."""

import re

import numpy as np
import pytest

from data import targets
from oosis_jax import evaluation
from oosis_jax.evaluation import boundaries as boundary_eval
from oosis_jax.evaluation import coco_map as coco_eval
from oosis_jax.evaluation import metrics


def _rectangles():
    inst = np.zeros((48, 48), np.int32)
    inst[10:30, 12:36] = 1
    inst[20:40, 26:44] = 2
    return targets.boundary_targets(inst, np.array([[2, 1]]))


@pytest.mark.parametrize("confidence, ap", [(1.0, 0.0), (0.9, 0.505), (0.5, 0.505), (0.2, 0.505)])
def test_perfect_binary_boundaries_score_ods_one_and_the_protocols_ap(confidence, ap):
    """Every threshold of a binary map gives (1, 1), or (0, 0) above its confidence: ODS and OIS are 1; AP
    is P2ORM's, 0 for a one-point curve and the straight line from (0, 0) to (1, 1) otherwise."""
    gt_b, gt_e = _rectangles()
    counts = boundary_eval.image_counts(confidence * gt_b.astype(float), gt_e, gt_b, gt_e, max_dist=0.03)
    for oriented in (True, False):
        result = boundary_eval.summarize([counts], oriented=oriented)
        assert (result["ODS"], result["OIS"]) == (1.0, 1.0) and result["AP"] == pytest.approx(ap)


def test_no_prediction_at_all_scores_zero():
    gt_b, gt_e = _rectangles()
    counts = boundary_eval.image_counts(np.zeros(gt_b.shape), gt_e, gt_b, gt_e, max_dist=0.03)
    assert boundary_eval.summarize([counts])["AP"] == 0.0


def _many_instances(count):
    side = int(np.ceil(np.sqrt(count)))
    inst = np.zeros((4 * side, 4 * side), np.int32)
    for k in range(count):
        y, x = divmod(k, side)
        inst[4 * y:4 * y + 3, 4 * x:4 * x + 3] = k + 1
    return dict(instance_map=inst, classes=np.ones(count, np.int32), edges=np.zeros((0, 2), int),
                scores=np.linspace(1.0, 0.5, count))


def test_perfect_mask_prediction_with_150_instances_scores_one():
    scene = _many_instances(150)
    result = coco_eval.mask_map([scene], [scene])
    assert result == {"mAP": pytest.approx(1.0), "AP50": pytest.approx(1.0), "AP75": pytest.approx(1.0)}


def test_more_ground_truth_than_the_limit_is_an_error_not_an_underscore(monkeypatch):
    monkeypatch.setattr(coco_eval, "MAX_DETECTIONS", 20)
    scene = _many_instances(21)
    with pytest.raises(ValueError, match="^image 2: 21 ground-truth instances, more than MAX_DETECTIONS"):
        coco_eval.mask_map([_many_instances(3), scene], [_many_instances(3), scene])
    failures = []  # the evaluator names the image in the stream, leaves it out and goes on
    small = _many_instances(3)
    results = evaluation.evaluate([small, scene, small], [small, dict(scene, classes=scene["classes"])] + [small],
                                  progress=False, boundaries=False, failures=failures)
    assert [position for position, _ in failures] == [2] and results["num_images"] == 2
    assert failures[0][1].startswith("image 2: 21 ground-truth instances")  # named once
    assert results["mask"]["mAP"] == pytest.approx(1.0)


def test_more_detections_than_the_limit_keep_the_best_scored_with_a_warning(monkeypatch):
    """As pycocotools itself would (its stable sort by score), but said: 20 true instances found, and one more
    detection scored below them, with the limit at 20."""
    monkeypatch.setattr(coco_eval, "MAX_DETECTIONS", 20)
    truth = _many_instances(21)
    truth = dict(truth, instance_map=np.where(truth["instance_map"] == 21, 0, truth["instance_map"]),
                 classes=truth["classes"][:20], scores=truth["scores"][:20])
    extra = dict(_many_instances(21), scores=np.linspace(1.0, 0.5, 21))  # the 21st detection scores lowest
    with pytest.warns(RuntimeWarning, match="^image 1: 21 detections, more than MAX_DETECTIONS=20 .* best scored"):
        result = coco_eval.mask_map([extra], [truth])
    assert result["mAP"] == pytest.approx(1.0)  # the spurious one is left out
    first = dict(extra, scores=np.r_[0.1, np.linspace(1.0, 0.5, 20)])  # now a true one scores lowest: left out
    with pytest.warns(RuntimeWarning):
        assert coco_eval.mask_map([first], [truth])["mAP"] < 1.0


def test_the_table_states_the_detection_limit():
    scene = _many_instances(4)
    table = evaluation.markdown_table(evaluation.evaluate([scene], [scene], progress=False))
    assert f"maxDets={coco_eval.MAX_DETECTIONS}" in table
    # no order edge predicted: OAIR accuracy is undefined, and the table says so rather than "nan"
    bare = evaluation.evaluate([dict(scene, edges=np.zeros((0, 2), int))], [scene], progress=False)
    assert np.isnan(bare["oair_iou"]["accuracy"][0])
    row = evaluation.markdown_table(bare).splitlines()[2].split(" | ")
    assert row[3] == "n/a" and "nan" not in evaluation.markdown_table(bare)


def test_weighted_coverage_with_huge_ids_is_cheap_and_exact():
    gt = np.zeros((20, 20), np.int64)
    gt[:10] = 2**31 - 1
    gt[10:, :5] = 7
    pred = np.zeros((20, 20), np.int64)
    pred[:10] = 10_000
    pred[10:, :5] = 9_999
    assert metrics.weighted_coverage(gt, pred) == 1.0
    pred[10:, :5] = 0
    assert metrics.weighted_coverage(gt, pred) == pytest.approx(200 / 250)


def test_summarize_rejects_empty_and_ragged_input():
    with pytest.raises(ValueError, match="no per-image counts"):
        boundary_eval.summarize([])
    with pytest.raises(ValueError, match="image 2 has 5 thresholds, image 1 has 3"):
        boundary_eval.summarize([np.zeros((3, 5)), np.zeros((5, 5))])


def test_duplicate_ground_truth_edges_count_once():
    inst = np.zeros((10, 10), np.int32)
    inst[:5] = 1
    inst[5:] = 2
    classes, scores = np.array([1, 1]), np.array([1.0, 0.5])
    once = metrics.oair_counts(inst, classes, [[1, 2]], inst, classes, scores, [[1, 2]])
    twice = metrics.oair_counts(inst, classes, [[1, 2], [1, 2]], inst, classes, scores, [[1, 2]])
    assert once == twice == (1, 1, 1)


def test_timedelta_arrays_are_not_instance_maps():
    """numpy counts timedelta64 as an integer type; a map, classes or edges of it are refused by name."""
    scene = _many_instances(2)
    for key in ("instance_map", "classes", "edges"):
        bad = dict(scene, **{key: np.asarray(scene[key] if key != "edges" else [[1, 2]]).astype("m8[s]")})
        with pytest.raises(ValueError, match=key):
            evaluation.evaluate([scene], [bad], progress=False, boundaries=False)


def test_boundary_scores_without_any_true_boundary_are_nan_not_zero():
    """No ground-truth boundary pixel in the whole set: recall has no denominator, so ODS, OIS and AP are
    undefined (NaN), not the 0 of a method that found none; one image with a boundary defines them again."""
    gt_b, gt_e = _rectangles()
    empty = np.zeros(gt_b.shape, bool)
    for b in (np.zeros(gt_b.shape), 0.7 * gt_b.astype(float)):  # nothing predicted, or a spurious boundary
        counts = boundary_eval.image_counts(b, gt_e, empty, np.zeros_like(gt_e), max_dist=0.03)
        for oriented in (True, False):
            result = boundary_eval.summarize([counts, counts], oriented=oriented)
            assert all(np.isnan(result[k]) for k in ("ODS", "OIS", "AP")), result
            assert len(result["recall"]) == len(boundary_eval.THRESHOLDS)
    found = boundary_eval.image_counts(gt_b.astype(float), gt_e, gt_b, gt_e, max_dist=0.03)
    assert boundary_eval.summarize([counts, found])["ODS"] > 0.5


def _pair():
    gt_map = np.zeros((8, 8), np.int32)
    gt_map[:4], gt_map[4:] = 1, 2
    gt = {"instance_map": gt_map, "classes": np.array([1, 1]), "edges": np.array([[1, 2]])}
    return dict(gt, scores=np.array([0.2, 0.4])), gt


def test_a_predicted_id_without_pixels_sets_no_confidence_threshold():
    """Its score (50) spread the thresholds up to 50, so that 5 of the 6 points of the curve had recall 0."""
    pred, gt = _pair()
    ghost = dict(pred, classes=np.array([1, 1, 1]), scores=np.array([0.2, 0.4, 50.0]))  # id 3 has no pixel
    thresholds = evaluation.evaluate([ghost], [gt], boundaries=False, progress=False)["oair_confidence"]["min_score"]
    np.testing.assert_allclose(thresholds, np.linspace(0.2, 0.4, 6))


def test_dataset_helpers_name_the_malformed_image():
    from oosis_jax.evaluation import failures, oair

    pred, gt = _pair()
    bad = dict(pred, scores=np.array([np.nan, 1.0]))
    for helper in (oair.oair_totals, oair.oair_curve_iou, oair.oair_curve_confidence, failures.failure_summary):
        with pytest.raises(ValueError, match=r"^image 3: prediction: scores must be finite"):
            helper([pred, pred, bad], [gt, gt, gt])


@pytest.mark.parametrize("field, value", [("edges", [[1, 2], [2]]), ("classes", [1, [1]]),
                                          ("instance_map", [[0, 1], [1]])])
def test_ragged_lists_are_named_by_item_and_field(field, value):
    pred, gt = _pair()
    failed = []
    evaluation.evaluate([pred, dict(pred, **{field: value})], [gt, gt], boundaries=False, progress=False,
                        failures=failed)
    assert len(failed) == 1 and failed[0][0] == 2
    assert re.match(rf"image 2: prediction( 2)?: {field} is not an array \(rows of different lengths\?\)", failed[0][1])


def test_a_failed_prediction_is_recorded_with_its_own_reason():
    from oosis_jax.inference.instances import ImageFailure

    pred, gt = _pair()
    failed = []
    evaluation.evaluate([ImageFailure(1, "the CRF ran out of memory"), pred], [gt, gt], boundaries=False,
                        progress=False, failures=failed)
    assert failed == [(1, "image 1: ImageFailure: image 1: the CRF ran out of memory")]
