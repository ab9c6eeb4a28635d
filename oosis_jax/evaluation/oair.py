"""OAIR curves over a dataset (Sec. 4, Fig. 9 and 10) and their matplotlib plots.

An image pair is two mappings (or dataclasses) with ``instance_map``, ``classes``, ``edges`` and, for the
prediction, ``scores`` (array conventions of ``docs/contracts.md``). `oair_totals` sums
`oosis_jax.evaluation.metrics.oair_counts` over the dataset; recall = recovered / pairs, accuracy = correct / recovered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from oosis_jax.evaluation.metrics import oair_counts

IOU_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))  # Fig. 9 left: 0.5:0.05:0.95
NUM_CONFIDENCE_THRESHOLDS = 6  # Fig. 9 right


def fields(item) -> Mapping:
    """A prediction or ground truth as a mapping: dicts pass through, dataclasses are converted."""
    if isinstance(item, Mapping):
        return item
    if dataclasses.is_dataclass(item):
        return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    raise ValueError(f"expected a mapping or dataclass with instance_map/classes/edges, got {type(item)}")


def _check_pairs(predictions: Sequence, ground_truths: Sequence):
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truths)} ground truths")
    return [(fields(p), fields(g)) for p, g in zip(predictions, ground_truths)]


def oair_totals(predictions: Sequence, ground_truths: Sequence, iou_threshold: float = 0.5,
                min_score: float = 0.0) -> dict:
    """Sum of the per-image OAIR counts: dict(pairs, recovered, correct, recall, accuracy).

    recall = recovered / pairs and accuracy = correct / recovered (NaN when a denominator is 0).
    """
    totals = np.zeros(3, np.int64)
    for pred, gt in _check_pairs(predictions, ground_truths):
        totals += oair_counts(gt["instance_map"], gt["classes"], gt["edges"], pred["instance_map"],
                              pred["classes"], pred["scores"], pred["edges"], iou_threshold, min_score)
    pairs, recovered, correct = (int(t) for t in totals)
    return {"pairs": pairs, "recovered": recovered, "correct": correct,
            "recall": recovered / pairs if pairs else float("nan"),
            "accuracy": correct / recovered if recovered else float("nan")}


def _curve(points: list[dict], key: str, thresholds) -> dict:
    return {key: [float(t) for t in thresholds],
            **{name: [p[name] for p in points] for name in ("recall", "accuracy", "pairs", "recovered", "correct")}}


def oair_curve_iou(predictions: Sequence, ground_truths: Sequence, thresholds=IOU_THRESHOLDS) -> dict:
    """OAIR curve over IoU thresholds (Fig. 9 left): dict of lists keyed iou_threshold, recall, accuracy, ..."""
    points = [oair_totals(predictions, ground_truths, iou_threshold=t) for t in thresholds]
    return _curve(points, "iou_threshold", thresholds)


def confidence_thresholds(predictions: Sequence, num: int = NUM_CONFIDENCE_THRESHOLDS) -> np.ndarray:
    """``num`` minimum-score thresholds evenly spaced from the lowest to the highest predicted score.

    The lowest keeps every prediction (the method's maximum recall); the highest keeps only the
    top-scoring ones (recall near 0), so the curve covers 0 to the maximum recall as in Fig. 9 (right).
    """
    scores = np.concatenate([np.asarray(fields(p)["scores"], np.float64).ravel() for p in predictions] or
                            [np.zeros(0)])
    if scores.size == 0:
        return np.zeros(1)
    return np.linspace(scores.min(), scores.max(), num)


def oair_curve_confidence(predictions: Sequence, ground_truths: Sequence, iou_threshold: float = 0.5,
                          num: int = NUM_CONFIDENCE_THRESHOLDS) -> dict:
    """OAIR curve over minimum confidence scores (Fig. 9 right), at a fixed IoU threshold."""
    thresholds = confidence_thresholds(predictions, num)
    points = [oair_totals(predictions, ground_truths, iou_threshold, t) for t in thresholds]
    return _curve(points, "min_score", thresholds)


def plot_oair_curves(curves: Mapping[str, dict], path, title: str = "OAIR") -> None:
    """Accuracy vs recall, one line per method (name -> curve from `oair_curve_iou` / `_confidence`), to PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    for name, curve in curves.items():
        recall = np.asarray(curve["recall"], float)
        accuracy = np.asarray(curve["accuracy"], float)
        ok = np.isfinite(recall) & np.isfinite(accuracy)
        ax.plot(recall[ok], accuracy[ok], marker="o", markersize=3, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall (recovered / GT pairs)")
    ax.set_ylabel("accuracy (correct / recovered)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
