"""Training and evaluation batches from any random-access source of decoded examples (``data/features.py``).

Geometric augmentation (random scale, horizontal flip, random crop padded with ``IGNORE_LABEL``) is applied
to the image and the *instance map*; the targets S, B, E of Eq. (4) are then computed from the transformed
instance map with ``data.targets``, so a flip mirrors the orientation targets (left <-> right) by
construction and the crop border never invents boundaries: the targets are computed on the crop window
grown by one pixel, inside the scaled image, then trimmed. Shrinking can close a background gap narrower
than a pixel, so that two instances touch without an edge: with the example's ``depths`` the nearer one
occludes the farther (the synthetic scenes' own rule), without them their contact pixels are left out of
every loss term (`closed_gaps`). Photometric jitter changes only the image.

Batches are dicts of numpy arrays: ``image`` float32 ``(b, h, w, 3)`` normalised (``normalize_images``),
``semantic`` int32 ``(b, h, w)`` (0 background, 1..C, ``IGNORE_LABEL`` outside the image and where two instances
touch with no known order, `closed_gaps`), ``boundary``
float32 ``(b, h, w)``, ``orientation`` float32 ``(b, h, w, 4)`` and ``area`` float32 ``(b, h, w)`` (the visible
area, in pixels of the scaled image before cropping, of the instance each pixel shows; 0 on background and
padding: `oosis_jax.training.losses.LossConfig.small_weight` weighs small instances by it).

The training stream is a grain ``MapDataset``: shuffled per epoch, augmented with a generator seeded by
(seed, position), and indexed by step, so it is deterministic per seed and resumes exactly from a step.
Each process reads only its own share of every global batch (``process_index::process_count``).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from typing import NoReturn

import grain
import numpy as np
from PIL import Image

from data import targets
from data.features import validate_annotations, validate_image
from oosis_jax.training.losses import IGNORE_LABEL
from oosis_jax.models.config import check_types
from oosis_jax.models.outputs import PAD_COLOR, normalize_images


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Random training transforms (defaults: the PSPNet reference's scale range and the paper's 225 crops).

    ``brightness``/``contrast``/``saturation``: maximal relative change x in [0, 1], a factor drawn uniformly in
    [1 - x, 1 + x] (above 1 a negative factor would invert the image).
    """

    crop_size: tuple[int, int] = (225, 225)
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __post_init__(self):
        check_types(self)
        if len(self.crop_size) != 2 or min(self.crop_size) < 1:
            raise ValueError(f"crop_size must be two positive ints, got {self.crop_size}")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {self.scale_range}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} (a maximal relative change) must lie in [0, 1], got {getattr(self, name)}")


def _check_example(example) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    for key in ("image", "instance_map", "classes", "edges"):
        if key not in example:
            raise ValueError(f"example is missing {key!r}")
    image, inst = np.asarray(example["image"]), np.asarray(example["instance_map"])
    validate_image(image, inst.shape)
    validate_annotations(inst, example["classes"], example["edges"], example.get("depths"))
    classes = np.asarray(example["classes"])
    if classes.size and classes.max() >= IGNORE_LABEL:
        raise ValueError(f"class id {classes.max()} is not below {IGNORE_LABEL}, the label of ignored pixels")
    return image, inst.astype(np.int32), classes, np.asarray(example["edges"]).reshape(-1, 2)


class _Numbered:
    """A source whose items carry their index: ``source[i]`` -> ``(i, source[i])`` (`_each_example`)."""

    def __init__(self, source):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index):
        try:
            return index, self.source[index]
        except Exception as err:  # any error, named by its example
            _raise_named(index, err)


def _each_example(function, num_classes: int | None):
    """``function(example, *args)`` applied to a `_Numbered` item, any exception of it a ``ValueError`` naming the
    example's index in the source (`_raise_named`); with ``num_classes``, a class id beyond it is one (the loss would
    read NaN)."""
    def call(item, *args):
        index, example = item
        try:
            classes = np.asarray(example["classes"]) if "classes" in example else np.zeros(0, int)
            if num_classes is not None and classes.size and classes.max() > num_classes:
                raise ValueError(f"class id {classes.max()} is beyond the model's {num_classes} classes")
            return function(example, *args)
        except Exception as err:  # any error, named by its example
            _raise_named(index, err)
    return call


def _raise_named(index: int, err: Exception) -> NoReturn:
    """Raise ``err``, which is being handled, naming example ``index`` of the source: a ``ValueError`` (a bad
    example) as a ``ValueError`` whose message starts with the example; another error (a bug, a failing read) with
    its own type and traceback and a note naming the example, except in a loader worker process, where it becomes
    such a ``ValueError`` too (its type in the message, the original as its cause): the worker must send it back
    pickled, and an error that could not be (one holding a lock, or of a class defined in the main script) left
    the run waiting for a batch that never came."""
    if type(err) is ValueError or multiprocessing.parent_process() is not None:
        kind = "" if type(err) is ValueError else f"{type(err).__name__}: "
        raise ValueError(f"example {index} of the source: {kind}{err}") from err
    err.add_note(f"(example {index} of the source)")
    raise err


def _resize(image: np.ndarray, inst: np.ndarray, height: int, width: int):
    """Bilinear image, nearest-neighbour instance map (ids must never blend)."""
    if min(height, width) < 1:
        raise ValueError(f"cannot resize to {(height, width)}")
    image = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
    inst = np.asarray(Image.fromarray(inst).resize((width, height), Image.NEAREST), np.int32)
    return image, inst


def closed_gaps(before: np.ndarray, after: np.ndarray, edges: np.ndarray,
                depths=None) -> tuple[np.ndarray, np.ndarray]:
    """Edges for the instances that touch in ``after`` (int (h, w), ``before`` (int (H, W)) resized) but not in
    ``before``, and have no edge in ``edges`` (int (M, 2)): where shrinking closed a background gap, the true
    boundary there has no target. (Pairs that touched before without an edge keep having none: KINS gives no
    relation to touching objects of different occlusion clusters.)

    Returns ``(edges, unordered)``: ``edges`` with such pairs added nearer -> farther where ``depths`` (float
    (N,), distance of instance i + 1; smaller = nearer, as ``data.synthetic``'s) are finite for both, and
    int (K, 2) ``unordered`` pairs without that knowledge (KINS, COCOA: NaN depths)."""
    old = {tuple(p) for p in targets.touching_pairs(before).tolist()}
    old |= {(min(a, b), max(a, b)) for a, b in edges.tolist()}
    new = np.array([p for p in targets.touching_pairs(after).tolist() if tuple(p) not in old],
                   np.int64).reshape(-1, 2)
    if not len(new):
        return edges, new
    depths = np.full(int(new.max()), np.nan) if depths is None else np.asarray(depths, np.float64).ravel()
    if len(depths) < new.max():
        raise ValueError(f"depths has {len(depths)} values, but instance_map has id {new.max()}")
    near = depths[new - 1]
    ordered = np.isfinite(near).all(axis=1) & (near[:, 0] != near[:, 1])
    oriented = np.where((near[:, 0] < near[:, 1])[:, None], new, new[:, ::-1])[ordered]
    return np.concatenate([edges.astype(np.int64).reshape(-1, 2), oriented]), new[~ordered]


def contact_pixels(inst: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """bool (H, W): the pixels of one instance of a pair of ``pairs`` (int (K, 2)) 4-adjacent to its partner."""
    out = np.zeros(inst.shape, bool)
    if not len(pairs):
        return out
    base = int(inst.max()) + 1
    wanted = np.unique(np.minimum(pairs[:, 0], pairs[:, 1]) * base + np.maximum(pairs[:, 0], pairs[:, 1]))
    for a, b, at_a, at_b in ((inst[:, :-1], inst[:, 1:], out[:, :-1], out[:, 1:]),
                             (inst[:-1, :], inst[1:, :], out[:-1, :], out[1:, :])):
        key = np.minimum(a, b).astype(np.int64) * base + np.maximum(a, b)
        hit = (a != b) & np.isin(key, wanted)
        at_a |= hit
        at_b |= hit
    return out


def _window_targets(inst, classes, edges, top, left, height, width):
    """S, B, E of the image window ``[top, top+height) x [left, left+width)`` (window inside the image).

    Computed on the window grown by one pixel (clipped to the image) so that pixels at the window's edge
    see their true neighbours, then trimmed; edges of instances absent from the window are dropped.
    """
    y0, x0 = max(top - 1, 0), max(left - 1, 0)
    y1, x1 = min(top + height + 1, inst.shape[0]), min(left + width + 1, inst.shape[1])
    grown = inst[y0:y1, x0:x1]
    present = np.zeros(max(int(grown.max()), int(edges.max(initial=0))) + 1, bool)
    present[np.unique(grown)] = True
    kept = edges[present[edges[:, 0]] & present[edges[:, 1]]] if edges.size else edges
    boundary, orientation = targets.boundary_targets(grown, kept)
    semantic = targets.semantic_map(grown, classes)
    trim = (slice(top - y0, top - y0 + height), slice(left - x0, left - x0 + width))
    return semantic[trim], boundary[trim], orientation[trim]


def transform_example(example, *, resize_to=None, flip=False, offset=None, crop_size=None):
    """`transformed` without its window: the targets of one example as a dict (see there)."""
    return transformed(example, resize_to=resize_to, flip=flip, offset=offset, crop_size=crop_size)[0]


def transformed(example, *, resize_to=None, flip=False, offset=None, crop_size=None):
    """Deterministic geometric transform of one example and its targets.

    Args:
      example: dict with ``image`` uint8 (H, W, 3), ``instance_map`` int (H, W), ``classes``, ``edges``.
      resize_to: (height, width) to resize to first; None keeps the size.
      flip: mirror left-right.
      offset: (top, left) of the crop window in the scaled image, negative to pad before the image.
      crop_size: (h, w) of the output; None keeps the scaled size.

    Returns:
      ``(dict, window)``: the dict with ``image`` uint8 (h, w, 3) (padding = the mean colour), ``semantic``
      int32 (h, w) (``IGNORE_LABEL`` on padding and on unordered contacts, below), ``boundary`` float32
      (h, w), ``orientation`` float32 (h, w, 4), ``area`` float32 (h, w): the area of each pixel's instance in
      the scaled image, before the crop (an object cut by the crop keeps its size), 0 on background and
      padding. Instances that the resizing made touch get an edge or are left out where they touch
      (`closed_gaps`, with ``example["depths"]`` if any).
      ``window``: the (rows, columns) slices of the output that show the image (the rest is padding).
    """
    image, inst, classes, edges = _check_example(example)
    unordered = np.zeros((0, 2), np.int64)
    if resize_to is not None:
        before = inst
        image, inst = _resize(image, inst, *resize_to)
        edges, unordered = closed_gaps(before, inst, edges, example.get("depths"))
    if flip:
        image, inst = image[:, ::-1], inst[:, ::-1]
    height, width = inst.shape
    crop_h, crop_w = crop_size or (height, width)
    top, left = offset or (0, 0)
    # The part of the crop window that lies inside the image, in image and in output coordinates.
    iy0, ix0 = max(top, 0), max(left, 0)
    iy1, ix1 = min(top + crop_h, height), min(left + crop_w, width)
    if iy1 <= iy0 or ix1 <= ix0:
        raise ValueError(f"crop window at {offset} of size {(crop_h, crop_w)} misses the {inst.shape} image")
    out = (slice(iy0 - top, iy1 - top), slice(ix0 - left, ix1 - left))
    result = {
        "image": np.broadcast_to(PAD_COLOR, (crop_h, crop_w, 3)).copy(),
        "semantic": np.full((crop_h, crop_w), IGNORE_LABEL, np.int32),
        "boundary": np.zeros((crop_h, crop_w), np.float32),
        "orientation": np.zeros((crop_h, crop_w, 4), np.float32),
        "area": np.zeros((crop_h, crop_w), np.float32),
    }
    result["image"][out] = image[iy0:iy1, ix0:ix1]
    areas = np.bincount(inst.ravel()).astype(np.float32)
    areas[0] = 0.0
    result["area"][out] = areas[inst[iy0:iy1, ix0:ix1]]
    semantic, boundary, orientation = _window_targets(inst, classes, edges, iy0, ix0, iy1 - iy0, ix1 - ix0)
    result["semantic"][out], result["boundary"][out], result["orientation"][out] = semantic, boundary, orientation
    unknown = contact_pixels(inst, unordered)[iy0:iy1, ix0:ix1]
    result["semantic"][out][unknown] = IGNORE_LABEL
    return result, out


def jitter_colors(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig,
                  valid: np.ndarray | None = None) -> np.ndarray:
    """Random brightness, contrast and saturation of a uint8 (h, w, 3) image. The contrast turns about the
    mean of the ``valid`` (h, w) pixels (default all), so that a crop's padding does not move it."""
    x = image.astype(np.float32)
    x = x * (1.0 + rng.uniform(-config.brightness, config.brightness))
    mean = x.mean() if valid is None else x[valid].mean()
    x = (x - mean) * (1.0 + rng.uniform(-config.contrast, config.contrast)) + mean
    gray = x.mean(axis=-1, keepdims=True)
    x = (x - gray) * (1.0 + rng.uniform(-config.saturation, config.saturation)) + gray
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def random_transform(example, rng: np.random.Generator, config: AugmentConfig) -> dict:
    """One random training crop of ``example`` (see ``transform_example``) with photometric jitter."""
    height, width = np.asarray(example["instance_map"]).shape
    s = rng.uniform(*config.scale_range)
    scaled = (max(1, round(height * s)), max(1, round(width * s)))
    crop_h, crop_w = config.crop_size
    offset = tuple(int(rng.integers(0, n - c + 1)) if n >= c else -int(rng.integers(0, c - n + 1))
                   for n, c in zip(scaled, (crop_h, crop_w)))
    flip = bool(config.flip and rng.random() < 0.5)
    out, window = transformed(example, flip=flip, offset=offset, crop_size=config.crop_size, resize_to=scaled)
    valid = np.zeros(config.crop_size, bool)
    valid[window] = True  # the image, unordered contacts included: jittered as the rest
    out["image"][valid] = jitter_colors(out["image"], rng, config, valid)[valid]
    return out


def collate(examples: list[dict]) -> dict[str, np.ndarray]:
    """Stack transformed examples (equal sizes) into a batch and normalise the images."""
    shapes = {e["semantic"].shape for e in examples}
    if len(shapes) != 1:
        raise ValueError(f"examples of one batch must share a size, got {sorted(shapes)}; set eval_batch_size=1 "
                         "or a fixed eval_resolution=(H, W)")
    batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
    batch["image"] = normalize_images(batch["image"])
    return batch


def _shard(ds: grain.MapDataset, process_index: int, process_count: int) -> grain.MapDataset:
    """This process's share of ``ds``: every ``process_count``-th element from ``process_index``."""
    if not 0 <= process_index < process_count:
        raise ValueError(f"bad process {process_index} of {process_count}")
    return ds[process_index::process_count]


def train_dataset(source, config: AugmentConfig, *, batch_size: int, seed: int, process_index: int = 0,
                  process_count: int = 1, num_classes: int | None = None) -> grain.MapDataset:
    """Endless ``MapDataset`` of this process's training batches; element ``step`` is the batch of ``step``.

    ``batch_size`` is the per-process batch; the global batch of a step is the union over processes. A bad
    example (or, with ``num_classes``, one with a class the model lacks) is a ``ValueError`` naming its index.
    """
    if len(source) == 0:
        raise ValueError("the training source is empty")
    if batch_size < 1:
        raise ValueError(f"bad batch_size {batch_size}")
    ds = grain.MapDataset.source(_Numbered(source)).shuffle(seed=seed).repeat(None)
    ds = ds.random_map(_each_example(lambda example, rng: random_transform(example, rng, config), num_classes),
                       seed=seed)
    return _shard(ds, process_index, process_count).batch(batch_size, drop_remainder=True, batch_fn=collate)


def eval_dataset(source, *, batch_size: int = 1, resize_to: tuple[int, int] | None = None,
                 process_index: int = 0, process_count: int = 1, num_classes: int | None = None) -> grain.MapDataset:
    """Un-augmented batches of every example in order (optionally resized to ``resize_to``); the last
    incomplete batch is kept. Examples of a batch must share a size unless ``resize_to`` is given. Split over
    processes, the first ones get one batch more when the count does not divide. Bad examples as in
    `train_dataset`."""
    if len(source) == 0:
        raise ValueError("the evaluation source is empty")
    ds = _shard(grain.MapDataset.source(_Numbered(source)), process_index, process_count)
    ds = ds.map(_each_example(lambda example: transform_example(example, resize_to=resize_to), num_classes))
    return ds.batch(batch_size, batch_fn=collate)


class SyntheticScenes:
    """Random-access source of ``data.synthetic.make_scene`` scenes (seeds ``first_seed + i``), rendered on
    demand: lets CPU runs and tests train without building the tfds dataset first."""

    def __init__(self, count: int, size: tuple[int, int], first_seed: int = 0):
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.count, self.size, self.first_seed = count, tuple(size), first_seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        from data.synthetic import make_scene

        if not 0 <= index < self.count:
            raise IndexError(f"scene {index} out of range 0..{self.count - 1}")
        return make_scene(self.first_seed + int(index), *self.size)
