"""The failure diagnosis: one ground-truth instance per outcome, and the pair outcomes against oair_counts."""

import numpy as np
import pytest

from oosis_jax.evaluation import failures
from oosis_jax.evaluation.metrics import oair_counts


def _one_instance_per_outcome():
    gt, pred = np.zeros((10, 20), np.int64), np.zeros((10, 20), np.int64)
    gt[0:4, 0:4], pred[0:4, 0:4] = 1, 1  # matched
    gt[0:4, 5:9], pred[0:4, 5:9] = 2, 2  # the same mask, another class
    gt[0:4, 10:14] = 3  # missed
    gt[5:9, 0:8], pred[5:9, 0:3], pred[5:9, 3:6] = 4, 3, 4  # fragmented: 3/8 + 3/8 of it, 1/4 background
    gt[5:9, 9:12], gt[5:9, 12:18], pred[5:9, 9:18] = 5, 6, 5  # 5 merged into 6 (6 matched: IoU 24/36)
    gt[0:4, 15:20] = 7  # poor shape: its prediction is mostly it, holds 11 of its 20 px, IoU 11/30
    pred[0:2, 15:20], pred[2, 15], pred[4, 10:20] = 6, 6, 6
    gt_classes, pred_classes = np.ones(7, np.int64), np.array([1, 2, 1, 1, 1, 1])
    return gt, gt_classes, pred, pred_classes


def test_each_ground_truth_instance_gets_its_outcome():
    gt, gt_classes, pred, pred_classes = _one_instance_per_outcome()
    outcomes = failures.instance_outcomes(gt, gt_classes, pred, pred_classes, np.ones(6))
    assert outcomes == ["matched", "wrong class", "missed", "fragmented", "merged", "matched", "poor shape"]
    with pytest.raises(ValueError, match="differ in shape"):
        failures.instance_outcomes(gt, gt_classes, pred[:, :5], pred_classes, np.ones(6))
    # The exact mask of the right class, but scored below min_score: not matched, and said so.
    scores = np.array([-1.0, 1, 1, 1, 1, 1])
    assert failures.instance_outcomes(gt, gt_classes, pred, pred_classes, scores, min_score=0.0)[0] == "unmatched"
    assert failures.instance_outcomes(gt, gt_classes, pred, pred_classes, scores)[0] == "matched"  # every one


def test_an_instance_cut_into_many_small_pieces_is_fragmented():
    gt, pred = np.zeros((2, 10), np.int64), np.zeros((2, 10), np.int64)
    gt[:, :] = 1
    pred[:, 0:8] = np.arange(1, 9)[None]  # eight pieces of 2 px, 10 % each; 80 % in predicted instances
    assert failures.instance_outcomes(gt, np.ones(1, np.int64), pred, np.ones(8, np.int64), np.ones(8)) == [
        "fragmented"]


@pytest.mark.parametrize("pred_edges, expected", [
    ([(1, 2)], ["correct", "no path", "no path", "not recovered"]),
    ([(1, 2), (2, 3)], ["correct", "correct", "correct", "not recovered"]),  # (1, 3) through 2
    ([(2, 1), (3, 2)], ["reversed", "reversed", "reversed", "not recovered"]),
])
def test_pair_outcomes_refine_the_oair_counts(pred_edges, expected):
    gt = np.zeros((4, 12), np.int64)
    gt[:, 0:3], gt[:, 3:6], gt[:, 6:9], gt[:, 9:12] = 1, 2, 3, 4
    pred = np.where(gt == 4, 0, gt)  # instance 4 missed
    gt_edges, classes = np.array([(1, 2), (2, 3), (1, 3), (3, 4)]), np.ones(4, np.int64)
    outcomes = failures.pair_outcomes(gt, classes, gt_edges, pred, classes[:3], np.ones(3), np.array(pred_edges))
    assert outcomes == expected
    pairs, recovered, correct = oair_counts(gt, classes, gt_edges, pred, classes[:3], np.ones(3), np.array(pred_edges))
    assert (pairs, recovered, correct) == (4, 4 - expected.count("not recovered"), expected.count("correct"))


def test_failure_summary_gives_shares_over_a_dataset():
    gt, gt_classes, pred, pred_classes = _one_instance_per_outcome()
    gt_item = {"instance_map": gt, "classes": gt_classes, "edges": np.array([(5, 6), (1, 6)])}
    pred_item = {"instance_map": pred, "classes": pred_classes, "scores": np.ones(6), "edges": np.array([(1, 5)])}
    summary = failures.failure_summary([pred_item, pred_item], [gt_item, gt_item])
    assert summary["num_instances"] == 14 and summary["num_pairs"] == 4
    assert summary["instances"]["matched"] == pytest.approx(2 / 7)
    assert summary["instances"]["merged"] == pytest.approx(1 / 7)
    assert sum(summary["instances"].values()) == pytest.approx(1.0)
    assert summary["pairs"] == {"correct": 0.5, "reversed": 0.0, "no path": 0.0, "not recovered": 0.5}
    # predicted 1 occludes 5: matched to ground-truth 1 and 6, which the ground truth orders the same way
    assert summary["num_edges"] == 2 and summary["edges"] == {"true": 1.0, "reversed": 0.0, "no true pair": 0.0}
    empty = failures.failure_summary([], [])
    assert empty["num_pairs"] == 0 and np.isnan(empty["pairs"]["correct"]) and np.isnan(empty["edges"]["true"])
    with pytest.raises(ValueError, match="1 predictions but 2 ground truths"):
        failures.failure_summary([pred_item], [gt_item, gt_item])


def test_edge_outcomes_judge_each_predicted_edge_between_matched_instances():
    gt = np.zeros((4, 12), np.int64)
    gt[:, 0:3], gt[:, 3:6], gt[:, 6:9], gt[:, 9:12] = 1, 2, 3, 4
    pred = np.where(gt == 4, 0, gt)  # instance 4 missed
    gt_edges, classes = np.array([(1, 2), (3, 2), (3, 4)]), np.ones(4, np.int64)
    pred_edges = np.array([(1, 2), (2, 3), (1, 3), (1, 2)])  # true, reversed, no such pair; a duplicate
    outcomes = failures.edge_outcomes(gt, classes, gt_edges, pred, classes[:3], np.ones(3), pred_edges)
    assert outcomes == ["true", "no true pair", "reversed"]  # np.unique order: (1, 2), (1, 3), (2, 3)
    unmatched = np.where(pred == 3, 0, pred)  # an edge to an unmatched instance is not judged
    assert failures.edge_outcomes(gt, classes, gt_edges, unmatched, classes[:3], np.ones(3), pred_edges) == ["true"]


def test_edge_outcomes_follow_the_matching_not_the_ids():
    gt = np.zeros((4, 9), np.int64)
    gt[:, 0:3], gt[:, 3:6], gt[:, 6:9] = 1, 2, 3
    pred = np.select([gt == 1, gt == 2, gt == 3], [3, 1, 2])  # predicted 3 is ground truth 1, 1 is 2, 2 is 3
    gt_edges, classes = np.array([(1, 2), (2, 3)]), np.ones(3, np.int64)
    pred_edges = np.array([(3, 1), (2, 1), (2, 3)])  # gt (1, 2): true; gt (3, 2): reversed; gt (3, 1): no pair
    outcomes = failures.edge_outcomes(gt, classes, gt_edges, pred, classes, np.ones(3), pred_edges)
    assert outcomes == ["reversed", "no true pair", "true"]  # np.unique order: (2, 1), (2, 3), (3, 1)
    assert failures.edge_outcomes(gt, classes, gt_edges, pred, classes, np.ones(3), np.zeros((0, 2), int)) == []
    low = np.array([1.0, 1.0, -1.0])  # predicted 3 below min_score: unmatched, its edges not judged
    assert failures.edge_outcomes(gt, classes, gt_edges, pred, classes, low, pred_edges, min_score=0.0) == [
        "reversed"]
    with pytest.raises(ValueError, match="iou_threshold"):
        failures.edge_outcomes(gt, classes, gt_edges, pred, classes, np.ones(3), pred_edges, iou_threshold=5)
    for name, value in (("iou_threshold", "0.5"), ("min_score", None), ("iou_threshold", True)):
        with pytest.raises(ValueError, match=f"{name} must be a real number, got"):  # not a TypeError from '<'
            failures.edge_outcomes(gt, classes, gt_edges, pred, classes, np.ones(3), pred_edges, **{name: value})


def test_ids_without_pixels_are_left_out_as_the_metrics_leave_them_out():
    from oosis_jax import evaluation

    gt = dict(instance_map=np.repeat([[1, 1, 2, 2]], 4, axis=0), classes=np.array([1, 1, 1]),
              edges=np.array([[1, 2], [2, 3]]))  # id 3 has no pixel (a resize lost it)
    pred = dict(gt, classes=gt["classes"][:2], edges=np.array([[1, 2]]), scores=np.ones(2))
    summary = failures.failure_summary([pred], [gt])
    assert (summary["num_instances"], summary["num_pairs"]) == (2, 1)
    assert summary["instances"]["matched"] == 1.0 and summary["pairs"]["correct"] == 1.0
    assert failures.instance_outcomes(gt["instance_map"], gt["classes"], pred["instance_map"], pred["classes"],
                                      pred["scores"])[2] == "no pixels"
    results = evaluation.evaluate([pred], [gt], boundaries=False, progress=False)
    assert (results["num_gt_instances"], results["oair_iou"]["pairs"][0]) == (2, 1)
