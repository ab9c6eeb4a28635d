"""Why ground-truth instances and occlusion pairs are lost: a diagnosis next to the metrics (beyond the paper).

OAIR recall (Sec. 4) counts a ground-truth pair only when both of its instances are matched, and accuracy
only when the predicted graph orders them. These functions say what happened to the rest, per image and
summed over a dataset (`failure_summary`), so that a lever can be aimed at the largest loss.

Instance outcomes (`instance_outcomes`), for ground-truth instance g with ``A`` = its pixels and, over the
predicted instances, ``q`` = the one holding most of ``A``:

- ``matched``: matched by `oosis_jax.evaluation.metrics.match_by_iou` (IoU >= threshold, same class);
- ``wrong class``: a predicted instance of another class has IoU >= threshold with g;
- ``unmatched``: a predicted instance of g's class has IoU >= threshold, yet the greedy matching did not
  give it to g (its score is below ``min_score``, or another instance took it at IoU exactly 0.5);
- ``missed``: under half of ``A`` lies in predicted instances (the rest is background);
- ``fragmented``: no predicted instance holds half of ``A``;
- ``merged``: ``q`` holds half of ``A`` or more, but under half of ``q`` is g (g was joined to its neighbours);
- ``poor shape``: ``q`` is mostly g and holds half of it or more, yet their IoU is under the threshold;
- ``no pixels``: g has no pixel (an id a resize lost): no object, so left out of `failure_summary`'s shares,
  and its edges out of the pair outcomes, as `oosis_jax.evaluation.evaluate` leaves them out of every metric.

Pair outcomes (`pair_outcomes`) of each distinct ground-truth edge (a occludes b): ``not recovered`` (a or
b unmatched), ``correct`` (a path from match(a) to match(b) and none back), ``reversed`` (a path back), or
``no path`` (the two matched instances are not connected by predicted edges in either direction).

Edge outcomes (`edge_outcomes`), the other way round: of each distinct predicted edge (p occludes q) whose
two instances are both matched, to ground-truth instances g and h: ``true`` (the ground truth has g occludes
h), ``reversed`` (it has h occludes g) or ``no true pair`` (it orders neither over the other). Their shares
say how far the predicted graph can be trusted edge by edge, which OAIR, counting paths from the ground
truth's pairs, does not: an extra edge never lowers it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from oosis_jax.evaluation.metrics import (check_thresholds, edges_among, intersections, ious_of, match_by_iou,
                                         matched_pair_paths, validate_instances)
from oosis_jax.evaluation.oair import fields, image_of

INSTANCE_OUTCOMES = ("matched", "merged", "fragmented", "poor shape", "wrong class", "unmatched", "missed")
PAIR_OUTCOMES = ("correct", "reversed", "no path", "not recovered")
EDGE_OUTCOMES = ("true", "reversed", "no true pair")


def instance_outcomes(gt_map, gt_classes, pred_map, pred_classes, pred_scores, iou_threshold: float = 0.5,
                      min_score: float = -np.inf) -> list[str]:
    """The outcome (one of `INSTANCE_OUTCOMES`, or ``"no pixels"``) of each ground-truth instance 1..M, in order.

    Arrays and ``min_score`` (default: every prediction) as `oosis_jax.evaluation.metrics.oair_counts`;
    ``ValueError`` for mismatched or invalid input."""
    image = _Image(gt_map, gt_classes, np.zeros((0, 2), np.int64), pred_map, pred_classes, pred_scores,
                   np.zeros((0, 2), np.int64), iou_threshold, min_score)
    return image.instance_outcomes()


class _Image:
    """One validated image pair with its overlap table and matching, computed once for every outcome."""

    def __init__(self, gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores, pred_edges,
                 iou_threshold: float = 0.5, min_score: float = -np.inf):
        check_thresholds(iou_threshold, min_score)
        self.gt_map, self.gt_classes, self.gt_edges, _ = validate_instances(gt_map, gt_classes, gt_edges,
                                                                            name="ground truth")
        self.pred_map, self.pred_classes, self.pred_edges, self.pred_scores = validate_instances(
            pred_map, pred_classes, pred_edges, pred_scores, name="prediction")
        if self.gt_map.shape != self.pred_map.shape:
            raise ValueError(f"gt_map {self.gt_map.shape} and pred_map {self.pred_map.shape} differ in shape")
        self.iou_threshold, self.min_score = iou_threshold, min_score
        m, n = len(self.gt_classes), len(self.pred_classes)
        self.overlap = intersections(self.gt_map, self.pred_map, m, n)  # (m + 1, n + 1), row / column 0 = bg
        self.ious = ious_of(self.overlap)  # (m, n)
        self.gt_edges = edges_among(self.gt_edges, self.overlap[1:].sum(axis=1) > 0)  # ids with pixels
        self.pred_edges = edges_among(self.pred_edges, (self.pred_scores >= min_score)
                                      & (self.overlap[:, 1:].sum(axis=0) > 0))
        self.match = match_by_iou(self.ious, self.gt_classes, self.pred_classes, self.pred_scores, iou_threshold,
                                  min_score)

    def instance_outcomes(self) -> list[str]:
        overlap, ious, match, gt_classes = self.overlap, self.ious, self.match, self.gt_classes
        gt_area, pred_area = overlap.sum(1), overlap.sum(0)
        outcomes = []
        for g in range(1, len(gt_classes) + 1):
            held = overlap[g, 1:] / max(gt_area[g], 1)  # share of g in each predicted instance
            overlapping = ious[g - 1] >= self.iou_threshold
            if gt_area[g] == 0:
                outcome = "no pixels"
            elif match[g - 1] > 0:
                outcome = "matched"
            elif (overlapping & (self.pred_classes != gt_classes[g - 1])).any():
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

    def pair_outcomes(self) -> list[str]:
        recovered, forward, backward = matched_pair_paths(self.gt_edges, self.match, len(self.pred_classes),
                                                          self.pred_edges)
        found = np.where(backward, "reversed", np.where(forward, "correct", "no path"))
        return np.where(recovered, found, "not recovered").tolist()

    def edge_outcomes(self) -> list[str]:
        truth = np.zeros(len(self.pred_classes) + 1, np.int64)  # predicted id -> matched gt id (0: none)
        truth[self.match[self.match > 0]] = np.flatnonzero(self.match > 0) + 1
        edges = np.unique(self.pred_edges, axis=0)
        g, h = truth[edges[:, 0]], truth[edges[:, 1]]
        both = (g > 0) & (h > 0)
        gt_pairs = {(int(a), int(b)) for a, b in self.gt_edges}
        return ["true" if (a, b) in gt_pairs else "reversed" if (b, a) in gt_pairs else "no true pair"
                for a, b in zip(g[both].tolist(), h[both].tolist())]


def pair_outcomes(gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores, pred_edges,
                  iou_threshold: float = 0.5, min_score: float = -np.inf) -> list[str]:
    """The outcome (one of `PAIR_OUTCOMES`) of each distinct ground-truth edge between two instances that have
    pixels, in ``np.unique`` row order.

    Arrays and ``min_score`` (default: every prediction) as `oosis_jax.evaluation.metrics.oair_counts` (whose
    ``recovered`` / ``correct`` counts these outcomes refine; both come from
    `oosis_jax.evaluation.metrics.matched_pair_paths`)."""
    return _Image(gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores, pred_edges,
                  iou_threshold, min_score).pair_outcomes()


def edge_outcomes(gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores, pred_edges,
                  iou_threshold: float = 0.5, min_score: float = -np.inf) -> list[str]:
    """The outcome (one of `EDGE_OUTCOMES`) of each distinct predicted edge between two matched instances, in
    ``np.unique`` row order of ``pred_edges`` (the others are left out). Arrays as `pair_outcomes`."""
    return _Image(gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores, pred_edges,
                  iou_threshold, min_score).edge_outcomes()


def failure_summary(predictions: Sequence, ground_truths: Sequence, iou_threshold: float = 0.5,
                    min_score: float = -np.inf) -> dict:
    """Outcomes over a dataset: ``dict(instances={outcome: share}, pairs={outcome: share},
    edges={outcome: share}, num_instances, num_pairs, num_edges)``, shares in [0, 1] (NaN where there is
    nothing to share); predictions and ground truths as in `oosis_jax.evaluation.oair.oair_totals` (``edges``
    are read, ``scores`` from the prediction; ``min_score`` as `oair_totals`). Each image is matched once for
    all three."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truths)} ground truths")
    counts = {"instances": Counter(), "pairs": Counter(), "edges": Counter()}

    def matched(pred, gt):
        pred, gt = fields(pred), fields(gt)
        return _Image(gt["instance_map"], gt["classes"], gt["edges"], pred["instance_map"], pred["classes"],
                      pred["scores"], pred["edges"], iou_threshold, min_score)

    for position, (pred, gt) in enumerate(zip(predictions, ground_truths), 1):
        image = image_of(position, matched, pred, gt)
        counts["instances"].update(image.instance_outcomes())
        counts["pairs"].update(image.pair_outcomes())
        counts["edges"].update(image.edge_outcomes())
    summary = {}
    for kind, outcomes in (("instances", INSTANCE_OUTCOMES), ("pairs", PAIR_OUTCOMES), ("edges", EDGE_OUTCOMES)):
        total = sum(counts[kind][k] for k in outcomes)
        summary[kind] = {k: counts[kind][k] / total if total else float("nan") for k in outcomes}
        summary[f"num_{kind}"] = total
    return summary
