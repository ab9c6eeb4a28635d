"""Why ground-truth instances and occlusion pairs are lost: a diagnosis next to the metrics (beyond the paper).

OAIR recall (Sec. 4) counts a ground-truth pair only when both of its instances are matched, and accuracy
only when the predicted graph orders them. These functions say what happened to the rest, per image and
summed over a dataset (`failure_summary`), so that a lever can be aimed at the largest loss.

Instance outcomes (`instance_outcomes`), for ground-truth instance g with ``A`` = its pixels and, over the
predicted instances, ``q`` = the one holding most of ``A``:

- ``matched``: matched by `oosis_jax.evaluation.metrics.match_instances` (IoU >= threshold, same class);
- ``wrong class``: a predicted instance of another class has IoU >= threshold with g;
- ``unmatched``: a predicted instance of g's class has IoU >= threshold, yet the greedy matching did not
  give it to g (its score is below ``min_score``, or another instance took it at IoU exactly 0.5);
- ``missed``: under half of ``A`` lies in predicted instances (the rest is background);
- ``fragmented``: no predicted instance holds half of ``A``;
- ``merged``: ``q`` holds half of ``A`` or more, but under half of ``q`` is g (g was joined to its neighbours);
- ``poor shape``: ``q`` is mostly g and holds half of it or more, yet their IoU is under the threshold.

Pair outcomes (`pair_outcomes`) of each distinct ground-truth edge (a occludes b): ``not recovered`` (a or
b unmatched), ``correct`` (a path from match(a) to match(b) and none back), ``reversed`` (a path back), or
``no path`` (the two matched instances are not connected by predicted edges in either direction).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from oosis_jax.evaluation.metrics import intersections, ious_of, match_by_iou, pair_paths, validate_instances
from oosis_jax.evaluation.oair import fields

INSTANCE_OUTCOMES = ("matched", "merged", "fragmented", "poor shape", "wrong class", "unmatched", "missed")
PAIR_OUTCOMES = ("correct", "reversed", "no path", "not recovered")


def instance_outcomes(gt_map, gt_classes, pred_map, pred_classes, pred_scores, iou_threshold: float = 0.5,
                      min_score: float = 0.0) -> list[str]:
    """The outcome (one of `INSTANCE_OUTCOMES`) of each ground-truth instance 1..M, in order.

    Arrays and ``min_score`` as `oosis_jax.evaluation.metrics.oair_counts`; ``ValueError`` for mismatched or
    invalid input."""
    gt_map, gt_classes, _, _ = validate_instances(gt_map, gt_classes, np.zeros((0, 2), np.int64),
                                                  name="ground truth")
    pred_map, pred_classes, _, pred_scores = validate_instances(pred_map, pred_classes, np.zeros((0, 2), np.int64),
                                                                pred_scores, name="prediction")
    if gt_map.shape != pred_map.shape:
        raise ValueError(f"gt_map {gt_map.shape} and pred_map {pred_map.shape} differ in shape")
    m, n = len(gt_classes), len(pred_classes)
    overlap = intersections(gt_map, pred_map, m, n)  # (m + 1, n + 1), row / column 0 = background
    ious = ious_of(overlap)  # (m, n)
    match = match_by_iou(ious, gt_classes, pred_classes, pred_scores, iou_threshold, min_score)
    gt_area, pred_area = overlap.sum(1), overlap.sum(0)
    outcomes = []
    for g in range(1, m + 1):
        held = overlap[g, 1:] / max(gt_area[g], 1)  # share of g in each predicted instance
        overlapping = ious[g - 1] >= iou_threshold
        if match[g - 1] > 0:
            outcome = "matched"
        elif (overlapping & (pred_classes != gt_classes[g - 1])).any():
            outcome = "wrong class"
        elif overlapping.any():
            outcome = "unmatched"
        elif held.sum() < 0.5:
            outcome = "missed"
        elif held.max() < 0.5:
            outcome = "fragmented"
        elif overlap[g, 1 + held.argmax()] < 0.5 * pred_area[1 + held.argmax()]:
            outcome = "merged"
        else:
            outcome = "poor shape"
        outcomes.append(outcome)
    return outcomes


def pair_outcomes(gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores, pred_edges,
                  iou_threshold: float = 0.5) -> list[str]:
    """The outcome (one of `PAIR_OUTCOMES`) of each distinct ground-truth edge, in ``np.unique`` row order.

    Arrays as `oosis_jax.evaluation.metrics.oair_counts` (whose ``recovered`` / ``correct`` counts these
    outcomes refine; both come from `oosis_jax.evaluation.metrics.pair_paths`)."""
    recovered, forward, backward = pair_paths(gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores,
                                              pred_edges, iou_threshold)
    found = np.where(backward, "reversed", np.where(forward, "correct", "no path"))
    return np.where(recovered, found, "not recovered").tolist()


def failure_summary(predictions: Sequence, ground_truths: Sequence, iou_threshold: float = 0.5) -> dict:
    """Outcomes over a dataset: ``dict(instances={outcome: share}, pairs={outcome: share}, num_instances,
    num_pairs)``, shares in [0, 1] (NaN without instances / pairs); predictions and ground truths as in
    `oosis_jax.evaluation.oair.oair_totals` (``edges`` are read, ``scores`` from the prediction)."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truths)} ground truths")
    instances, pairs = Counter(), Counter()
    for pred, gt in zip(predictions, ground_truths):
        pred, gt = fields(pred), fields(gt)
        instances.update(instance_outcomes(gt["instance_map"], gt["classes"], pred["instance_map"],
                                           pred["classes"], pred["scores"], iou_threshold))
        pairs.update(pair_outcomes(gt["instance_map"], gt["classes"], gt["edges"], pred["instance_map"],
                                   pred["classes"], pred["scores"], pred["edges"], iou_threshold))
    num_instances, num_pairs = sum(instances.values()), sum(pairs.values())
    return {"instances": {k: instances[k] / num_instances if num_instances else float("nan")
                          for k in INSTANCE_OUTCOMES},
            "pairs": {k: pairs[k] / num_pairs if num_pairs else float("nan") for k in PAIR_OUTCOMES},
            "num_instances": num_instances, "num_pairs": num_pairs}
