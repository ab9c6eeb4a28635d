"""Writing and reading one image's prediction: a JSON with COCO RLE masks, classes, scores and occlusion
edges, and the PNG pictures of the paper's figures (relative depth map, oriented boundaries, overlay).

JSON layout (``FORMAT`` version 1)::

    {"format": "oosis-prediction-1", "height": H, "width": W, "class_names": [...] | null,
     "instances": [{"id": k, "class": c, "score": s, "segmentation": {"size": [H, W], "counts": "..."}}],
     "edges": [[a, b], ...]}      # a occludes b

``read_prediction_json`` inverts it into ``dict(instance_map, classes, scores, edges)``; ``read_image`` reads
one input image (EXIF orientation applied, 16-bit greyscale scaled, unreadable files named) and
``image_files`` lists a folder's; ``check_image`` checks an image given as an array.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from PIL.PngImagePlugin import PngInfo

from crf.inputs import as_array
from data.annotations import integer, is_finite_number
from data.masks import rle_mask
from data.pixels import rgb8
from oosis_jax.evaluation.coco_map import encode_masks
from oosis_jax.evaluation.metrics import validate_instances
from oosis_jax.inference.nms import boundary_nms

FORMAT = "oosis-prediction-1"
MAX_PIXELS = 2**31 - 1  # an int32 instance map's flat index and an RLE's run lengths
PICTURES = ("depth", "boundaries", "overlay")  # write_prediction's PNGs: {stem}_{picture}.png
LABEL_MIN_SCORE = 0.5  # the overlay labels the instances scoring at least this
OVERLAY_KEY = (f"instances: one colour each, outlined in white; those scoring at least {LABEL_MIN_SCORE} labelled with "
               "their id in the JSON, class and score (the most confident first; a label with no free place near "
               "its instance is left out); the background as in the image")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")  # GIF: its first frame


def prediction_json(prediction, class_names=None) -> dict:
    """The JSON-able dict of a `oosis_jax.inference.instances.Prediction` (module docstring)."""
    inst, classes, edges, scores = validate_instances(prediction.instance_map, prediction.classes,
                                                      prediction.edges, prediction.scores, name="prediction")
    rles = encode_masks(inst, len(classes))
    return {
        "format": FORMAT, "height": int(inst.shape[0]), "width": int(inst.shape[1]),
        "class_names": list(class_names) if class_names is not None else None,
        "instances": [{"id": k, "class": int(c), "score": float(s), "segmentation": rle}
                      for k, (c, s, rle) in enumerate(zip(classes, scores, rles), start=1)],
        "edges": edges.tolist(),
    }


def _score(value: object, where: str) -> float:
    """A JSON score: a finite number (not a boolean, not a string, not an integer beyond the floats)."""
    if not is_finite_number(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def read_prediction_json(path) -> dict:
    """``dict(instance_map int32 (H, W), classes int32 (N,), scores float64 (N,), edges int32 (M, 2))``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file and the field for
    malformed content: among others two instances whose masks share pixels (one would vanish from the instance
    map), an RLE whose runs do not cover the image (pycocotools would fill the rest from uninitialised memory),
    a fractional or quoted number where an integer belongs (a class 1.7, an edge [1.9, 2]: never rounded), a
    score that is not a finite number, and a class id beyond ``class_names`` when the file names its classes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction file not found: {path}")
    try:
        content = json.loads(path.read_text())
        if content.get("format") != FORMAT:
            raise ValueError(f"format is {content.get('format')!r}, expected {FORMAT!r}")
        height, width = (integer(content[key], key) for key in ("height", "width"))
        if min(height, width) < 1 or height * width > MAX_PIXELS:
            raise ValueError(f"the image size {height}x{width} is not 1 to {MAX_PIXELS} pixels")
        class_names = content["class_names"]
        if class_names is not None and not (isinstance(class_names, list) and all(isinstance(name, str)
                                                                                 for name in class_names)):
            raise ValueError(f"class_names must be null or a list of strings, got {class_names!r}")
        instances = sorted(content["instances"], key=lambda x: x["id"])
        inst = np.zeros((height, width), np.int32)
        for k, item in enumerate(instances, start=1):
            if item["id"] != k:
                raise ValueError(f"instance ids must be 1..N without gaps, found {item['id']} at position {k}")
            mask = rle_mask(item["segmentation"], height, width, f"instance {k} segmentation")
            shared = inst[mask]
            if shared.any():
                raise ValueError(f"instances {shared[shared > 0].min()} and {k} overlap in "
                                 f"{np.count_nonzero(shared)} pixel(s); each pixel belongs to one instance")
            inst[mask] = k
        classes = np.array([integer(x["class"], f"instance {x['id']} class") for x in instances], np.int64)
        limit = np.iinfo(np.int32).max if class_names is None else len(class_names)  # the maps' classes are int32
        if classes.size and classes.max() > limit:
            k = int(np.argmax(classes)) + 1
            beyond = "the int32 class ids" if class_names is None else f"the {limit} class names {class_names}"
            raise ValueError(f"instance {k} has class {classes[k - 1]}, beyond {beyond}")
        scores = np.array([_score(x["score"], f"instance {x['id']} score") for x in instances], np.float64)
        if not isinstance(content["edges"], list) or not all(isinstance(e, list) and len(e) == 2
                                                            for e in content["edges"]):
            raise ValueError(f"edges must be a list of [occluder, occluded] pairs, got {content['edges']!r}")
        edges = np.array([[integer(v, f"edge {e}") for v in e] for e in content["edges"]], np.int64).reshape(-1, 2)
    except (ValueError, KeyError, TypeError, AttributeError) as err:  # ValueError: JSON, numbers, RLE, shapes
        raise ValueError(f"malformed prediction file {path}: {err!r}") from err
    inst, classes, edges, scores = validate_instances(inst, classes, edges, scores, name=str(path))
    return {"instance_map": inst.astype(np.int32), "classes": classes.astype(np.int32), "scores": scores,
            "edges": edges.astype(np.int32)}


def prediction_paths(out_dir, stem: str) -> list[Path]:
    """The files `write_prediction` writes for ``stem``: ``{stem}.json`` and ``{stem}_{PICTURES}.png``."""
    out_dir = Path(out_dir)
    return [out_dir / f"{stem}.json", *(out_dir / f"{stem}_{name}.png" for name in PICTURES)]


def remove_prediction(out_dir, stem: str) -> None:
    """Delete whichever of ``stem``'s `prediction_paths` exist (an earlier run's outputs of an image that now
    fails would pass for this run's); every path is tried, and an ``OSError`` then names those that remain."""
    remaining = []
    for path in prediction_paths(out_dir, stem):
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            remaining.append(f"{path.name} ({type(err).__name__})")
    if remaining:
        raise OSError(f"could not remove {', '.join(remaining)}")


def picture_keys() -> dict[str, str]:
    """What the colours of each of `write_prediction`'s pictures mean, by picture name (`PICTURES`)."""
    from oosis_jax import visualize

    return dict(zip(PICTURES, (visualize.DEPTH_KEY, visualize.BOUNDARY_KEY, OVERLAY_KEY)))


def overlay_labels(prediction, class_names=None) -> list[str]:
    """``"ID CLASS SCORE"`` of each instance of ``prediction`` scoring at least `LABEL_MIN_SCORE`, ``""`` for the
    others (the id of the JSON's instance list; class c's name ``class_names[c - 1]`` when there is one, its
    number otherwise; the score to 2 decimals): the overlay's labels."""
    known = () if class_names is None else tuple(class_names)
    names = [known[c - 1] if 1 <= c <= len(known) else str(c) for c in np.asarray(prediction.classes).tolist()]
    return [f"{k} {name} {float(s):.2f}" if s >= LABEL_MIN_SCORE else ""
            for k, (name, s) in enumerate(zip(names, prediction.scores), start=1)]


def write_prediction(prediction, image, out_dir, stem: str, class_names=None) -> list[Path]:
    """Write ``{stem}.json`` and the PNGs ``{stem}_depth.png`` (relative depth, Fig. 1/8),
    ``{stem}_boundaries.png`` (oriented boundaries after NMS, Fig. 4 colours) and ``{stem}_overlay.png`` into
    ``out_dir``; returns the paths (`prediction_paths`). ``image`` is uint8 (H, W, 3). Each PNG is H x W, pixel
    for pixel with the image, and carries the key of its colours as its PNG "Description" text (`OVERLAY_KEY`,
    `visualize.DEPTH_KEY`, `visualize.BOUNDARY_KEY`: what a viewer's image properties show).

    The JSON is written last, under a temporary name then renamed, so a JSON is never there without its pictures
    or beside an earlier run's; if any step fails, none of ``stem``'s files remain (earlier ones included)
    and the error is raised."""

    from oosis_jax import visualize

    json_path, *picture_paths = paths = prediction_paths(out_dir, stem)
    partial = json_path.with_name(f".{json_path.name}.partial")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        json_path.unlink(missing_ok=True)
        content = json.dumps(prediction_json(prediction, class_names))
        depth = visualize.relative_depth_map(prediction.instance_map, prediction.edges)
        pictures = (visualize.depth_map_rgb(depth, instance_map=prediction.instance_map),
                    visualize.oriented_boundary_rgb(boundary_nms(prediction.b), prediction.e),
                    visualize.label_instances(visualize.instance_overlay(image, prediction.instance_map),
                                              prediction.instance_map, overlay_labels(prediction, class_names),
                                              order=1 + np.argsort(-np.asarray(prediction.scores), kind="stable")))
        for path, rgb, key in zip(picture_paths, pictures, picture_keys().values()):
            info = PngInfo()
            info.add_text("Description", key)
            Image.fromarray(np.asarray(rgb, np.uint8)).save(path, pnginfo=info)
        partial.write_text(content)
        partial.replace(json_path)
    except BaseException:
        remove_prediction(out_dir, stem)
        partial.unlink(missing_ok=True)
        raise
    return paths


def read_image(path) -> np.ndarray:
    """uint8 (H, W, 3) RGB of one image file, upright as a viewer shows it (the EXIF orientation applied).

    16-bit greyscale is scaled to 8 bits. Raises ``ValueError`` naming the file for an empty, truncated or
    corrupt file or an unsupported pixel mode.
    """
    try:
        if isinstance(path, (str, os.PathLike)) and Path(path).is_file() and Path(path).stat().st_size == 0:
            raise ValueError("the file is empty (0 bytes)")
        with Image.open(path) as image:
            image.load()
            rgb = rgb8(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError, struct.error, Image.DecompressionBombError) as err:
        # struct.error: PIL's EXIF reader on a damaged orientation block (it ended `predict`'s whole folder)
        raise ValueError(f"cannot read image {path}: {err}") from err
    return rgb


def image_files(folder, failures: list | None = None) -> list[Path]:
    """The image files of ``folder`` (suffixes ``IMAGE_SUFFIXES``), sorted by name, none read yet.

    Files whose stems coincide (``x.png`` and ``x.jpg``) would write the same outputs, so both are refused:
    ``ValueError`` naming them, or with a ``failures`` list their ``(file name, reason)`` appended there and the
    other files kept. ``FileNotFoundError`` / ``ValueError`` when the folder is missing or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    kept = []
    for path in files:
        twins = [p.name for p in files if p.stem == path.stem and p != path]
        if not twins:
            kept.append(path)
            continue
        reason = (f"{path.name} and {', '.join(twins)} would write the same outputs {path.stem}.json etc.; "
                  "rename one of them")
        if failures is None:
            raise ValueError(reason)
        failures.append((path.name, reason))
    return kept


def check_image(image, name: str = "image") -> np.ndarray:
    """``image`` as a uint8 (H, W, 3) array with at least one pixel; ``ValueError`` naming ``name`` if not (a str or
    path, the name of a file, points to `read_image`; another non-array object is named by its type)."""
    if isinstance(image, (str, os.PathLike)):
        kind = "str" if isinstance(image, str) else "path"
        raise ValueError(f"{name} is a {kind} ({image!r}), not an image array: read image files with "
                         "oosis_jax.inference.files.read_image")
    array = as_array(name, image)
    if array.ndim == 0 and not isinstance(image, np.ndarray):  # None, a number, a dict, bytes...
        raise ValueError(f"{name} must be a uint8 (H, W, 3) array, got an object of type {type(image).__name__}")
    if array.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is {array.shape[0]}x{array.shape[1]} pixels: an empty image")
    return array


def refuse_one_image(images) -> None:
    """``ValueError`` when ``images`` is one image (an array of 2 or 3 dimensions) where a sequence of images
    belongs: iterated, each of its rows would be taken for an image and fail on its own."""
    if getattr(images, "ndim", None) in (2, 3):
        raise ValueError(f"expected a sequence of uint8 (H, W, 3) images (a list, or an (N, H, W, 3) array), got "
                         f"one array of shape {tuple(images.shape)}: pass [image] for one image")


def checked_images(images: Iterable) -> tuple[dict[int, np.ndarray], dict[int, ValueError]]:
    """``({index: checked image}, {index: its ValueError})`` of every item of ``images`` (`check_image`,
    named ``image i``), read once; one image in place of the sequence: `refuse_one_image`."""
    refuse_one_image(images)
    good, failures = {}, {}
    for i, image in enumerate(images):
        try:
            good[i] = check_image(image, f"image {i}")
        except ValueError as err:
            failures[i] = err
    return good, failures
