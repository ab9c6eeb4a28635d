"""The one example schema shared by every dataset (synthetic, KINS, COCOA).

Every tfds builder of this project writes exactly these features, and every reader yields dicts that
`encode_example` accepts, so the training pipeline and the evaluation read all datasets the same way.

Decoded example (what `as_data_source(...)[i]` returns):
- ``image_id``: int64 scalar.
- ``image``: uint8 (H, W, 3) RGB.
- ``instance_map``: int32 (H, W); 0 = background, 1..N = instance ids (``docs/contracts.md``).
- ``classes``: int32 (N,); contiguous training class ids 1..C of instances 1..N (0 is background).
- ``edges``: int32 (M, 2); row (a, b) = instance a occludes instance b.
- ``depths``: float32 (N,); distance of each instance from the camera where the dataset knows it
  (synthetic scenes), NaN where it does not (KINS, COCOA).
"""

from __future__ import annotations

import io

import numpy as np
import PIL.Image


def features(image_encoding: str | None = "png"):
    """tfds ``FeaturesDict`` of the shared schema (imported lazily: tfds is heavy to import)."""
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(
        {
            "image_id": np.int64,
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format=image_encoding),
            "instance_map": tfds.features.Tensor(shape=(None, None), dtype=np.int32, encoding="zlib"),
            "classes": tfds.features.Tensor(shape=(None,), dtype=np.int32),
            "edges": tfds.features.Tensor(shape=(None, 2), dtype=np.int32),
            "depths": tfds.features.Tensor(shape=(None,), dtype=np.float32),
        }
    )


def validate_example(example: dict) -> None:
    """Raise ``ValueError`` naming the problem when a decoded example breaks the schema above."""
    for key in ("image_id", "image", "instance_map", "classes", "edges", "depths"):
        if key not in example:
            raise ValueError(f"example is missing the feature {key!r}")
    validate_image(example["image"], np.shape(example["instance_map"]))
    validate_annotations(example["instance_map"], example["classes"], example["edges"], example["depths"])


def validate_image(image, shape: tuple) -> None:
    """``ValueError`` unless ``image`` is a non-empty uint8 (H, W, 3) array and (H, W) is the instance map's
    ``shape``."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    if tuple(shape) != image.shape[:2]:
        raise ValueError(f"instance_map must be (H, W) = {image.shape[:2]}, got {tuple(shape)}")


def validate_annotations(instance_map, classes, edges, depths=None) -> None:
    """``ValueError`` naming the problem unless ``instance_map`` is an integer (H, W) array of ids 0..N,
    ``classes`` integer (N,) ids >= 1, ``edges`` integer (M, 2) pairs of ids 1..N without self-loops (empty:
    any shape) and ``depths``, when given, of shape (N,). Checked on the arrays as given, before any cast, so
    that no id wraps around or is truncated into another one."""
    inst, classes, edges = np.asarray(instance_map), np.asarray(classes), np.asarray(edges)
    if inst.ndim != 2 or inst.dtype.kind not in "iu":
        raise ValueError(f"instance_map must be an integer (H, W) array, got {inst.dtype} {inst.shape}")
    if classes.ndim != 1 or (classes.size and classes.dtype.kind not in "iu"):
        raise ValueError(f"classes must be an integer (N,) array, got {classes.dtype} {classes.shape}")
    n = len(classes)
    if inst.size and (inst.min() < 0 or inst.max() > n):
        raise ValueError(f"instance_map ids must lie in 0..{n} (len(classes)), got {inst.min()}..{inst.max()}")
    if n and (classes.min() < 1 or classes.max() > np.iinfo(np.int32).max):
        raise ValueError(f"class ids must lie in 1..2**31-1 (0 is background), got {classes.min()}..{classes.max()}")
    if edges.size and (edges.ndim != 2 or edges.shape[1] != 2 or edges.dtype.kind not in "iu"):
        raise ValueError(f"edges must be an integer (M, 2) array, got {edges.dtype} {edges.shape}")
    if edges.size and (edges.min() < 1 or edges.max() > n):
        raise ValueError(f"edges name instances outside 1..{n}: {edges.min()}..{edges.max()}")
    if edges.size and np.any(edges[:, 0] == edges[:, 1]):
        loop = edges[edges[:, 0] == edges[:, 1]][0]
        raise ValueError(f"edges hold a self-loop (an instance occluding itself): {loop}")
    if depths is not None and np.shape(depths) != (n,):
        raise ValueError(f"depths must have shape ({n},), got {np.shape(depths)}")


def encode_example(example: dict) -> dict:
    """Validate a reader's dict and cast it to the schema's dtypes, ready for a tfds generator.

    ``image`` may be a uint8 array (validated with the rest, then PNG-encoded here: tfds needs TensorFlow to
    encode an array), a path or encoded bytes (tfds reads/stores them as they are; the annotations are validated
    all the same); a missing ``depths`` becomes NaN.
    """
    validate_annotations(example["instance_map"], example["classes"], example["edges"], example.get("depths"))
    n = len(example["classes"])
    out = {
        "image_id": int(example["image_id"]),
        "image": example["image"],
        "instance_map": np.asarray(example["instance_map"], dtype=np.int32),
        "classes": np.asarray(example["classes"], dtype=np.int32).reshape(n),
        "edges": np.asarray(example["edges"], dtype=np.int32).reshape(-1, 2),
        "depths": np.asarray(example.get("depths", np.full(n, np.nan)), dtype=np.float32).reshape(n),
    }
    if isinstance(out["image"], np.ndarray):
        validate_image(out["image"], out["instance_map"].shape)  # the annotations are validated above
        out["image"] = png_bytes(out["image"])
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """PNG-encode a uint8 (H, W, 3) image with PIL, at the lowest zlib level: textured images barely
    compress, and encoding would otherwise dominate build time."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(image).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()
