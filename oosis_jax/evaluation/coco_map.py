"""Mask mAP@[.5:.95] through pycocotools from instance maps (Sec. 5.4, Tab. 2 and 4).

The COCO ground truth is built from the visible masks of the ground-truth instance maps (annotation ids
start at 1, ``iscrowd`` 0, ``area`` = visible area); detections are the predicted instances with their
classes and scores, as RLE with ``counts`` decoded to str. Images are numbered 1..n in list order. Each pair
is reduced to a `CocoImage` (its RLEs) first, so a split can be accumulated image by image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from oosis_jax.evaluation.metrics import validate_instances
from oosis_jax.evaluation.oair import fields

# pycocotools' default keeps only the 100 best detections per image, so a perfect prediction of an image with
# more instances scored below 1. Every mAP here uses maxDets = (1, 10, MAX_DETECTIONS); an image with more
# ground-truth instances is an error, one with more detections keeps the best scored (as pycocotools would) with a
# warning, rather than a silently lower score.
MAX_DETECTIONS = 10_000


def encode_masks(instance_map: np.ndarray, num_instances: int) -> list[dict]:
    """COCO RLEs (``counts`` as str) of instances 1..num_instances of an int (H, W) map, in id order; an id
    without pixels gets an empty mask. Exactly ``pycocotools.mask.encode``'s RLEs, but from the map's runs, in
    O(H W log(H W)) time and O(H W) memory whatever the count (the stack of N full masks that `encode` reads
    took 3 copies of N x H x W bytes: 23 GB for the 6000 instances an untrained network gives at 2048x615)."""
    if num_instances == 0:
        return []
    height, width = np.shape(instance_map)
    flat = np.asarray(instance_map).ravel(order="F")  # COCO's runs go down the columns
    order = np.argsort(flat, kind="stable")  # each id's pixels together, in column-major order
    bounds = np.searchsorted(flat[order], np.arange(1, num_instances + 2))
    uncompressed = [{"size": [height, width], "counts": _run_lengths(order[bounds[k]:bounds[k + 1]], flat.size)}
                    for k in range(num_instances)]
    rles = mask_utils.frPyObjects(uncompressed, height, width)
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def _run_lengths(pixels: np.ndarray, total: int) -> list[int]:
    """COCO's uncompressed counts of the mask whose column-major pixel indices are ``pixels`` (ascending) among
    ``total``: the lengths of alternating runs of 0s and 1s, starting with 0s (maybe none), the last run kept."""
    if not len(pixels):
        return [total]
    breaks = np.flatnonzero(np.diff(pixels) != 1) + 1
    starts, ends = pixels[np.r_[0, breaks]], pixels[np.r_[breaks - 1, len(pixels) - 1]] + 1
    counts = np.empty(2 * len(starts) + 1, np.int64)
    counts[0::2] = np.r_[starts[0], starts[1:] - ends[:-1], total - ends[-1]]
    counts[1::2] = ends - starts
    return counts[:-1].tolist() if counts[-1] == 0 else counts.tolist()


@dataclasses.dataclass(frozen=True)
class CocoImage:
    """One image pair as pycocotools reads it, without its maps: the size, the ground truth's non-empty
    visible masks (``category_id``, ``segmentation`` RLE, ``area``, ``bbox``) and the prediction's non-empty
    instances (``category_id``, ``segmentation``, ``score``); a few KB, so a whole split is kept in bounded
    memory until `mask_ap`."""

    height: int
    width: int
    annotations: list
    detections: list

    @classmethod
    def of(cls, prediction, ground_truth, image_id: int = 1) -> "CocoImage":
        """From a prediction and its ground truth (mappings or dataclasses); errors name ``image_id``."""
        pred, gt = fields(prediction), fields(ground_truth)
        inst, classes, _, _ = validate_instances(gt["instance_map"], gt["classes"], gt["edges"],
                                                 name=f"ground truth {image_id}")
        pred_inst, pred_classes, _, scores = validate_instances(pred["instance_map"], pred["classes"], pred["edges"],
                                                                pred["scores"], name=f"prediction {image_id}")
        if pred_inst.shape != inst.shape:
            raise ValueError(f"image {image_id}: predicted map {pred_inst.shape} and ground truth {inst.shape} "
                             "differ in shape")
        # an id without pixels is not an object
        annotations = [{"category_id": int(classes[k - 1]), "segmentation": rle, "area": int(mask_utils.area(rle)),
                        "bbox": list(mask_utils.toBbox(rle))}
                       for k, rle in enumerate(encode_masks(inst, len(classes)), start=1) if mask_utils.area(rle) > 0]
        detections = [{"category_id": int(pred_classes[k - 1]), "segmentation": rle, "score": float(scores[k - 1])}
                      for k, rle in enumerate(encode_masks(pred_inst, len(pred_classes)), start=1)
                      if mask_utils.area(rle) > 0]
        if len(annotations) > MAX_DETECTIONS:
            raise ValueError(f"image {image_id}: {len(annotations)} ground-truth instances, more than MAX_DETECTIONS="
                             f"{MAX_DETECTIONS} (pycocotools' maxDets, so that every instance counts); raise it")
        if len(detections) > MAX_DETECTIONS:  # pycocotools would keep these (its stable sort by score), unsaid
            warnings.warn(f"image {image_id}: {len(detections)} detections, more than MAX_DETECTIONS={MAX_DETECTIONS}"
                          " (pycocotools' maxDets): mask mAP keeps the best scored (the other metrics use all)",
                          RuntimeWarning, stacklevel=2)
            best = np.argsort([-d["score"] for d in detections], kind="mergesort")[:MAX_DETECTIONS]
            detections = [detections[i] for i in np.sort(best)]
        return cls(*inst.shape, annotations, detections)


def _coco_ground_truth(images: Sequence[CocoImage]) -> COCO:
    """A pycocotools ``COCO`` of the images' ground truth, numbered 1..n; categories = every class id seen."""
    annotations = [dict(a, image_id=image_id, iscrowd=0)
                   for image_id, image in enumerate(images, start=1) for a in image.annotations]
    for k, annotation in enumerate(annotations, start=1):
        annotation["id"] = k
    coco = COCO()
    coco.dataset = {"images": [{"id": i, "height": image.height, "width": image.width}
                               for i, image in enumerate(images, start=1)],
                    "annotations": annotations,
                    "categories": [{"id": c, "name": str(c)} for c in sorted({a["category_id"] for a in annotations})]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def mask_map(predictions: Sequence, ground_truths: Sequence) -> dict:
    """`mask_ap` of prediction / ground-truth lists (``ValueError`` when they differ in length)."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truths)} ground truths")
    return mask_ap([CocoImage.of(p, g, i) for i, (p, g) in enumerate(zip(predictions, ground_truths), start=1)])


def mask_ap(images: Sequence[CocoImage]) -> dict:
    """COCO mask AP of predicted instance maps: dict(mAP (AP@[.5:.95]), AP50, AP75), fractions in [0, 1].

    NaN everywhere when the ground truth has no instance at all (AP is undefined), 0.0 everywhere when there is
    no detection. `CocoImage.of` raises for an image pair that differs in shape or an image with more than
    ``MAX_DETECTIONS`` instances (pycocotools' ``maxDets`` is set to it, so every instance counts); of more
    detections it keeps the best scored, with a warning (an untrained network gives 17000 at KINS's 615x2048).
    Tied scores are ranked in the order given (``images`` in order, each image's instances by id: pycocotools'
    stable sort), so with many ties the result depends on the images' order (docs/datasets_and_metrics.md).
    """
    gt = _coco_ground_truth(images)
    if not gt.dataset["annotations"]:
        return {"mAP": float("nan"), "AP50": float("nan"), "AP75": float("nan")}
    detections = [dict(d, image_id=image_id)
                  for image_id, image in enumerate(images, start=1) for d in image.detections]
    if not detections:
        return {"mAP": 0.0, "AP50": 0.0, "AP75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, gt.loadRes(detections), "segm")
        evaluator.params.maxDets = [1, 10, MAX_DETECTIONS]
        evaluator.evaluate()
        evaluator.accumulate()
    # COCOeval.summarize() would read its stats at maxDets=100 only; take them at our limit instead:
    # precision is (IoU thresholds, recall levels, categories, area ranges, maxDets), -1 where undefined.
    precision = evaluator.eval["precision"][:, :, :, evaluator.params.areaRngLbl.index("all"), -1]
    stats = []
    for rows in (slice(None), np.isclose(evaluator.params.iouThrs, 0.5), np.isclose(evaluator.params.iouThrs, 0.75)):
        defined = precision[rows][precision[rows] > -1]
        stats.append(float(defined.mean()) if defined.size else 0.0)
    return {"mAP": stats[0], "AP50": stats[1], "AP75": stats[2]}
