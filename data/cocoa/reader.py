"""COCOA annotation files (regions format and the classed ``_with_classes`` variant) read into OOSIS examples.

Formats (``docs/datasets_and_metrics.md``), recognised from the annotations' keys:

- ``regions`` (``COCO_amodal_{train,val,test}2014.json``): one record per image with ``regions`` and
  ``depth_constraint`` ("a-b,...": region a occludes region b, 1-based). A region's visible mask is its
  ``visible_mask`` RLE when it is occluded, else its amodal polygon ``segmentation``. Regions with a true
  ``isStuff`` (sky, ground, wall...) are not instances: their pixels are background and their constraints
  are dropped, as the paper groups everything but instances into background (Sec. 5). Regions carry free
  text names, no category ids: ``classes`` are ``UNLABELLED`` (0). The annotated relations are cross-checked
  with the masks (a contradiction keeps the annotation and warns). The regions' ``order`` field (a total
  depth order) is not used: ``depth_constraint`` holds the occlusion pairs, and touching regions without a
  constraint do not occlude each other. An image with several region records uses the first and warns
  (the public files have one per image).
- ``classes`` (``COCO_amodal_{train,val}2014_with_classes.json``): flat COCO annotations with ``category_id``
  (COCO ids), amodal ``segmentation`` and ``visible_mask`` (RLE; absent = not occluded, visible = amodal).
  Without a regions file, relations are derived from the masks of touching objects. With
  ``regions_file``, each object is matched to the region of the same image with the highest visible-mask IoU
  (greedy one-to-one, IoU >= ``min_iou``); two matched objects take the order of their regions'
  ``depth_constraint`` (none if the regions have no constraint), a pair with an unmatched object is ordered
  from its masks, and so is every pair of an image that the regions file does not annotate.

Either way, masks and relations become one unambiguous example by ``data.annotations_order.compose``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import numpy as np

from data import annotations as ann
from data import masks
from data import annotations_order as order

UNLABELLED = 0  # class of a regions-format instance: the regions files have no category ids


def detect_format(content: dict, path: str) -> str:
    """``'regions'`` or ``'classes'`` from the first annotation holding ``regions`` or ``category_id`` (no
    annotations: a ``categories`` list); an image with an annotation of neither kind is bad, not the file."""
    records = ann.require_list(content, "annotations", path)
    for record in records:
        if isinstance(record, dict) and "regions" in record:
            return "regions"
        if isinstance(record, dict) and "category_id" in record:
            return "classes"
    if records:
        first = records[0]
        raise ValueError(
            f"{path}: not a COCOA annotation file: no annotation has 'regions' (COCO_amodal_*2014.json) or "
            f"'category_id' (COCO_amodal_*2014_with_classes.json); annotations[0] is "
            f"{sorted(first) if isinstance(first, dict) else type(first).__name__}"
        )
    return "classes" if "categories" in content else "regions"


def _constraint_pairs(text: object, num: int, where: str) -> list[tuple[int, int]]:
    """0-based (occluder, occludee) pairs of a ``depth_constraint`` string over ``num`` regions."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: depth_constraint must be a string, got {type(text).__name__}")
    pairs = []
    for token in filter(None, (t.strip() for t in text.split(","))):
        parts = token.split("-")
        if len(parts) != 2 or not all(p.strip().isdecimal() for p in parts):  # not isdigit: '²' is a digit
            raise ValueError(f"{where}: malformed depth_constraint entry {token!r} (expected 'a-b')")
        a, b = int(parts[0]), int(parts[1])
        if not (1 <= a <= num and 1 <= b <= num) or a == b:
            raise ValueError(f"{where}: depth_constraint {token!r} names a region outside 1..{num} or itself")
        pairs.append((a - 1, b - 1))
    return pairs


def _masks(record: dict, height: int, width: int, at: str) -> tuple[np.ndarray, np.ndarray]:
    """(visible, amodal) of a region or classed annotation: visible = ``visible_mask`` if occluded, else amodal."""
    amodal = masks.segmentation_mask(record["segmentation"], height, width, f"{at} segmentation")
    if "visible_mask" not in record:
        return amodal, amodal
    visible = masks.rle_mask(record["visible_mask"], height, width, f"{at} visible_mask")
    return visible, amodal | visible


def _region_objects(record: dict, entry: ann.ImageEntry, where: str):
    """Non-stuff regions of one record: (visible masks, amodal masks, 1-based region numbers, pairs)."""
    regions = ann.require_list(record, "regions", where)
    h, w = entry.height, entry.width
    visible, amodal, numbers = [], [], []
    for k, region in enumerate(regions):
        at = f"{where} region {k + 1}"
        ann.require(region, ["segmentation"], at)
        stuff = region.get("isStuff", False)
        if stuff not in (0, 1) or isinstance(stuff, (str, float)):  # True/False or the files' 0/1
            raise ValueError(f"{at}: isStuff must be 0, 1, true or false, got {stuff!r}")
        if stuff:
            continue
        seen, whole = _masks(region, h, w, at)
        visible.append(seen)
        amodal.append(whole)
        numbers.append(k + 1)
    index = {number - 1: i for i, number in enumerate(numbers)}
    pairs = [
        (index[a], index[b])
        for a, b in _constraint_pairs(record.get("depth_constraint", ""), len(regions), where)
        if a in index and b in index
    ]
    return visible, amodal, numbers, pairs


def _first_record(records: list, entry: ann.ImageEntry, path: str):
    if len(records) > 1:
        warnings.warn(f"{path}: image {entry.image_id} has {len(records)} region records; using the first")
    return records[0] if records else None


def _regions_example(entry: ann.ImageEntry, records: list, path: str) -> dict:
    where = f"{path}: image {entry.image_id}"
    record = _first_record(records, entry, path)
    visible, amodal, numbers, pairs = _region_objects(record, entry, where) if record else ([], [], [], [])
    relations = order.annotated_relations(pairs, visible, amodal, numbers, entry.image_id)
    instance_map, kept, edges = order.compose((entry.height, entry.width), visible, relations, numbers, entry.image_id)
    return {
        "instance_map": instance_map,
        "classes": np.full(kept.size, UNLABELLED, dtype=np.int32),
        "edges": edges,
        "region_numbers": np.asarray(numbers, dtype=np.int64).reshape(-1)[kept],
    }


def _match_regions(visible: list, region_visible: list, min_iou: float) -> dict[int, int]:
    """Greedy one-to-one matching object -> region by descending visible-mask IoU (>= ``min_iou``)."""
    candidates = []
    for i, mask in enumerate(visible):
        for r, region in enumerate(region_visible):
            inter = int((mask & region).sum())
            if inter:
                candidates.append((inter / int((mask | region).sum()), i, r))
    match, used = {}, set()
    for iou, i, r in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if iou >= min_iou and i not in match and r not in used:
            match[i] = r
            used.add(r)
    return match


def _classes_example(entry, records, known, path, regions, min_iou) -> dict:
    """One image of the classed variant; ``regions`` = (regions file, its records of the image) or None."""
    where = f"{path}: image {entry.image_id}"
    h, w = entry.height, entry.width
    visible, amodal, labels, classes = [], [], [], []
    for record in records:
        ann.require(record, ["id", "category_id", "segmentation"], ann.annotation_where(record, where))
        label = ann.integer(record["id"], f"{where} annotation id")
        if label in labels:
            raise ValueError(f"{where}: duplicate annotation id {label}")
        at = f"{where} annotation {label}"
        category = ann.integer(record["category_id"], f"{at} category_id")
        if category not in known:
            raise ValueError(f"{at}: unknown category_id {category} (known: {sorted(known)})")
        seen, whole = _masks(record, h, w, at)
        visible.append(seen)
        amodal.append(whole)
        labels.append(label)
        classes.append(category)
    relations = order.mask_relations(visible, amodal)
    region_record = None if regions is None else _first_record(regions[1], entry, regions[0])
    if region_record is not None:
        where_regions = f"{regions[0]}: image {entry.image_id}"
        region_visible, _, _, region_pairs = _region_objects(region_record, entry, where_regions)
        match = _match_regions(visible, region_visible, min_iou)
        region_of = {r: i for i, r in match.items()}
        relations = {p: s for p, s in relations.items() if not (p[0] in match and p[1] in match)}
        joined = [(region_of[a], region_of[b]) for a, b in region_pairs if a in region_of and b in region_of]
        relations.update(order.annotated_relations(joined, visible, amodal, labels, entry.image_id))
    instance_map, kept, edges = order.compose((h, w), visible, relations, labels, entry.image_id)
    return {
        "instance_map": instance_map,
        "classes": np.asarray(classes, dtype=np.int32).reshape(-1)[kept],
        "edges": edges,
        "annotation_ids": np.asarray(labels, dtype=np.int64).reshape(-1)[kept],
    }


def _file_size(image_file: str) -> str:
    """``"; its file ... is WxH"`` from the image file's header (which of two annotation files is wrong), or
    ``""`` when it cannot be read (that is reported when the image is decoded)."""
    import PIL.Image

    try:
        with PIL.Image.open(image_file) as image:
            return f"; its file {image_file} is {image.width}x{image.height}"
    except (OSError, ValueError):
        return ""


def _regions_by_image(regions_file: str, skipped: list | None
                      ) -> tuple[dict[int, list], dict[int, tuple[int, int]], dict[int, str]]:
    """The regions file's records by image id, each image's (height, width) there, and the problems of its
    images (their ``images`` entries; a list ``skipped`` keeps them for the build of each image, which then
    leaves out only that image: without its regions the image would silently have no order). An entry without
    a valid id names no image to leave out: it is warned about here, its image built without its regions."""
    content = ann.read_json(regions_file)
    records = ann.require_list(content, "annotations", regions_file)
    if detect_format(content, regions_file) != "regions":
        raise ValueError(f"{regions_file}: regions_file must be a regions-format file (COCO_amodal_*2014.json)")
    problems: list | None = None if skipped is None else []
    with warnings.catch_warnings():  # each image's problem is reported once, when that image is built
        warnings.simplefilter("ignore")
        region_images = ann.image_entries(content, regions_file, problems)
    grouped = ann.group_by_image(records, region_images, regions_file, "annotations", problems)
    sizes = {entry.image_id: (entry.height, entry.width) for entry in region_images}
    bad = {image_id: message for image_id, message in problems or [] if image_id is not None}
    for message in [message for image_id, message in problems or [] if image_id is None]:
        warnings.warn(f"{message}: ignored; the image it meant, if any, gets no order from the regions file",
                      stacklevel=2)
    return grouped, sizes, bad


def examples(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    regions_file: str | os.PathLike | None = None,
    min_iou: float = 0.5,
    skipped: list | None = None,
) -> Iterator[dict]:
    """Iterate the images of a COCOA annotation file in file order (``docs/contracts.md``).

    Yields dicts with ``image_id`` (int), ``image`` (path of the image file, which must exist),
    ``instance_map`` int32 (H, W), ``classes`` int32 (N,) (COCO category ids; ``UNLABELLED`` for the
    regions format), ``edges`` int32 (M, 2) (a occludes b), and for inspection ``height``/``width`` (from
    the ``images`` entry), ``format`` and ``annotation_ids`` (classed) or ``region_numbers`` (regions, 1-based).
    ``regions_file`` (classed format only) supplies the order, joined by image id and mask IoU (module docstring);
    one that lists none of the file's images (another split's) raises ``ValueError``.
    A problem of a whole file raises; one of a single image (its ``images`` entry, its annotations, a size that
    differs in the regions file, its missing file) raises too, unless ``skipped`` is a list: that image is then
    left out, ``(image_id, message)`` appended to ``skipped`` with a warning (`data.annotations.each_image`), and
    an annotation of no listed image is ignored with a warning (one whose malformed ``image_id`` names a listed
    image as text leaves that image out: `ann.group_by_image`). The whole file (and ``regions_file``) is read and
    checked at the call, before the first image is asked for.
    """
    path = os.fspath(annotation_file)
    content = ann.read_json(path)
    images = ann.image_entries(content, path, skipped)
    records = ann.require_list(content, "annotations", path)
    fmt = detect_format(content, path)
    grouped = ann.group_by_image(records, images, path, "annotations", skipped)
    if fmt == "regions" and regions_file is not None:
        raise ValueError(f"{path} is a regions file itself; regions_file applies to the _with_classes variant")
    if isinstance(min_iou, bool) or not isinstance(min_iou, (int, float)) or not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be a number in (0, 1], got {min_iou!r}")
    regions = None if regions_file is None else _regions_by_image(os.fspath(regions_file), skipped)
    if regions is not None and images and not {entry.image_id for entry in images} & set(regions[1]):
        # a whole-file mistake (the other split's regions file): every image would take its order from its
        # masks alone, silently
        raise ValueError(f"{regions_file} lists none of the {len(images)} images of {path}: is it the regions file "
                         "of another split?")
    known = ann.category_ids(content, path) if fmt == "classes" else set()

    def build(entry: ann.ImageEntry) -> dict:
        if fmt == "regions":
            example = _regions_example(entry, ann.records_of(grouped, entry.image_id), path)
        else:
            image_regions = None
            if regions is not None:
                by_image, sizes, bad = regions
                if entry.image_id in bad:
                    raise ValueError(bad[entry.image_id])
                size = sizes.get(entry.image_id, (entry.height, entry.width))
                if size != (entry.height, entry.width):
                    raise ValueError(f"{regions_file}: image {entry.image_id} is {size[1]}x{size[0]} (width x height) "
                                     f"there, {entry.width}x{entry.height} in {path}"
                                     f"{_file_size(ann.image_path(image_dir, entry))}")
                image_regions = (os.fspath(regions_file), ann.records_of(by_image, entry.image_id)
                                 if entry.image_id in by_image else [])
            example = _classes_example(entry, ann.records_of(grouped, entry.image_id), known, path, image_regions,
                                       min_iou)
        example.update(image_id=entry.image_id, height=entry.height, width=entry.width, format=fmt)
        example["image"] = ann.image_path(image_dir, entry)
        return example

    return ann.each_image(images, build, skipped)
