"""KINS annotation files for tests: the original format (``instances_*.json``) with three small images."""

from __future__ import annotations

from helpers.annotation_files import box, box_mask, rle, write_image, write_json

H, W = 12, 16
CATEGORIES = [{"id": k, "name": n} for k, n in enumerate(
    ["cyclist", "pedestrian", "rider", "car", "tram", "truck", "van", "misc"], start=1)]


def _original(id_, image_id, category, visible, amodal_polygons):
    return {"id": id_, "image_id": image_id, "category_id": category, "inmodal_seg": rle(visible),
            "segmentation": amodal_polygons, "bbox": [0, 0, 1, 1], "area": int(visible.sum()), "iscrowd": 0}


def original_file(tmp_path, name="instances_train.json", image_dir="training/image_2"):
    """instances_train.json: image 7 (occlusion, touching pair, multi-part polygon, a hidden object),
    image 8 (no annotations), image 9 (overlapping visible masks); annotations not in image order."""
    images = [{"id": i, "file_name": f"{i:06d}.png", "height": H, "width": W} for i in (7, 8, 9)]
    for k, entry in enumerate(images):
        write_image(tmp_path / image_dir / entry["file_name"], H, W, seed=k)
    d_visible = box_mask((H, W), 11, 12, 0, 2) | box_mask((H, W), 11, 12, 13, 16)
    annotations = [
        _original(21, 9, 4, box_mask((H, W), 0, 6, 0, 10), [box(0, 6, 0, 10)]),
        _original(22, 9, 7, box_mask((H, W), 3, 9, 6, 13), [box(3, 9, 4, 13)]),
        _original(11, 7, 4, box_mask((H, W), 2, 10, 2, 8), [box(2, 10, 2, 11)]),  # A: behind B
        _original(12, 7, 2, box_mask((H, W), 3, 10, 8, 12), [box(3, 10, 8, 12)]),  # B
        _original(13, 7, 7, box_mask((H, W), 3, 10, 12, 16), [box(3, 10, 12, 16)]),  # C: touches B only
        _original(14, 7, 8, d_visible, [box(11, 12, 0, 2), box(11, 12, 13, 40)]),  # D: two parts, clipped
        _original(15, 7, 4, box_mask((H, W), 4, 7, 3, 6), [box(4, 8, 3, 6)]),  # E: entirely behind A
    ]
    path = tmp_path / name
    write_json(path, {"images": images, "annotations": annotations, "categories": CATEGORIES})
    return path
