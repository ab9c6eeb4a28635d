"""Every number of the paper's evaluation for a list of predictions against their ground truth.

`evaluate(predictions, ground_truths)` -> a JSON-able dict with the OAIR curves (Sec. 4, Fig. 9/10), mask
mAP@[.5:.95] and weighted coverage (Sec. 5.4, Tab. 2/4), the % of predicted instances on occlusion cycles
(Tab. 1), and, when the predictions carry the heads ``b`` and ``e``, oriented occlusion boundary ODS/OIS/AP
and plain boundary AP (Tab. 3, 5). `markdown_table` and `plot_curves` present it. Pure numpy (no JAX).
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import multiprocessing
import os
import warnings
from collections.abc import Iterable, Sized
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from crf.batch import exit_with_parent
from oosis_jax.evaluation import boundaries as boundary_eval
from oosis_jax.evaluation import coco_map as coco_eval
from oosis_jax.evaluation import metrics
from oosis_jax.evaluation import oair
from oosis_jax.evaluation import tables
from data import targets


def _boundary_counts(b, e, instance_map, edges, max_dist) -> np.ndarray:
    """`boundary_eval.image_counts` of one image against its ground-truth boundaries and orientations."""
    gt_b, gt_e = targets.boundary_targets(instance_map, edges)
    return boundary_eval.image_counts(b, e, gt_b, gt_e, max_dist=max_dist)


class WorkerFailure(ValueError):
    """An image's boundary counts failed on a worker process: the `Evaluator` cannot go on (every later `add` and
    `result` raises it), unlike a malformed pair, whose ``ValueError`` leaves it unchanged."""


class Evaluator:
    """`evaluate` one image at a time, in bounded memory: `add` reduces each prediction / ground-truth pair to
    what the metrics need (OAIR's IoU matrix, RLE masks, coverage, cycle and boundary counts: a few KB per
    image, where the maps and heads take MB), and `result` gives `evaluate`'s dict. So a whole split (KINS
    test: 7517 images) streams through it.

    The boundary counts (99 pixel matchings per image: about 0.3 s for a 1242x375 image) run on ``processes``
    spawned worker processes when it is more than 1, at most two per worker in flight, while the caller
    goes on; `result` waits for them and stops the workers. ``position``: how many pairs `add` was given, failed
    ones included (the number that names an image in messages).
    """

    def __init__(self, boundaries: bool = True, max_dist: float = boundary_eval.MAX_DIST, processes: int = 1):
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be an int >= 1, got {processes!r}")
        if not isinstance(boundaries, (bool, np.bool_)):  # "no" would be true
            raise ValueError(f"boundaries must be True or False, got {boundaries!r}")
        self.boundaries, self.max_dist, self.processes = boundaries, boundary_eval.check_max_dist(max_dist), processes
        self._oair, self._coco, self._coverages, self._boundary_counts = [], [], [], []
        self._on_cycles, self._num_gt, self._num_pred, self.position = 0.0, 0, 0, 0
        self._with_heads = 0  # images whose prediction has b and e (boundary counts need every image's)
        self._pool, self._in_flight = None, collections.deque()  # (index in _boundary_counts, image id)
        self._failed = None  # the error of a boundary count that failed on a worker

    def __len__(self) -> int:
        return len(self._oair)

    def add(self, prediction, ground_truth) -> None:
        """One image: ``prediction`` an `oosis_jax.inference.instances.Prediction` or dict with instance_map,
        classes, scores, edges (and b, e for the boundary metrics); ``ground_truth`` a dict with instance_map,
        classes, edges. An id without pixels (e.g. a ground-truth one that a resize lost) is no object, on either
        side: its edges are left out of every metric and it is not counted, as mask mAP leaves it out.
        ``ValueError`` naming the image (its position in the stream) for a malformed pair."""
        if self._failed is not None:
            raise self._failed
        self.position += 1
        image_id = self.position  # in messages; every call counts, so a failed add keeps the later numbers
        try:
            prediction, ground_truth = _fields(prediction, "prediction"), _fields(ground_truth, "ground truth")
            coco = coco_eval.CocoImage.of(prediction, ground_truth, image_id)
            pairs = oair.OairImage.of(prediction, ground_truth)  # without the edges of ids that have no pixel
            ground_truth = dict(ground_truth, edges=pairs.gt_edges)
            num_gt = int(metrics.present_ids(np.asarray(ground_truth["instance_map"]), len(pairs.gt_classes)).sum())
            num_pred = int(metrics.present_ids(np.asarray(prediction["instance_map"]), len(pairs.pred_classes)).sum())
        except ValueError as err:
            if str(err).startswith(f"image {image_id}:"):
                raise
            raise ValueError(f"image {image_id}: {err}") from err
        coverage = (metrics.weighted_coverage(ground_truth["instance_map"], prediction["instance_map"])
                    if np.any(np.asarray(ground_truth["instance_map"]) > 0) else None)
        num_predicted = len(pairs.pred_classes)
        on_cycles = metrics.cycle_fraction(num_predicted, pairs.pred_edges) * num_predicted
        with_heads = "b" in prediction and "e" in prediction
        has_heads = with_heads and self._with_heads == len(self._oair)
        counts = None
        if self.boundaries and has_heads:
            try:
                b, e = boundary_eval.check_heads(prediction["b"], prediction["e"],
                                                 np.shape(ground_truth["instance_map"]))
                counts = self._submit(b, e, ground_truth["instance_map"], ground_truth["edges"])
            except ValueError as err:
                raise ValueError(f"image {image_id}: boundaries: {err}") from err
        if isinstance(counts, concurrent.futures.Future):
            while len(self._in_flight) >= 2 * self.processes:  # an older image's failure is raised before this
                self._collect_oldest()                         # one is recorded
        # every part computed: only now is the image recorded, so a failed add leaves the evaluator unchanged
        self._oair.append(pairs)
        self._coco.append(coco)
        self._coverages += [] if coverage is None else [coverage]
        self._on_cycles += on_cycles
        self._num_gt += num_gt
        self._num_pred += num_pred
        self._with_heads += with_heads
        if counts is not None:
            self._boundary_counts.append(counts)
            if isinstance(counts, concurrent.futures.Future):
                self._in_flight.append((len(self._boundary_counts) - 1, image_id))

    def _submit(self, b, e, instance_map, edges):
        """The boundary counts of one image, or with ``processes > 1`` their future."""
        if self.processes == 1:
            return _boundary_counts(b, e, instance_map, edges, self.max_dist)
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent,
                initargs=(os.getpid(),))
        return self._pool.submit(_boundary_counts, b, e, instance_map, edges, self.max_dist)

    def _collect_oldest(self):
        """Wait for the oldest image's boundary counts; once a worker has failed, every later call (and so every
        `add` and `result`) raises that image's error: the image is recorded without its counts."""
        if self._failed is not None:
            raise self._failed
        index, image_id = self._in_flight[0]
        try:
            self._boundary_counts[index] = self._boundary_counts[index].result()
        except Exception as err:
            self._failed = WorkerFailure(f"image {image_id}: boundary evaluation failed: {type(err).__name__}: "
                                         f"{err}")
            raise self._failed from err
        self._in_flight.popleft()

    def result(self) -> dict:
        """`evaluate`'s dict of the images added so far (``ValueError`` when there are none)."""
        if not self._oair:
            raise ValueError("no image to evaluate: add at least one prediction and its ground truth")
        try:
            while self._in_flight:
                self._collect_oldest()
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
        num_predicted = self._num_pred
        boundaries = None
        if self.boundaries and 0 < self._with_heads < len(self._oair):
            warnings.warn(f"{self._with_heads} of {len(self._oair)} predictions have the b and e heads: the boundary "
                          "metrics need them all and are left out", stacklevel=2)
        if self.boundaries and self._with_heads == len(self._oair):
            # One matching serves both curves: plain precision counts matched predictions, oriented precision
            # only the correctly oriented ones.
            boundaries = {"oriented": boundary_eval.summarize(self._boundary_counts, oriented=True),
                          "plain": boundary_eval.summarize(self._boundary_counts, oriented=False)}
        return {
            "num_images": len(self._oair),
            "num_gt_instances": int(self._num_gt),
            "num_pred_instances": int(num_predicted),
            "oair_iou": oair.curve_iou(self._oair),
            "oair_confidence": oair.curve_confidence(self._oair),
            "mask": coco_eval.mask_ap(self._coco),
            "weighted_coverage": float(np.mean(self._coverages)) if self._coverages else float("nan"),
            "cycle_percent": 100.0 * self._on_cycles / num_predicted if num_predicted else float("nan"),
            "boundaries": boundaries,
        }


def _fields(item, what: str):
    """``item`` as a mapping (`oair.fields`) holding every key the metrics read of a ``what``."""
    item = oair.fields(item)
    missing = [key for key in REQUIRED_KEYS[what] if key not in item]
    if missing:
        raise ValueError(f"the {what} lacks {missing} (it has {sorted(item)})")
    return item


REQUIRED_KEYS = {"prediction": ("instance_map", "classes", "scores", "edges"),
                 "ground truth": ("instance_map", "classes", "edges")}


def evaluate(predictions: Iterable, ground_truths: Iterable, boundaries: bool = True,
             max_dist: float = boundary_eval.MAX_DIST, progress: bool = True, failures: list | None = None) -> dict:
    """All metrics of a dataset split (`Evaluator`, fed pair by pair: iterables are read lazily).

    ``predictions``: `oosis_jax.inference.instances.Prediction`s or dicts with instance_map, classes, scores, edges
    (and b, e for the boundary metrics); ``ground_truths``: dicts with instance_map, classes, edges (a dataset
    split). Returns dict(num_images, num_gt_instances, num_pred_instances (ids with a pixel), oair_iou,
    oair_confidence, mask (mAP, AP50, AP75), weighted_coverage, cycle_percent (NaN when nothing is predicted),
    boundaries (oriented / plain ODS, OIS, AP, curves) or None). Fractions are in [0, 1]. An id without a
    pixel, on either side, is no object in any metric.
    ``ValueError`` when the two differ in length or are empty, or for a malformed pair (named by its 1-based
    position), unless ``failures`` is a list: a malformed pair is then appended there as ``(position, message)``
    and left out, and the others are evaluated.
    """
    if isinstance(predictions, Sized) and isinstance(ground_truths, Sized) and len(predictions) != len(ground_truths):
        raise ValueError(f"need as many predictions as ground truths, got {len(predictions)} and {len(ground_truths)}")
    evaluator = Evaluator(boundaries, max_dist)
    total = len(predictions) if isinstance(predictions, Sized) else None
    pairs = itertools.zip_longest(predictions, ground_truths, fillvalue=_MISSING)
    for prediction, ground_truth in tqdm(pairs, total=total, desc="evaluating", disable=not progress):
        if prediction is _MISSING or ground_truth is _MISSING:
            shorter = "predictions" if prediction is _MISSING else "ground truths"
            raise ValueError(f"need as many predictions as ground truths: the {shorter} ended after "
                             f"{evaluator.position}")
        try:
            evaluator.add(prediction, ground_truth)
        except ValueError as err:
            if failures is None:
                raise
            failures.append((evaluator.position, str(err)))
    if not len(evaluator):
        raise ValueError(f"all {evaluator.position} pairs failed, e.g. {failures[0][1]}" if failures else
                         "need as many predictions as ground truths (> 0), got none")
    return evaluator.result()


_MISSING = object()


def markdown_table(results: dict, name: str = "Joint-Labeling") -> str:
    """One-row markdown tables of the headline numbers (in %, as the paper reports them; "n/a" for an undefined
    one, e.g. OAIR accuracy when no pair is recovered)."""
    at_05 = results["oair_iou"]
    cells = [results["num_images"]] + [tables.percent(v) for v in (
        at_05["recall"][0], at_05["accuracy"][0], results["mask"]["mAP"], results["weighted_coverage"])]
    lines = [tables.markdown(["Model", "images", "OAIR recall@0.5", "OAIR accuracy@0.5", "mAP .5:.95", "WC",
                              "% instances in cycles"], [[name, *cells, tables.cycle_cell(results["cycle_percent"])]]),
             f"mask mAP: pycocotools with maxDets={coco_eval.MAX_DETECTIONS} per image (every instance counts, of an"
             " image with more detections the best scored)."]
    if results["boundaries"] is not None:
        o, p = results["boundaries"]["oriented"], results["boundaries"]["plain"]
        lines += ["", tables.markdown(["Model", "oriented ODS", "oriented OIS", "oriented AP", "boundary AP"],
                                      [[name, *map(tables.percent, (o["ODS"], o["OIS"], o["AP"], p["AP"]))]])]
    return "\n".join(lines).rstrip("\n") + "\n"


CURVE_FILES = ("oair_iou.png", "oair_confidence.png", "boundary_pr.png")  # what `plot_curves` may write


def remove_curves(out_dir) -> None:
    """Delete `plot_curves`' pictures in ``out_dir`` (an earlier run's, where this run has no results to plot)."""
    for name in CURVE_FILES:
        (Path(out_dir) / name).unlink(missing_ok=True)


def plot_curves(results_by_name: dict[str, dict], out_dir) -> list[Path]:
    """OAIR curves over IoU and confidence (Fig. 9), and the boundary PR curves (one colour per model, solid
    oriented, dashed plain), as PNGs in ``out_dir``; the confidence plot's title says how many thresholds the
    curves have (one when a model's predictions have no scores, `oair.confidence_thresholds`) and every title
    how many images were evaluated; without boundary results an earlier ``boundary_pr.png`` there is removed.
    ``ValueError`` when there is no model to plot."""
    if not results_by_name:
        raise ValueError("plot_curves: no results to plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / CURVE_FILES[0], out_dir / CURVE_FILES[1]]
    evaluated = sorted({r["num_images"] for r in results_by_name.values()})
    images = f"{evaluated[0]} images" if len(evaluated) == 1 else f"{evaluated[0]}-{evaluated[-1]} images per model"
    oair.plot_oair_curves({n: r["oair_iou"] for n, r in results_by_name.items()}, paths[0],
                          f"OAIR, IoU thresholds 0.5:0.05:0.95; {images}", first="IoU 0.5")
    counts = sorted({len(r["oair_confidence"]["min_score"]) for r in results_by_name.values()})
    thresholds = (f"{counts[0]} threshold{'s' * (counts[0] != 1)}" if len(counts) == 1 else
                  f"{counts[0]}-{counts[-1]} thresholds per model")
    oair.plot_oair_curves({n: r["oair_confidence"] for n, r in results_by_name.items()}, paths[1],
                          f"OAIR, minimum confidence ({thresholds}); {images}",
                          first="every prediction (lowest threshold)")
    with_boundaries = {n: r["boundaries"] for n, r in results_by_name.items() if r["boundaries"] is not None}
    if with_boundaries:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for i, (name, bnd) in enumerate(with_boundaries.items()):
            for kind, style in (("oriented", "-"), ("plain", "--")):
                ax.plot(bnd[kind]["recall"], bnd[kind]["precision"], style, color=f"C{i % 10}",
                        label=f"{name} {kind} (AP {100 * bnd[kind]['AP']:.1f})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"Occlusion boundaries: oriented (POR) and plain (PR); {images}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=7)
        fig.tight_layout()
        paths.append(out_dir / CURVE_FILES[2])
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    else:  # an earlier plot of other results must not pass for these
        (out_dir / CURVE_FILES[2]).unlink(missing_ok=True)
    return paths
