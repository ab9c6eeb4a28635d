"""COCOA annotation files for tests: three small images with regions and _with_classes records."""

from __future__ import annotations

from helpers.annotation_files import box, box_mask, rle, uncompressed_rle, write_image, write_json

H, W = 10, 12
IMAGE_IDS = (100, 101, 102)


def _images(tmp_path, folder):
    images = [{"id": i, "file_name": f"COCO_{folder}_{i:012d}.jpg", "height": H, "width": W} for i in IMAGE_IDS]
    for k, entry in enumerate(images):
        write_image(tmp_path / folder / entry["file_name"], H, W, seed=k, fmt="JPEG")
    return images


def regions_file(tmp_path, folder="train2014"):
    """Image 100: a pinwheel 1-2, 2-3, 3-1 (3-1 contradicted by the masks) and a stuff region in front;
    image 101: no record; image 102: two touching regions without a constraint. Records not in image order."""
    records = [
        {"image_id": 102, "depth_constraint": "", "size": 2, "regions": [
            {"segmentation": box(0, 10, 0, 6), "name": "wall", "isStuff": 0, "order": 1, "area": 60},
            {"segmentation": box(0, 10, 6, 12), "name": "door", "isStuff": 0, "order": 2, "area": 60},
        ]},
        {"image_id": 100, "depth_constraint": "1-2,2-3,3-1,4-1", "size": 4, "regions": [
            {"segmentation": box(0, 5, 0, 6), "name": "cat", "isStuff": 0, "order": 1, "area": 30},
            {"segmentation": box(0, 5, 6, 10), "name": "chair", "isStuff": 0, "order": 2, "area": 20},
            {"segmentation": box(3, 10, 0, 12), "name": "table", "isStuff": 0, "order": 3, "area": 84,
             "visible_mask": rle(box_mask((H, W), 5, 10, 0, 12)), "occlude_rate": 0.3},
            {"segmentation": box(0, 10, 0, 12), "name": "floor", "isStuff": 1, "order": 4, "area": 120,
             "visible_mask": {"size": [H, W], "counts": "not checked: stuff is skipped"}},
        ]},
    ]
    path = tmp_path / f"COCO_amodal_{folder}.json"
    write_json(path, {"images": _images(tmp_path, folder), "annotations": records})
    return path


def classes_file(tmp_path, folder="train2014"):
    """The same scenes in the classed variant, plus a dog (image 100) that no region matches."""
    def annotation(id_, image_id, category, amodal_box, visible=None):
        record = {"id": id_, "image_id": image_id, "category_id": category, "segmentation": [box(*amodal_box)],
                  "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0}
        if visible is not None:
            record["visible_mask"] = visible
        return record

    annotations = [
        annotation(1003, 100, 67, (3, 10, 0, 12), rle(box_mask((H, W), 5, 10, 0, 12))),
        annotation(1001, 100, 1, (0, 5, 0, 6)),
        annotation(2001, 102, 1, (0, 10, 0, 6)),
        annotation(1002, 100, 62, (0, 5, 6, 10), uncompressed_rle(box_mask((H, W), 0, 5, 6, 10))),
        annotation(1004, 100, 18, (0, 3, 8, 12), rle(box_mask((H, W), 0, 3, 10, 12))),  # dog behind the chair
        annotation(2002, 102, 1, (0, 10, 6, 12)),
    ]
    categories = [{"id": i, "name": n} for i, n in ((1, "person"), (18, "dog"), (62, "chair"), (67, "dining table"))]
    path = tmp_path / f"COCO_amodal_{folder}_with_classes.json"
    write_json(path, {"images": _images(tmp_path, folder), "annotations": annotations, "categories": categories})
    return path


def prepare(tmp_path, with_regions):
    for folder in ("train2014", "val2014"):
        classes_file(tmp_path, folder)
        if with_regions:
            regions_file(tmp_path, folder)


