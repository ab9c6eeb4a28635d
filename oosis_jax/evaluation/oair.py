"""OAIR curves over a dataset (Sec. 4, Fig. 9 and 10) and their matplotlib plots.

An image pair is two mappings (or dataclasses) with ``instance_map``, ``classes``, ``edges`` and, for the
prediction, ``scores`` (array conventions of ``docs/contracts.md``). Each pair is reduced to an `OairImage` (its
classes, edges, scores and IoU matrix) once; `totals` sums their counts (`oosis_jax.evaluation.metrics.oair_counts`)
over the dataset; recall = recovered / pairs, accuracy = correct / recovered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from oosis_jax.evaluation.metrics import counts_by_iou, iou_matrix, present_ids, validate_pair

IOU_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))  # Fig. 9 left: 0.5:0.05:0.95
NUM_CONFIDENCE_THRESHOLDS = 6  # Fig. 9 right


def fields(item) -> Mapping:
    """A prediction or ground truth as a mapping: dicts pass through, dataclasses are converted; an item that is
    itself an error (e.g. the `oosis_jax.inference.instances.ImageFailure` of an image that could not be
    predicted) is raised as a ``ValueError`` with its own message."""
    if isinstance(item, Mapping):
        return item
    if isinstance(item, Exception):  # its reason, not "expected a mapping, got ImageFailure"
        raise ValueError(f"{type(item).__name__}: {item}")
    if dataclasses.is_dataclass(item):
        return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    raise ValueError(f"expected a mapping or dataclass with instance_map/classes/edges, got {type(item)}")


@dataclasses.dataclass(frozen=True)
class OairImage:
    """What OAIR needs of one image pair, without its maps: the validated classes, edges and scores
    (`oosis_jax.evaluation.metrics.validate_pair`), which predicted ids have a pixel (bool (N_pred,): an id
    without one is no object, also for the confidence thresholds) and the IoU matrix float (N_gt, N_pred); a few
    KB where the maps take MB, so a whole split's curves are computed from these in bounded memory. `counts` equals
    `oosis_jax.evaluation.metrics.oair_counts` of the pair."""

    gt_classes: np.ndarray
    gt_edges: np.ndarray
    pred_classes: np.ndarray
    pred_scores: np.ndarray
    pred_edges: np.ndarray
    pred_present: np.ndarray
    iou: np.ndarray

    @classmethod
    def of(cls, prediction, ground_truth) -> "OairImage":
        """From a prediction and its ground truth (mappings or dataclasses as `fields` reads them)."""
        p, g = fields(prediction), fields(ground_truth)
        gt, pred = validate_pair(g["instance_map"], g["classes"], g["edges"], p["instance_map"], p["classes"],
                                 p["scores"], p["edges"])
        return cls(gt[1], gt[2], pred[1], pred[3], pred[2], present_ids(pred[0], len(pred[1])),
                   iou_matrix(gt[0], pred[0], len(gt[1]), len(pred[1])))

    def counts(self, iou_threshold: float = 0.5, min_score: float = -np.inf) -> np.ndarray:
        """int64 (3,): ``(pairs, recovered, correct)`` of Sec. 4 for this image (`metrics.counts_by_iou`; by
        default every prediction is considered, whatever its score)."""
        return np.array(counts_by_iou(self.iou, self.gt_classes, self.gt_edges, self.pred_classes, self.pred_scores,
                                      self.pred_edges, iou_threshold, min_score), np.int64)


def oair_images(predictions: Sequence, ground_truths: Sequence) -> list[OairImage]:
    """`OairImage.of` each pair; ``ValueError`` when the lists differ in length, or naming the image (1-based, as
    `oosis_jax.evaluation.evaluate`) of a malformed pair."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truths)} ground truths")
    return [image_of(i, OairImage.of, p, g) for i, (p, g) in enumerate(zip(predictions, ground_truths), 1)]


def image_of(position: int, make, prediction, ground_truth):
    """``make(prediction, ground_truth)``, its ``ValueError`` prefixed with ``image POSITION:``."""
    try:
        return make(prediction, ground_truth)
    except ValueError as err:
        raise ValueError(f"image {position}: {err}") from err


def totals(images: Sequence[OairImage], iou_threshold: float = 0.5, min_score: float = -np.inf) -> dict:
    """Sum of the per-image OAIR counts: dict(pairs, recovered, correct, recall, accuracy).

    recall = recovered / pairs and accuracy = correct / recovered (NaN when a denominator is 0).
    """
    summed = sum((image.counts(iou_threshold, min_score) for image in images), np.zeros(3, np.int64))
    pairs, recovered, correct = (int(t) for t in summed)
    return {"pairs": pairs, "recovered": recovered, "correct": correct,
            "recall": recovered / pairs if pairs else float("nan"),
            "accuracy": correct / recovered if recovered else float("nan")}


def oair_totals(predictions: Sequence, ground_truths: Sequence, iou_threshold: float = 0.5,
                min_score: float = -np.inf) -> dict:
    """`totals` of prediction / ground-truth lists."""
    return totals(oair_images(predictions, ground_truths), iou_threshold, min_score)


def _curve(points: list[dict], key: str, thresholds) -> dict:
    return {key: [float(t) for t in thresholds],
            **{name: [p[name] for p in points] for name in ("recall", "accuracy", "pairs", "recovered", "correct")}}


def curve_iou(images: Sequence[OairImage], thresholds=IOU_THRESHOLDS) -> dict:
    """OAIR curve over IoU thresholds (Fig. 9 left): dict of lists keyed iou_threshold, recall, accuracy, ..."""
    return _curve([totals(images, iou_threshold=t) for t in thresholds], "iou_threshold", thresholds)


def oair_curve_iou(predictions: Sequence, ground_truths: Sequence, thresholds=IOU_THRESHOLDS) -> dict:
    """`curve_iou` of prediction / ground-truth lists."""
    return curve_iou(oair_images(predictions, ground_truths), thresholds)


def confidence_thresholds(scores: Sequence[np.ndarray], num: int = NUM_CONFIDENCE_THRESHOLDS) -> np.ndarray:
    """``num`` minimum-score thresholds evenly spaced from the lowest to the highest of the images' predicted
    ``scores`` (one float array per image).

    The lowest keeps every prediction (the method's maximum recall); the highest keeps only the
    top-scoring ones (recall near 0), so the curve covers 0 to the maximum recall as in Fig. 9 (right).
    """
    scores = np.concatenate([np.asarray(s, np.float64).ravel() for s in scores] or [np.zeros(0)])
    if scores.size == 0:
        return np.zeros(1)
    return np.linspace(scores.min(), scores.max(), num)


def curve_confidence(images: Sequence[OairImage], iou_threshold: float = 0.5,
                     num: int = NUM_CONFIDENCE_THRESHOLDS) -> dict:
    """OAIR curve over minimum confidence scores (Fig. 9 right), at a fixed IoU threshold."""
    thresholds = confidence_thresholds([image.pred_scores[image.pred_present] for image in images], num)
    return _curve([totals(images, iou_threshold, t) for t in thresholds], "min_score", thresholds)


def oair_curve_confidence(predictions: Sequence, ground_truths: Sequence, iou_threshold: float = 0.5,
                          num: int = NUM_CONFIDENCE_THRESHOLDS) -> dict:
    """`curve_confidence` of prediction / ground-truth lists."""
    return curve_confidence(oair_images(predictions, ground_truths), iou_threshold, num)


def plot_oair_curves(curves: Mapping[str, dict], path, title: str = "OAIR", first: str | None = None) -> None:
    """Accuracy vs recall, one line per method (name -> curve from `oair_curve_iou` / `_confidence`), to PNG; a
    method with no point to draw is named in the legend with the reason, "(no GT pairs)" (recall NaN throughout)
    or "(no pair recovered)" (accuracy NaN throughout). Each curve's first threshold is a larger dot, which the
    legend names when ``first`` says what it is (e.g. "IoU 0.5")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    for name, curve in curves.items():
        recall = np.asarray(curve["recall"], float)
        accuracy = np.asarray(curve["accuracy"], float)
        ok = np.isfinite(recall) & np.isfinite(accuracy)
        if not ok.any():
            name += " (no GT pairs)" if not np.isfinite(recall).any() else " (no pair recovered)"
        (line,) = ax.plot(recall[ok], accuracy[ok], marker="o", markersize=3, label=name)
        if ok[:1].any():
            ax.plot(recall[:1], accuracy[:1], marker="o", markersize=7, color=line.get_color())
    if first:  # a legend entry of its own: a note drawn on the axes hid behind the legend
        ax.plot([], [], "o", color="0.4", markersize=7, label=f"large dot: {first}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)  # points at accuracy 1 clear of the frame
    ax.set_xlabel("recall (recovered / GT pairs)")
    ax.set_ylabel("accuracy (correct / recovered)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
