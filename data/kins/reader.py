"""KINS annotation files (both public formats) read into OOSIS examples.

Formats (``docs/datasets_and_metrics.md``), recognised from the annotations' keys:

- ``original`` (``instances_{train,val}.json``): ``inmodal_seg`` = visible mask (RLE), ``segmentation`` =
  amodal polygons. The file has no order: relations are derived from the masks for every pair of touching
  visible masks (``data.annotations_order.mask_relations``).
- ``2020`` (``update_{train,test}_2020.json``): ``i_segm`` / ``a_segm`` = visible / amodal polygons,
  ``oco_id`` = occlusion cluster, ``ico_id`` = rank inside it (0 = overlaps nothing, smaller = nearer).
  Two objects of one cluster with positive, different ranks give the annotated relation nearer occludes
  farther, cross-checked with the masks (a contradiction keeps the annotation and raises
  ``OrderDisagreementWarning``). Objects with equal positive ranks in one cluster are ordered from their
  masks. Objects of different clusters, or with rank 0, have no relation even if their masks touch.

Amodal masks are used as ``amodal | visible`` (a visible pixel is part of the object's full extent, even
where the annotators' polygons disagree slightly). Either way, the masks and relations become one
unambiguous example by ``data.annotations_order.compose``
(cycle report and removal, painting back to front, vanished objects dropped, edges between touching
instances only). Images without annotations give an all-background example.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from data import annotations as ann
from data import masks
from data import annotations_order as order

FORMAT_KEYS = {"original": ("inmodal_seg", "segmentation"), "2020": ("i_segm", "a_segm", "oco_id", "ico_id")}


def detect_format(records: list, path: str) -> str:
    """``'original'`` or ``'2020'`` from the first annotation holding either format's visible-mask key (all
    must then have that format's keys; an image with one that has not is bad, not the file).

    A file without annotations reads the same in both formats (every image is empty): ``'original'``.
    """
    if not records:
        return "original"
    for record in records:
        for name, keys in FORMAT_KEYS.items():
            if isinstance(record, dict) and keys[0] in record:
                return name
    first = records[0]
    raise ValueError(
        f"{path}: not a KINS annotation file: no annotation has 'inmodal_seg' (instances_*.json) or 'i_segm' "
        f"(update_*_2020.json); annotations[0] is {sorted(first) if isinstance(first, dict) else type(first).__name__}"
    )


def _cluster_pairs(records: list, where: str) -> tuple[list[tuple[int, int]], set[tuple[int, int]]]:
    """2020 format: annotated pairs (nearer, farther) and the unordered pairs with equal positive rank."""
    cluster = [ann.integer(r["oco_id"], f"{where} annotation {r['id']} oco_id") for r in records]
    rank = [ann.integer(r["ico_id"], f"{where} annotation {r['id']} ico_id") for r in records]
    for record, value in zip(records, rank):
        if value < 0:
            raise ValueError(f"{where} annotation {record['id']} ico_id: must be >= 0, got {value}")
    pairs, ties = [], set()
    for i in range(len(records)):
        for j in range(i + 1, len(records)):
            if cluster[i] != cluster[j] or rank[i] == 0 or rank[j] == 0:
                continue
            if rank[i] == rank[j]:
                ties.add((i, j))
            else:
                pairs.append((i, j) if rank[i] < rank[j] else (j, i))
    return pairs, ties


def _example(entry: ann.ImageEntry, records: list, fmt: str, known: set[int], path: str) -> dict:
    where = f"{path}: image {entry.image_id}"
    visible, amodal, labels, classes = [], [], [], []
    for record in records:
        ann.require(record, ("id", "category_id") + FORMAT_KEYS[fmt], ann.annotation_where(record, where)
                    + f" ({fmt} format)")
        label = ann.integer(record["id"], f"{where} annotation id")
        if label in labels:
            raise ValueError(f"{where}: duplicate annotation id {label}")
        category = ann.integer(record["category_id"], f"{where} annotation {label} category_id")
        if category not in known:
            raise ValueError(f"{where} annotation {label}: unknown category_id {category} (known: {sorted(known)})")
        vis_key, amo_key = FORMAT_KEYS[fmt][:2]
        h, w = entry.height, entry.width
        at = f"{where} annotation {label}"
        visible.append(masks.segmentation_mask(record[vis_key], h, w, f"{at} {vis_key}"))
        amodal.append(masks.segmentation_mask(record[amo_key], h, w, f"{at} {amo_key}") | visible[-1])
        labels.append(label)
        classes.append(category)
    if fmt == "original":
        relations = order.mask_relations(visible, amodal)
    else:
        pairs, ties = _cluster_pairs(records, where)
        relations = order.annotated_relations(pairs, visible, amodal, labels, entry.image_id)
        relations.update({p: s for p, s in order.mask_relations(visible, amodal).items() if tuple(sorted(p)) in ties})
    instance_map, kept, edges = order.compose((entry.height, entry.width), visible, relations, labels, entry.image_id)
    return {
        "image_id": entry.image_id,
        "instance_map": instance_map,
        "classes": np.asarray(classes, dtype=np.int32).reshape(-1)[kept],
        "edges": edges,
        "annotation_ids": np.asarray(labels, dtype=np.int64).reshape(-1)[kept],
        "height": entry.height,
        "width": entry.width,
        "format": fmt,
    }


def examples(annotation_file: str | os.PathLike, image_dir: str | os.PathLike,
             skipped: list | None = None) -> Iterator[dict]:
    """Iterate the images of a KINS annotation file in file order (``docs/contracts.md``).

    Yields dicts with ``image_id`` (int), ``image`` (path of the image file, which must exist),
    ``instance_map`` int32 (H, W), ``classes`` int32 (N,) (KINS category ids), ``edges`` int32 (M, 2)
    (a occludes b), and for inspection ``annotation_ids`` int64 (N,) (the annotation of each instance),
    ``height``/``width`` (from the file's ``images`` entry) and ``format`` (``'original'``/``'2020'``).
    Annotations are validated before use: errors name the file, image and annotation. A problem of the whole file
    raises; one of a single image (its ``images`` entry, its annotations or its missing file) raises too, unless
    ``skipped`` is a list: that image is then left out, ``(image_id, message)`` appended to ``skipped`` with a
    warning (`data.annotations.each_image`), and an annotation of no listed image is ignored with a warning
    (one whose malformed ``image_id`` names a listed image as text leaves that image out: `ann.group_by_image`).
    The whole file is read and checked at the call, before the first image is asked for.
    """
    path = os.fspath(annotation_file)
    content = ann.read_json(path)
    images = ann.image_entries(content, path, skipped)
    known = ann.category_ids(content, path)
    records = ann.require_list(content, "annotations", path)
    fmt = detect_format(records, path)
    grouped = ann.group_by_image(records, images, path, "annotations", skipped)

    def build(entry: ann.ImageEntry) -> dict:
        example = _example(entry, ann.records_of(grouped, entry.image_id), fmt, known, path)
        example["image"] = ann.image_path(image_dir, entry)
        return example

    return ann.each_image(images, build, skipped)
