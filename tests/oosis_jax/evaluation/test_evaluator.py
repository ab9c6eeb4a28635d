"""evaluation.Evaluator / evaluate: image by image in bounded memory, the same numbers as the per-image metrics."""

import json

import numpy as np
import pytest

from data import targets
from data.synthetic import make_scene
from oosis_jax import evaluation
from oosis_jax.evaluation import metrics, oair, tables


def _pairs(count, seed=0, shape=(40, 56)):
    """Synthetic ground truths and predictions made from them: two instances merged, one dropped, the map
    shifted, some classes wrong, random edges and scores, the true boundaries with noise."""
    rng = np.random.default_rng(seed)
    predictions, truths = [], []
    for k in range(count):
        gt = make_scene(700 + k, *shape)
        inst = gt["instance_map"].copy()
        n = int(inst.max())
        if n >= 3:
            inst[inst == 2], inst[inst == n] = 1, 0
        inst = np.roll(inst, int(rng.integers(-2, 3)), axis=1)
        ids = np.unique(inst[inst > 0])
        remap = np.zeros(n + 1, np.int32)
        remap[ids] = np.arange(1, len(ids) + 1)
        classes = np.asarray(gt["classes"])[ids - 1].copy()
        classes[rng.random(len(ids)) < 0.2] = 1
        edges = rng.integers(1, len(ids) + 1, size=(2 * len(ids), 2))
        b, e = targets.boundary_targets(gt["instance_map"], gt["edges"])
        predictions.append(dict(instance_map=remap[inst], classes=classes, scores=rng.random(len(ids)),
                                edges=edges[edges[:, 0] != edges[:, 1]],
                                b=np.clip(b + rng.normal(0, 0.2, b.shape), 0, 1), e=e))
        truths.append(gt)
    return predictions, truths


def _same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN equals NaN here


def test_oair_image_counts_equal_oair_counts():
    predictions, truths = _pairs(6, seed=1)
    for pred, gt in zip(predictions, truths):
        image = oair.OairImage.of(pred, gt)
        for t in (0.3, 0.5, 0.8):
            for min_score in (0.0, 0.4):
                expected = metrics.oair_counts(gt["instance_map"], gt["classes"], gt["edges"], pred["instance_map"],
                                               pred["classes"], pred["scores"], pred["edges"], t, min_score)
                assert tuple(image.counts(t, min_score)) == expected


def test_streamed_generators_give_the_lists_numbers_and_keep_no_maps():
    predictions, truths = _pairs(8)
    listed = evaluation.evaluate(predictions, truths, progress=False)
    streamed = evaluation.evaluate((p for p in predictions), iter(truths), progress=False)
    assert _same(streamed, listed)
    assert 0 < listed["mask"]["mAP"] < 1 and 0 < listed["oair_iou"]["recall"][0] < 1
    evaluator = evaluation.Evaluator()
    for pred, gt in zip(predictions, truths):
        evaluator.add(pred, gt)
    assert _same(evaluator.result(), listed) and len(evaluator) == 8
    held = [value for image in evaluator._oair for value in vars(image).values()]
    largest = max(np.asarray(value).size for value in held)
    assert largest < predictions[0]["instance_map"].size / 10  # IoU matrices and ids, not image-sized arrays


def test_boundary_counts_on_worker_processes_give_the_same_numbers():
    predictions, truths = _pairs(5, seed=2)
    serial, parallel = evaluation.Evaluator(), evaluation.Evaluator(processes=2)
    for pred, gt in zip(predictions, truths):
        serial.add(pred, gt)
        parallel.add(pred, gt)
    with pytest.raises(ValueError, match="image 6: boundaries: b must lie in"):
        parallel.add(dict(predictions[0], b=predictions[0]["b"] + 2.0), truths[0])  # checked before submitting
    with pytest.raises(ValueError, match="image 7: boundaries: b is"):  # every add counts, failed ones too
        parallel.add(dict(predictions[0], b=predictions[0]["b"][1:], e=predictions[0]["e"][1:]), truths[0])
    with pytest.raises(ValueError, match=r"image 8: boundaries: b is \(\d+, \d+\), the ground truth"):  # not e's
        parallel.add(dict(predictions[0], b=predictions[0]["b"][1:]), truths[0])          # shape against b's
    assert _same(parallel.result(), serial.result()) and parallel.result()["boundaries"] is not None
    with pytest.raises(ValueError, match="processes"):
        evaluation.Evaluator(processes=0)
    with pytest.raises(ValueError, match="boundaries must be True or False, got 'no'"):  # a string was true
        evaluation.Evaluator(boundaries="no")


def test_bad_streams_name_the_problem():
    predictions, truths = _pairs(3)
    with pytest.raises(ValueError, match="the ground truths ended after 2"):
        evaluation.evaluate(iter(predictions), iter(truths[:2]), progress=False)
    with pytest.raises(ValueError, match="got 3 and 2"):
        evaluation.evaluate(predictions, truths[:2], progress=False)
    with pytest.raises(ValueError, match="got none"):
        evaluation.evaluate(iter([]), iter([]), progress=False)
    with pytest.raises(ValueError, match="no image to evaluate"):
        evaluation.Evaluator().result()
    broken = dict(predictions[1], scores=np.full(len(predictions[1]["classes"]), np.nan))
    with pytest.raises(ValueError, match="prediction 2: scores must be finite"):
        evaluation.evaluate([predictions[0], broken], truths[:2], progress=False)
    shifted = dict(predictions[2], instance_map=predictions[2]["instance_map"][1:])
    with pytest.raises(ValueError, match="image 3: predicted map"):
        evaluation.evaluate(predictions[:2] + [shifted], truths, progress=False)


def test_a_failed_add_leaves_the_evaluator_unchanged():
    predictions, truths = _pairs(2)
    evaluator = evaluation.Evaluator()
    evaluator.add(predictions[0], truths[0])
    before = json.dumps(evaluator.result(), sort_keys=True)
    with pytest.raises(ValueError, match="image 2: boundaries: .*NaN"):
        evaluator.add(dict(predictions[1], b=np.full_like(predictions[1]["b"], np.nan)), truths[1])
    assert len(evaluator) == 1 and json.dumps(evaluator.result(), sort_keys=True) == before


def _counts_failing_on_small_maps(b, e, instance_map, edges, max_dist):
    """`results._boundary_counts` on a worker, failing on maps under 40 rows (a crash on demand)."""
    from oosis_jax.evaluation import results

    if instance_map.shape[0] < 40:
        raise MemoryError("worker out of memory")
    return results._boundary_counts(b, e, instance_map, edges, max_dist)


def test_a_failed_worker_names_its_image_and_no_result_is_given(monkeypatch):
    from oosis_jax.evaluation import results

    predictions, truths = _pairs(2)
    small_p, small_t = _pairs(1, shape=(30, 56))
    monkeypatch.setattr(results, "_boundary_counts", _counts_failing_on_small_maps)
    evaluator = evaluation.Evaluator(processes=2)
    recorded = 0
    for pred, gt in zip(predictions + small_p + predictions * 2, truths + small_t + truths * 2):
        try:
            evaluator.add(pred, gt)  # image 3's failure comes back while later images are added
            recorded += 1
        except ValueError as err:
            assert "image 3: boundary evaluation failed: MemoryError: worker out of memory" in str(err)
            assert isinstance(err, evaluation.WorkerFailure)  # the evaluator cannot go on (a malformed pair's can)
            break
    assert recorded == len(evaluator) == 6  # images 1-6 recorded; adding image 7 waited for image 3 and raised
    with pytest.raises(ValueError, match="image 3: boundary evaluation failed"):
        evaluator.result()
    with pytest.raises(ValueError, match="image 3: boundary evaluation failed"):
        evaluator.add(predictions[0], truths[0])


def test_evaluate_can_leave_out_bad_pairs_and_names_them():
    predictions, truths = _pairs(3, seed=4)
    bad = [predictions[0], "not a prediction", {k: v for k, v in predictions[2].items() if k != "scores"}]
    with pytest.raises(ValueError, match="image 2: expected a mapping or dataclass"):
        evaluation.evaluate(bad, truths, progress=False)
    failures = []
    kept = evaluation.evaluate(bad, truths, progress=False, failures=failures)
    assert kept["num_images"] == 1 and [i for i, _ in failures] == [2, 3]
    assert "image 3: the prediction lacks ['scores']" in failures[1][1]
    assert _same(kept, evaluation.evaluate(predictions[:1], truths[:1], progress=False))
    with pytest.raises(ValueError, match="the ground truth lacks \\['edges'\\]"):
        evaluation.evaluate(predictions[:1], [{k: v for k, v in truths[0].items() if k != "edges"}], progress=False)
    with pytest.raises(ValueError, match="the ground truths ended after 2"):  # counted with the bad pair
        evaluation.evaluate(iter(bad[1:] + [predictions[0]]), iter(truths[:2]), progress=False, failures=[])
    with pytest.raises(ValueError, match="all 2 pairs failed, e.g. image 1: expected a mapping"):
        evaluation.evaluate(bad[1:], truths[:2], progress=False, failures=[])
    with pytest.raises(ValueError, match="max_dist must be a finite number > 0"):
        evaluation.Evaluator(max_dist=-1)


def test_boundary_metrics_left_out_for_want_of_heads_are_announced():
    predictions, truths = _pairs(2, seed=5)
    no_heads = {k: v for k, v in predictions[1].items() if k not in ("b", "e")}
    with pytest.warns(UserWarning, match="1 of 2 predictions have the b and e heads"):
        result = evaluation.evaluate([predictions[0], no_heads], truths, progress=False)
    assert result["boundaries"] is None


def test_ground_truth_ids_without_pixels_are_no_objects_in_any_metric():
    """A resize can lose a small instance (`data.examples.at_resolution` keeps its id): its edges count in
    no metric, on one process or several, and an image without any instance leaves mAP undefined (NaN)."""
    predictions, truths = _pairs(3, seed=4)
    gt = truths[0]
    lost = dict(gt, classes=np.append(gt["classes"], 1), edges=np.vstack([gt["edges"], [[1, len(gt["classes"]) + 1]]]))
    expected = evaluation.evaluate(predictions, truths, progress=False)
    for processes in (1, 2):
        evaluator = evaluation.Evaluator(processes=processes)
        for pred, truth in zip(predictions, [lost] + truths[1:]):
            evaluator.add(pred, truth)
        assert _same(evaluator.result(), expected)
    empty = dict(gt, instance_map=np.zeros_like(gt["instance_map"]), edges=np.zeros((0, 2), int))
    results = evaluation.evaluate(predictions[:1], [empty], progress=False)
    assert np.isnan(results["mask"]["mAP"]) and np.isnan(results["weighted_coverage"])
    assert results["num_gt_instances"] == 0 and results["boundaries"] is not None


def test_ids_without_pixels_count_alike_in_every_oair_function():
    """Ground truth 1 occludes 2 and, through id 3 (no pixels), nothing else; the prediction orders 1 -> 2 only
    through its own pixel-less id 3. Every OAIR entry point sees one pair, recovered, and not correct."""
    gt_map = np.zeros((8, 8), np.int64)
    gt_map[:, :4], gt_map[:, 4:] = 1, 2
    truth = dict(instance_map=gt_map, classes=np.array([1, 1, 1]), edges=np.array([[1, 2], [1, 3]]))
    pred = dict(instance_map=gt_map.copy(), classes=np.array([1, 1, 1]), scores=np.ones(3),
                edges=np.array([[1, 3], [3, 2]]))
    counts = metrics.oair_counts(gt_map, truth["classes"], truth["edges"], gt_map, pred["classes"], pred["scores"],
                                 pred["edges"], min_score=-np.inf)
    assert counts == (1, 1, 0)
    assert oair.OairImage.of(pred, truth).counts().tolist() == [1, 1, 0]
    results = evaluation.evaluate([pred], [truth], boundaries=False, progress=False)
    assert (results["num_gt_instances"], results["num_pred_instances"]) == (2, 2)
    curve = results["oair_iou"]
    at = curve["iou_threshold"].index(0.5)
    assert (curve["pairs"][at], curve["recovered"][at], curve["correct"][at]) == (1, 1, 0)


def test_scores_that_are_not_numbers_cost_only_their_image():
    predictions, truths = _pairs(2, seed=5)
    failures = []
    results = evaluation.evaluate([predictions[0], dict(predictions[1], scores={"a": 1})], truths, boundaries=False,
                                  progress=False, failures=failures)
    assert results["num_images"] == 1 and len(failures) == 1
    assert failures[0][0] == 2 and "scores must be numbers, got dict" in failures[0][1]


def test_a_held_out_row_without_heads_has_nan_boundary_columns():
    predictions, truths = _pairs(2, seed=5)
    results = evaluation.evaluate(predictions, truths, boundaries=False, progress=False)
    row = tables.held_out_row(results)
    assert np.isnan(row[4]) and np.isnan(row[5]) and row[0] == pytest.approx(100 * results["weighted_coverage"])


def test_a_rare_cycle_never_reads_like_a_cycle_free_method():
    """One 2-cycle among 2500 predicted instances is 0.08 %; among 50000 it is 0.004 %, which one or two
    decimals print as 0: Tab. 1's cell says "<0.01" then, as the paper does."""
    assert [tables.cycle_cell(v) for v in (0.0, 0.004, 0.0049, 0.005, 0.08, 12.345)] == \
        ["0.00", "<0.01", "<0.01", "0.01", "0.08", "12.35"]
    predictions, truths = _pairs(2, seed=5)
    results = dict(evaluation.evaluate(predictions, truths, boundaries=False, progress=False), cycle_percent=0.004)
    assert tables.summary_row("m", results)[-1] == "<0.01"
    assert "| <0.01 |" in tables.markdown(tables.SUMMARY_HEADERS, [tables.summary_row("m", results)])
    assert "| <0.01 |" in evaluation.markdown_table(results)


def test_nothing_predicted_has_no_share_of_instances_in_cycles():
    """No predicted instance at all: the share of them on cycles has no denominator (NaN, printed "n/a"), not
    the 0.00 of a method whose instances are all acyclic."""
    _, truths = _pairs(2, seed=5)
    empty = [dict(instance_map=np.zeros_like(t["instance_map"]), classes=np.zeros(0, np.int32),
                  scores=np.zeros(0), edges=np.zeros((0, 2), np.int64)) for t in truths]
    results = evaluation.evaluate(empty, truths, boundaries=False, progress=False)
    assert results["num_pred_instances"] == 0 and np.isnan(results["cycle_percent"])
    assert tables.summary_row("m", results)[-1] == "n/a"
