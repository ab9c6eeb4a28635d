"""Mask mAP@[.5:.95] through pycocotools from instance maps (Sec. 5.4, Tab. 2 and 4).

The COCO ground truth is built from the visible masks of the ground-truth instance maps (annotation ids
start at 1, ``iscrowd`` 0, ``area`` = visible area); detections are the predicted instances with their
classes and scores, as RLE with ``counts`` decoded to str. Images are numbered 1..n in list order.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from oosis_jax.evaluation.metrics import validate_instances
from oosis_jax.evaluation.oair import fields

# pycocotools' default keeps only the 100 best detections per image, so a perfect prediction of an image with
# more instances scored below 1. Every mAP here uses maxDets = (1, 10, MAX_DETECTIONS); an image with more
# detections or ground-truth instances is an error rather than a silently lower score.
MAX_DETECTIONS = 10_000


def encode_masks(instance_map: np.ndarray, num_instances: int) -> list[dict]:
    """COCO RLEs (``counts`` as str) of instances 1..num_instances of an int (H, W) map, in id order."""
    if num_instances == 0:
        return []
    masks = np.stack([instance_map == k for k in range(1, num_instances + 1)], axis=-1)
    rles = mask_utils.encode(np.asfortranarray(masks.astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def coco_ground_truth(ground_truths: Sequence) -> COCO:
    """A pycocotools ``COCO`` of the visible ground-truth masks; categories = every class id seen (>= 1)."""
    images, annotations, categories = [], [], set()
    for image_id, gt in enumerate(map(fields, ground_truths), start=1):
        inst, classes, _, _ = validate_instances(gt["instance_map"], gt["classes"], gt["edges"],
                                                 name=f"ground truth {image_id}")
        height, width = inst.shape
        images.append({"id": image_id, "height": height, "width": width})
        for k, rle in enumerate(encode_masks(inst, len(classes)), start=1):
            area = int(mask_utils.area(rle))
            if area == 0:  # an id without pixels is not an object
                continue
            categories.add(int(classes[k - 1]))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(classes[k - 1]),
                                "segmentation": rle, "area": area, "bbox": list(mask_utils.toBbox(rle)),
                                "iscrowd": 0})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": c, "name": str(c)} for c in sorted(categories)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_detections(predictions: Sequence) -> list[dict]:
    """Detection results (image_id, category_id, segmentation RLE, score) of every non-empty predicted instance."""
    detections = []
    for image_id, pred in enumerate(map(fields, predictions), start=1):
        inst, classes, _, scores = validate_instances(pred["instance_map"], pred["classes"], pred["edges"],
                                                      pred["scores"], name=f"prediction {image_id}")
        for k, rle in enumerate(encode_masks(inst, len(classes)), start=1):
            if mask_utils.area(rle) == 0:
                continue
            detections.append({"image_id": image_id, "category_id": int(classes[k - 1]), "segmentation": rle,
                               "score": float(scores[k - 1])})
    return detections


def mask_map(predictions: Sequence, ground_truths: Sequence) -> dict:
    """COCO mask AP of predicted instance maps: dict(mAP (AP@[.5:.95]), AP50, AP75), fractions in [0, 1].

    Raises ``ValueError`` when the lists differ in length, an image pair differs in shape, or the ground truth
    has no instance at all (AP is undefined), or an image has more than ``MAX_DETECTIONS`` detections or
    instances (pycocotools' ``maxDets`` is set to it, so every instance counts). Returns 0.0 everywhere when
    there is no detection.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truths)} ground truths")
    for i, (p, g) in enumerate(zip(map(fields, predictions), map(fields, ground_truths)), start=1):
        if np.shape(p["instance_map"]) != np.shape(g["instance_map"]):
            raise ValueError(f"image {i}: predicted map {np.shape(p['instance_map'])} and ground truth "
                             f"{np.shape(g['instance_map'])} differ in shape")
    gt = coco_ground_truth(ground_truths)
    if not gt.dataset["annotations"]:
        raise ValueError("mask_map: the ground truth has no instance, AP is undefined")
    detections = coco_detections(predictions)
    if not detections:
        return {"mAP": 0.0, "AP50": 0.0, "AP75": 0.0}
    for kind, items in (("detections", detections), ("ground-truth instances", gt.dataset["annotations"])):
        per_image = np.bincount([item["image_id"] for item in items])
        if per_image.max() > MAX_DETECTIONS:
            raise ValueError(f"mask_map: image {int(per_image.argmax())} has {per_image.max()} {kind}, more than "
                             f"MAX_DETECTIONS={MAX_DETECTIONS} (pycocotools' maxDets); raise the limit")
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
