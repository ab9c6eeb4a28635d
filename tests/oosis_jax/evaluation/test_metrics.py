"""Per-image metrics (weighted coverage, OAIR counts, cycles), OAIR curves and random decycling."""

import numpy as np
import pytest

from oosis_jax.evaluation import decycle
from oosis_jax.evaluation import metrics
from oosis_jax.evaluation import oair


def stripes(widths, height=10):
    """int32 (height, sum(widths)) map whose k-th vertical stripe has id ids[k] (0 = background)."""
    return np.concatenate([np.full((height, w), i, np.int32) for i, w in widths], axis=1)


def figure6():
    """The toy example of the paper's Fig. 6 (Sec. 4): 5 ground-truth and 6 predicted instances.

    GT 1..5 are stripes; GT edges (1,2), (2,3), (2,4), (3,4), (4,5). Predictions A=1, B=2, D=4, E=5 match GT
    1, 2, 3, 4; C=3 lies on background and F=6 covers too little of GT 5 to match, so (4,5) is missed.
    Predicted edges A->B, B->C->D, B->E, E->D: (1,2), (2,4) correct by length-1 paths, (2,3) by B->C->D,
    (3,4) wrongly ordered. Recall 4/5, accuracy 3/4.
    """
    gt_map = stripes([(1, 10), (2, 10), (3, 10), (4, 10), (5, 10), (0, 10)])
    gt = dict(instance_map=gt_map, classes=np.ones(5, np.int32),
              edges=np.array([(1, 2), (2, 3), (2, 4), (3, 4), (4, 5)]))
    pred_map = stripes([(1, 10), (2, 10), (4, 10), (5, 10), (6, 3), (0, 7), (3, 5), (0, 5)])
    pred = dict(instance_map=pred_map, classes=np.ones(6, np.int32), scores=np.linspace(1.0, 0.5, 6),
                edges=np.array([(1, 2), (2, 3), (3, 4), (2, 5), (5, 4)]))
    return gt, pred


def counts(gt, pred, **kw):
    return metrics.oair_counts(gt["instance_map"], gt["classes"], gt["edges"], pred["instance_map"],
                               pred["classes"], pred["scores"], pred["edges"], **kw)


def test_figure6_recall_and_accuracy():
    gt, pred = figure6()
    assert counts(gt, pred) == (5, 4, 3)
    totals = oair.oair_totals([pred], [gt])
    assert totals["recall"] == pytest.approx(4 / 5) and totals["accuracy"] == pytest.approx(3 / 4)


def test_oair_min_score_and_class_filter_matches():
    gt, pred = figure6()
    # A (score 1.0) below min_score: GT 1 is unmatched, so (1,2) is no longer recovered.
    pred["scores"] = np.array([0.1, 1, 1, 1, 1, 1.0])
    assert counts(gt, pred, min_score=0.5) == (5, 3, 2)
    # B of another class cannot match GT 2: (1,2), (2,3), (2,4) are lost.
    pred["classes"] = np.array([1, 2, 1, 1, 1, 1])
    assert counts(gt, pred) == (5, 1, 0)


def test_instances_below_min_score_leave_the_predicted_graph():
    """Sec. 4: predictions below the minimum confidence are not considered, so no path runs through them."""
    gt, pred = figure6()
    pred["edges"] = pred["edges"][:4]  # without E -> D, the only path from B to D runs through C
    pred["scores"] = np.array([1.0, 1.0, 0.1, 1.0, 1.0, 1.0])
    assert counts(gt, pred) == (5, 4, 3)
    assert counts(gt, pred, min_score=0.5) == (5, 4, 2)  # (2, 3) no longer has a path
    pred["scores"][2] = -0.3  # the ad-hoc score of Sec. 5.4 can be negative
    assert counts(gt, pred) == (5, 4, 2) and counts(gt, pred, min_score=-np.inf) == (5, 4, 3)
    totals = oair.oair_totals([pred], [gt])  # dataset totals consider every prediction by default
    assert (totals["recovered"], totals["correct"]) == (4, 3)
    with pytest.raises(ValueError, match="min_score must be finite or -inf"):
        counts(gt, pred, min_score=np.nan)


def test_greedy_matching_prefers_higher_score():
    gt_map = stripes([(1, 10), (0, 10)])
    pred_map = stripes([(1, 6), (2, 4), (0, 10)])  # both overlap GT 1; only pred 1 has IoU >= 0.5
    iou = metrics.iou_matrix(gt_map, pred_map, 1, 2)
    match = metrics.match_by_iou(iou, np.array([1]), np.array([1, 1]), np.array([0.2, 0.9]))
    assert match.tolist() == [1]
    match = metrics.match_by_iou(iou, np.array([1]), np.array([1, 1]), np.array([0.2, 0.9]), iou_threshold=0.3)
    assert match.tolist() == [2]  # pred 2 (IoU 0.4) is visited first now that it passes the threshold


def test_matching_at_its_thresholds_and_ties_follows_its_docstring():
    """IoU exactly at the threshold and a score exactly at min_score count; equal scores visit the lower
    predicted id first, equal IoUs take the lower ground-truth id."""
    one = np.array([1])
    assert metrics.match_by_iou(np.array([[0.5]]), one, one, np.array([0.3])).tolist() == [1]
    assert metrics.match_by_iou(np.array([[0.5]]), one, one, np.array([0.3]), iou_threshold=0.51).tolist() == [0]
    assert metrics.match_by_iou(np.array([[0.9]]), one, one, np.array([0.3]), min_score=0.3).tolist() == [1]
    assert metrics.match_by_iou(np.array([[0.9]]), one, one, np.array([0.3]), min_score=0.31).tolist() == [0]
    # one ground truth, two predictions of equal score: the lower predicted id is visited first and takes it
    both = np.array([1, 1])
    assert metrics.match_by_iou(np.array([[0.6, 0.9]]), one, both, np.array([0.5, 0.5])).tolist() == [1]
    # two ground truths of equal IoU with one prediction: the lower ground-truth id is taken
    assert metrics.match_by_iou(np.array([[0.7], [0.7]]), both, one, np.array([0.5])).tolist() == [1, 0]
    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match=r"iou_threshold must lie in \(0, 1\]"):
            metrics.check_thresholds(bad, 0.0)
    metrics.check_thresholds(1.0, -np.inf)


def test_confidence_thresholds_span_the_lowest_to_the_top_score():
    thresholds = oair.confidence_thresholds([np.array([0.9, 0.2]), np.array([0.5])], num=4)
    np.testing.assert_allclose(thresholds, [0.2, 0.2 + 0.7 / 3, 0.2 + 1.4 / 3, 0.9])
    assert oair.confidence_thresholds([np.zeros(0)]).tolist() == [0.0]


def test_oair_cycle_is_never_correct():
    gt_map = stripes([(1, 10), (2, 10)])
    gt_edges = np.array([(1, 2)])
    both = np.array([(1, 2), (2, 1)])
    assert metrics.oair_counts(gt_map, [1, 1], gt_edges, gt_map, [1, 1], [1.0, 1.0], both) == (1, 1, 0)
    assert metrics.oair_counts(gt_map, [1, 1], gt_edges, gt_map, [1, 1], [1.0, 1.0], gt_edges) == (1, 1, 1)


def test_has_path():
    edges = np.array([(1, 2), (2, 3), (4, 5), (5, 4)])
    sources, targets = [1, 3, 1, 4, 2, 1], [3, 1, 1, 4, 2, 4]
    assert metrics.has_path(5, edges, sources, targets).tolist() == [True, False, False, True, False, False]


def test_weighted_coverage():
    gt = stripes([(1, 10), (2, 30)])
    assert metrics.weighted_coverage(gt, gt) == 1.0
    assert metrics.weighted_coverage(gt, np.where(gt > 0, 3 - gt, 0)) == 1.0  # ids permuted
    # GT 1 half covered (IoU 0.5), GT 2 exact: (10 * 0.5 + 30 * 1) / 40.
    pred = stripes([(1, 5), (0, 5), (2, 30)])
    assert metrics.weighted_coverage(gt, pred) == pytest.approx(35 / 40)
    assert metrics.weighted_coverage(gt, np.zeros_like(gt)) == 0.0


def test_cycle_fraction_and_decycling():
    edges = np.array([(1, 2), (2, 3), (3, 1), (3, 4), (5, 4), (4, 5)])
    assert metrics.cycle_fraction(6, edges) == pytest.approx(5 / 6)
    assert metrics.cycle_fraction(0, np.zeros((0, 2), int)) == 0.0
    kept = decycle.random_decycle(6, edges, seed=3)
    assert metrics.cycle_fraction(6, kept) == 0.0
    assert {tuple(e) for e in kept} <= {tuple(e) for e in edges}
    assert len(kept) == len(edges) - 2  # one edge of each of the two disjoint cycles
    np.testing.assert_array_equal(kept, decycle.random_decycle(6, edges, seed=3))
    acyclic = np.array([(1, 2), (2, 3), (1, 3)])
    np.testing.assert_array_equal(decycle.random_decycle(3, acyclic), acyclic)
    with pytest.raises(ValueError, match="num_instances must be an int"):
        decycle.random_decycle(2.5, edges[:1])
    for count in (None, np.nan, "3", True, 2.5, -1):  # before: TypeError from int() or NaN's own message
        with pytest.raises(ValueError, match="num_instances must be a non-negative integer, got"):
            metrics.cycle_fraction(count, np.zeros((0, 2), int))
    assert metrics.cycle_fraction(np.int64(6), edges) == metrics.cycle_fraction(6.0, edges) == pytest.approx(5 / 6)


def _random_graph(rng, n, m):
    a, b = rng.integers(1, n + 1, m), rng.integers(1, n + 1, m)
    return np.stack([a[a != b], b[a != b]], axis=1)


def test_decycling_removes_only_edges_on_cycles_and_keeps_the_order_of_the_rest():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 9))
        edges = _random_graph(rng, n, int(rng.integers(0, 20)))
        kept = decycle.random_decycle(n, edges, seed=trial)
        assert metrics.cycle_fraction(n, kept) == 0.0
        reach = np.eye(n + 1, dtype=bool)  # transitive closure of the original graph
        reach[edges[:, 0], edges[:, 1]] = True
        for k in range(n + 1):
            reach |= reach[:, [k]] & reach[[k], :]
        left = [tuple(e) for e in kept.tolist()]
        for e in edges.tolist():  # `kept` is a subsequence of `edges`; a removed a -> b needs b -> ... -> a
            if left and tuple(e) == left[0]:
                left.pop(0)
            else:
                assert reach[e[1], e[0]], (trial, e)
        assert not left


def test_decycling_a_dense_graph_leaves_it_acyclic():
    edges = _random_graph(np.random.default_rng(1), 200, 6000)  # about 4800 removals
    assert metrics.cycle_fraction(200, decycle.random_decycle(200, edges, seed=0)) == 0.0


def test_curves_and_plot(tmp_path):
    gt, pred = figure6()
    perfect = dict(gt, scores=np.ones(5))
    curve = oair.oair_curve_iou([perfect, pred], [gt, gt])
    assert curve["iou_threshold"][0] == 0.5 and curve["iou_threshold"][-1] == 0.95 and len(curve["recall"]) == 10
    assert curve["recall"][0] == pytest.approx(9 / 10) and curve["accuracy"][0] == pytest.approx(8 / 9)
    conf = oair.oair_curve_confidence([pred], [gt])
    assert len(conf["min_score"]) == 6 and conf["recall"][0] == pytest.approx(4 / 5)
    assert np.all(np.diff(conf["recall"]) <= 0)  # raising the minimum score never adds matches
    path = tmp_path / "oair.png"
    oair.plot_oair_curves({"iou": curve, "confidence": conf}, path)
    assert path.stat().st_size > 1000


@pytest.mark.parametrize("change, message", [
    (dict(pred_map=np.zeros((10, 59), np.int32)), "differ in shape"),
    (dict(pred_edges=np.array([(1, 7)])), "edges name instances"),
    (dict(pred_scores=np.array([1, np.nan, 1, 1, 1, 1])), "finite"),
    (dict(gt_classes=np.ones(4, np.int32)), "instance ids must lie"),
    (dict(pred_map=np.zeros((10, 60))), "integer"),
])
def test_bad_inputs_raise(change, message):
    gt, pred = figure6()
    args = dict(gt_map=gt["instance_map"], gt_classes=gt["classes"], gt_edges=gt["edges"],
                pred_map=pred["instance_map"], pred_classes=pred["classes"], pred_scores=pred["scores"],
                pred_edges=pred["edges"])
    args.update(change)
    with pytest.raises(ValueError, match=message):
        metrics.oair_counts(**args)


def test_weighted_coverage_bad_inputs():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.weighted_coverage(np.ones((2, 3), int), np.ones((3, 2), int))
    with pytest.raises(ValueError, match="no instance pixels"):
        metrics.weighted_coverage(np.zeros((2, 3), int), np.ones((2, 3), int))
    with pytest.raises(ValueError, match="self-loop"):
        metrics.cycle_fraction(2, np.array([(1, 1)]))
