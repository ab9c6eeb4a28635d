"""Every number of the paper's evaluation for a list of predictions against their ground truth.

`evaluate(predictions, ground_truths)` -> a JSON-able dict with the OAIR curves (Sec. 4, Fig. 9/10), mask
mAP@[.5:.95] and weighted coverage (Sec. 5.4, Tab. 2/4), the % of predicted instances on occlusion cycles
(Tab. 1), and, when the predictions carry the heads ``b`` and ``e``, oriented occlusion boundary ODS/OIS/AP
and plain boundary AP (Tab. 3, 5). `markdown_table` and `plot_curves` present it. Pure numpy (no JAX).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from oosis_jax.evaluation import boundaries as boundary_eval
from oosis_jax.evaluation import coco_map as coco_eval
from oosis_jax.evaluation import metrics
from oosis_jax.evaluation import oair
from data import targets


def _boundary_results(predictions, ground_truths, max_dist, progress) -> dict:
    counts = []
    for pred, gt in tqdm(list(zip(predictions, ground_truths)), desc="boundaries", disable=not progress):
        gt_b, gt_e = targets.boundary_targets(gt["instance_map"], gt["edges"])
        counts.append(boundary_eval.image_counts(pred["b"], pred["e"], gt_b, gt_e, max_dist=max_dist))
    # One matching serves both curves: plain precision counts matched predictions, oriented precision
    # only the correctly oriented ones.
    return {"oriented": boundary_eval.summarize(counts, oriented=True),
            "plain": boundary_eval.summarize(counts, oriented=False)}


def evaluate(predictions: Sequence, ground_truths: Sequence, boundaries: bool = True,
             max_dist: float = boundary_eval.MAX_DIST, progress: bool = True) -> dict:
    """All metrics of a dataset split.

    ``predictions``: `oosis_jax.inference.instances.Prediction`s or dicts with instance_map, classes, scores, edges
    (and b, e for the boundary metrics); ``ground_truths``: dicts with instance_map, classes, edges (a dataset
    split). Returns dict(num_images, oair_iou, oair_confidence, mask (mAP, AP50, AP75), weighted_coverage,
    cycle_percent, boundaries (oriented / plain ODS, OIS, AP, curves) or None). Fractions are in [0, 1].
    """
    predictions = [oair.fields(p) for p in predictions]
    ground_truths = [oair.fields(g) for g in ground_truths]
    if len(predictions) != len(ground_truths) or not predictions:
        raise ValueError(f"need as many predictions as ground truths (> 0), got {len(predictions)} and "
                         f"{len(ground_truths)}")
    coverages = [metrics.weighted_coverage(g["instance_map"], p["instance_map"])
                 for p, g in zip(predictions, ground_truths) if np.any(np.asarray(g["instance_map"]) > 0)]
    on_cycles = sum(metrics.cycle_fraction(len(p["classes"]), p["edges"]) * len(p["classes"]) for p in predictions)
    num_predicted = sum(len(p["classes"]) for p in predictions)
    has_heads = all("b" in p and "e" in p for p in predictions)
    return {
        "num_images": len(predictions),
        "num_gt_instances": int(sum(len(g["classes"]) for g in ground_truths)),
        "num_pred_instances": int(num_predicted),
        "oair_iou": oair.oair_curve_iou(predictions, ground_truths),
        "oair_confidence": oair.oair_curve_confidence(predictions, ground_truths),
        "mask": coco_eval.mask_map(predictions, ground_truths),
        "weighted_coverage": float(np.mean(coverages)) if coverages else float("nan"),
        "cycle_percent": 100.0 * on_cycles / num_predicted if num_predicted else 0.0,
        "boundaries": (_boundary_results(predictions, ground_truths, max_dist, progress)
                       if boundaries and has_heads else None),
    }


def markdown_table(results: dict, name: str = "Joint-Labeling") -> str:
    """One-row markdown tables of the headline numbers (in %, as the paper reports them)."""
    at_05 = results["oair_iou"]
    lines = [
        "| Model | images | OAIR recall@0.5 | OAIR accuracy@0.5 | mAP .5:.95 | WC | % instances in cycles |",
        "|---|---|---|---|---|---|---|",
        f"| {name} | {results['num_images']} | {100 * at_05['recall'][0]:.1f} | {100 * at_05['accuracy'][0]:.1f} "
        f"| {100 * results['mask']['mAP']:.1f} | {100 * results['weighted_coverage']:.1f} "
        f"| {results['cycle_percent']:.2f} |",
        "",
        f"mask mAP: pycocotools with maxDets={coco_eval.MAX_DETECTIONS} per image (every instance counts).",
    ]
    if results["boundaries"] is not None:
        o, p = results["boundaries"]["oriented"], results["boundaries"]["plain"]
        lines += ["", "| Model | oriented ODS | oriented OIS | oriented AP | boundary AP |", "|---|---|---|---|---|",
                  f"| {name} | {100 * o['ODS']:.1f} | {100 * o['OIS']:.1f} | {100 * o['AP']:.1f} "
                  f"| {100 * p['AP']:.1f} |"]
    return "\n".join(lines) + "\n"


def plot_curves(results_by_name: dict[str, dict], out_dir) -> list[Path]:
    """OAIR curves over IoU and confidence (Fig. 9), and the boundary PR curves, as PNGs in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "oair_iou.png", out_dir / "oair_confidence.png"]
    oair.plot_oair_curves({n: r["oair_iou"] for n, r in results_by_name.items()}, paths[0],
                          "OAIR, IoU thresholds 0.5:0.05:0.95")
    oair.plot_oair_curves({n: r["oair_confidence"] for n, r in results_by_name.items()}, paths[1],
                          "OAIR, minimum confidence (6 thresholds)")
    with_boundaries = {n: r["boundaries"] for n, r in results_by_name.items() if r["boundaries"] is not None}
    if with_boundaries:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for name, bnd in with_boundaries.items():
            for kind, style in (("oriented", "-"), ("plain", "--")):
                ax.plot(bnd[kind]["recall"], bnd[kind]["precision"], style,
                        label=f"{name} {kind} (AP {100 * bnd[kind]['AP']:.1f})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Occlusion boundaries (POR / PR)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=7)
        fig.tight_layout()
        paths.append(out_dir / "boundary_pr.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
