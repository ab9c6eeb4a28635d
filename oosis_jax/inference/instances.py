"""Stage 2 of the paper (Sec. 3.2): from head probabilities (or ground truth) to ordered instances.

Pure numpy + ``crf`` (no JAX), so it runs in worker processes: `crf_inputs` -> CRF labelling
(``crf.solve_many``) -> ``crf.instances`` -> class by majority vote of the semantic prediction over each
instance (Sec. 3.2) -> the ad-hoc confidence of Sec. 5.4. The network forward pass is in `oosis_jax.inference.network`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

import crf
from data import targets
from oosis_jax.inference import crf_inputs
from oosis_jax.inference.augment import resample_labels, resize_map
from oosis_jax.inference.class_split import split_by_class
from oosis_jax.inference.robustness import Robustness, merge_small_instances, merge_unsupported_instances

LAMBDA, MU = 20.0, 100.0  # Eq. (8), Sec. 3.2


@dataclasses.dataclass
class Prediction:
    """One image's OOSIS output (array conventions of ``docs/contracts.md``).

    instance_map: int32 (H, W), 0 = background, 1..N instances. classes: int32 (N,) >= 1.
    scores: float64 (N,) ad-hoc confidences (Sec. 5.4). edges: int32 (M, 2), (a, b) = a occludes b.
    labels: int32 (H, W) occlusion-order labels of the CRF (refined by ``Robustness.class_split`` when on).
    b: float32 (H, W), e: float32 (H, W, 4),
    s: float32 (H, W, C + 1): the head probabilities the prediction was made from.
    """

    instance_map: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    edges: np.ndarray
    labels: np.ndarray
    b: np.ndarray
    e: np.ndarray
    s: np.ndarray


class ImageFailure(ValueError):
    """What a streaming prediction (`Predictor.predict_iter`, `label_ground_truth_iter`) gives in place of a
    `Prediction` for an image it could not predict: ``index`` (the image's position in the input) and
    ``reason`` (what failed, and the error)."""

    def __init__(self, index: int, reason: str):
        self.index, self.reason = index, reason
        super().__init__(f"image {index}: {reason}")

    def __reduce__(self):
        return ImageFailure, (self.index, self.reason)


def majority_classes(instance_map: np.ndarray, s: np.ndarray, num_instances: int) -> np.ndarray:
    """int32 (N,): for each instance, the most frequent foreground argmax of ``s`` (float (H, W, C + 1)) over
    its pixels (Sec. 3.2). The vote is among the classes 1..C: the CRF already decided the pixels are not
    background. Ties go to the lower class id."""
    num_classes = s.shape[-1] - 1
    foreground = np.argmax(s[..., 1:], axis=-1) + 1
    votes = np.bincount(instance_map.ravel() * (num_classes + 1) + foreground.ravel(),
                        minlength=(num_instances + 1) * (num_classes + 1)).reshape(num_instances + 1, -1)
    return np.argmax(votes[1:, 1:], axis=1).astype(np.int32) + 1


def border_pixels(instance_map: np.ndarray) -> np.ndarray:
    """bool (H, W): instance pixels with a 4-neighbour (inside the image) of a different id."""
    border = np.zeros(instance_map.shape, bool)
    horizontal = instance_map[:, 1:] != instance_map[:, :-1]
    vertical = instance_map[1:, :] != instance_map[:-1, :]
    border[:, 1:] |= horizontal
    border[:, :-1] |= horizontal
    border[1:, :] |= vertical
    border[:-1, :] |= vertical
    return border & (instance_map > 0)


def adhoc_scores(instance_map: np.ndarray, b: np.ndarray, num_instances: int) -> np.ndarray:
    """float64 (N,): Sec. 5.4's confidence, sum of ``b`` on the instance's border minus the sum inside.

    ``b`` is the boundary probability, float (H, W); the border is `border_pixels`, the inside the other
    pixels of the instance. Rewards borders on predicted boundaries, no boundaries inside, and size.
    """
    border = border_pixels(instance_map)
    signed = np.where(border, b, -b).astype(np.float64)
    return np.bincount(instance_map.ravel(), weights=signed.ravel(), minlength=num_instances + 1)[1:]


def assemble(labels, s, b, e, link_gap: int = 0) -> Prediction:
    """A `Prediction` from a CRF labelling (int (H, W)) and the heads it was computed from; with ``link_gap``,
    instances up to that many pixels apart are joined in the occlusion graph too (``crf.instances``' gap)."""
    instance_map, edges = crf.instances(labels, link_gap)
    n = int(instance_map.max(initial=0))
    return Prediction(instance_map=instance_map.astype(np.int32), classes=majority_classes(instance_map, s, n),
                      scores=adhoc_scores(instance_map, b, n), edges=np.asarray(edges, np.int32).reshape(-1, 2),
                      labels=np.asarray(labels, np.int32), b=np.asarray(b, np.float32),
                      e=np.asarray(e, np.float32), s=np.asarray(s, np.float32))


def method_name(method) -> str:
    """The name of a CRF ``method`` of ``crf.solve_many`` (a string, or a callable's name)."""
    return method if isinstance(method, str) else getattr(method, "__name__", str(method))


def _label(inputs: list, method, processes, progress: bool, lam: float, mu: float) -> list[np.ndarray]:
    """``crf.solve_many`` with a tqdm bar (``progress``)."""
    # leave=None: cleared when it runs below another bar (`Predictor.predict_iter`'s)
    with tqdm(total=len(inputs), desc=f"crf {method_name(method)}", disable=not progress, leave=None) as bar:
        return crf.solve_many(inputs, method=method, processes=processes, on_done=bar.update, lam=lam, mu=mu)


def label_heads(heads: Sequence[dict], method: str = "solve", processes: int | None = None,
                progress: bool = True, lam: float = LAMBDA, mu: float = MU,
                robustness: Robustness = Robustness(), shapes: Sequence | None = None) -> list[Prediction]:
    """Predictions from per-image head probabilities ``dict(s, b, e)`` (numpy, one image each).

    The CRF runs for all images at once through ``crf.solve_many`` (``method`` "solve" = ``crf.solve``, the
    default; "jump" = the paper's ``crf.jump_moves``; "expansion"; or a picklable callable;
    ``processes=None`` uses every core). ``robustness``: the options of `oosis_jax.inference.robustness` (beyond the
    paper; all off by default), applied to the CRF inputs and to its labelling. ``shapes[i]``: the grid
    ``(H, W)`` of image i's prediction when its heads lie on another (the views' grid,
    `oosis_jax.inference.augment.Augmentation.view_grid`): see `finish`. None = the heads' own grid.
    """
    inputs, failures = prepared(
        lambda h: crf_inputs.predicted_crf_inputs(h["s"], h["b"], h["e"], robustness=robustness), heads, "heads")
    return label_inputs(inputs, heads, method, processes, progress, lam, mu, robustness, shapes, failures)


class BadItem(ValueError):
    """One item of a batch could not be made into CRF inputs (its heads or ground truth are malformed), or its
    CRF result could not be finished (`Predictor.label`; the error that stopped it is its ``__cause__``)."""


def prepared(function, items: Sequence, what: str) -> tuple[list, dict[int, BadItem]]:
    """``function(item)`` of each item, with None in place of a malformed one (``ValueError``, ``KeyError``,
    ``TypeError``), and the failures ``{index: BadItem("bad <what>: ...")}``: one bad item does not stop the others."""
    results, failures = [], {}
    for k, item in enumerate(items):
        try:
            results.append(function(item))
        except (ValueError, KeyError, TypeError) as err:
            results.append(None)
            failures[k] = BadItem(f"bad {what}: {type(err).__name__}: {err}")
    return results, failures


def label_inputs(inputs: Sequence[tuple], heads: Sequence[dict], method: str = "solve",
                 processes: int | None = None, progress: bool = True, lam: float = LAMBDA, mu: float = MU,
                 robustness: Robustness = Robustness(), shapes: Sequence | None = None,
                 failures: dict | None = None) -> list[Prediction]:
    """`label_heads` for CRF inputs built elsewhere: ``inputs[i] = (sigma, occ)`` of image i (float64 (H, W),
    bool (H, W, 4)), ``heads[i]`` its head probabilities (classes and scores come from them); ``failures``:
    ``{i: exception}`` for images whose inputs could not be made (`prepared`; their ``inputs[i]`` is ignored).
    Only the labelling options of ``robustness`` (``min_support``, ``min_area``, ``class_split``, ``link_gap``)
    apply here. When some images fail (``failures``, or the CRF on them), the ``crf.BatchError`` raised names
    each and carries in ``results`` the `Prediction` of every other image (None at the failed ones)."""
    if len(inputs) != len(heads):
        raise ValueError(f"{len(inputs)} CRF inputs but {len(heads)} heads")
    shapes = [None] * len(heads) if shapes is None else list(shapes)
    if len(shapes) != len(heads):
        raise ValueError(f"{len(shapes)} shapes but {len(heads)} heads")
    failures = dict(failures or {})
    good = [k for k in range(len(inputs)) if k not in failures]
    source = "crf.solve_many" if not failures else "labelling"
    try:
        labels = _label([inputs[k] for k in good], method, processes, progress, lam, mu)
    except crf.BatchError as err:
        labels = err.results
        failures.update({good[i]: error for i, error in err.failures.items()})
    results = [None] * len(inputs)
    for x, k in zip(labels, good):
        if x is not None:
            results[k] = finish(x, inputs[k][1], heads[k], robustness, shapes[k])
    if failures:
        raise crf.BatchError(results, failures, source=source)
    return results


def finish(labels: np.ndarray, occ: np.ndarray, heads: dict, robustness: Robustness,
           shape: tuple[int, int] | None = None) -> Prediction:
    """The `Prediction` of one CRF labelling (int (h, w)) after the labelling options of ``robustness``
    (merging unsupported, then small instances; the class split; the graph's ``link_gap``), from the CRF
    input ``occ`` (bool (h, w, 4)) and the head probabilities ``heads`` (``dict(s, b, e)``) it was computed
    from. With a ``shape`` (H, W) other than (h, w), the finished labelling is resampled onto that grid
    (`augment.resample_labels`: the label covering most of each pixel) and the prediction assembled there from
    the heads resampled bilinearly: a labelling on the test-time views' grid brought back to the image's. The
    resampling can leave specks below ``min_area`` cells of the labelling's grid, i.e. below
    ``min_area * H * W / (h * w)`` image pixels; they are merged there too, so every instance keeps the area
    ``min_area`` asks for."""
    labels = merge_small_instances(merge_unsupported_instances(labels, occ, robustness.min_support),
                                   robustness.min_area)
    if robustness.class_split:
        labels = split_by_class(labels, heads["s"], heads["b"], heads["e"], robustness.class_split)
    if shape is not None and tuple(shape) != labels.shape:
        grid = labels.size
        labels = resample_labels(labels, shape)
        labels = merge_small_instances(labels, math.ceil(robustness.min_area * labels.size / grid))
        heads = {k: resize_map(heads[k], shape) for k in ("s", "b", "e")}
    return assemble(labels, heads["s"], heads["b"], heads["e"], robustness.link_gap)


def ground_truth_heads(instance_map, classes, edges, num_classes: int) -> dict:
    """Head probabilities that the ground truth implies: ``dict(s, b, e)`` (Tab. 4 / Fig. 10 setting).

    s: float32 (H, W, num_classes + 1) one-hot of ``targets.semantic_map``; b, e: the B and E targets.
    """
    semantic = targets.semantic_map(instance_map, classes)
    if semantic.max(initial=0) > num_classes:
        raise ValueError(f"class id {semantic.max()} exceeds num_classes={num_classes}")
    b, e = targets.boundary_targets(instance_map, edges)
    return {"s": np.eye(num_classes + 1, dtype=np.float32)[semantic], "b": b.astype(np.float32),
            "e": e.astype(np.float32)}


def ground_truth_heads_of(examples: Iterable[dict], num_classes: int) -> list[dict]:
    """`ground_truth_heads` of each example (dicts with ``instance_map``, ``classes`` and ``edges``)."""
    return [ground_truth_heads(x["instance_map"], x["classes"], x["edges"], num_classes) for x in examples]


def in_chunks(items: Iterable, size: int) -> Iterator[list]:
    """``items`` as consecutive lists of ``size`` (the last may be shorter), read only as each is needed, so
    a dataset split is labelled in the memory of one chunk. When reading ``items`` raises (e.g. a failed disk
    read), the items read before it come as a last chunk and the error propagates after it, so their work is
    not lost."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"chunk size must be a positive int, got {size!r}")
    iterator = iter(items)
    while True:
        chunk = []
        try:
            for item in itertools.islice(iterator, size):
                chunk.append(item)
        except Exception:
            if chunk:
                yield chunk
            raise
        if not chunk:
            return
        yield chunk


def label_ground_truth_iter(examples: Iterable[dict], num_classes: int, chunk_size: int = 32,
                            **options) -> Iterator[tuple[dict, Prediction | ImageFailure]]:
    """`label_ground_truth` ``chunk_size`` examples at a time (``options``: its keyword arguments): one pair
    ``(example, item)`` per example, in order, the item its `Prediction` or, where the CRF fails on it, an
    `ImageFailure`; each example is read once."""
    start = 0
    for chunk in in_chunks(examples, chunk_size):
        try:
            items = label_ground_truth(chunk, num_classes, **options)
        except crf.BatchError as err:
            items = [prediction if k not in err.failures else ImageFailure(start + k, failure_reason(err.failures[k]))
                     for k, prediction in enumerate(err.results)]
        yield from zip(chunk, items)
        start += len(chunk)


def failure_reason(error: Exception) -> str:
    """What an `ImageFailure` says of a labelling failure: a malformed item's own message, else the CRF's."""
    return str(error) if isinstance(error, BadItem) else f"CRF failed: {type(error).__name__}: {error}"


def label_ground_truth(examples: Iterable[dict], num_classes: int, method: str = "solve",
                       processes: int | None = None, progress: bool = True, lam: float = LAMBDA,
                       mu: float = MU) -> list[Prediction]:
    """The CRF fed with ground-truth sigma and O (`crf_inputs.gt_crf_inputs`), one `Prediction` per example.

    ``examples`` are dicts with ``instance_map``, ``classes`` and ``edges`` (a dataset split). When some are
    malformed or the CRF fails on them, the ``crf.BatchError`` raised names each and carries in ``results`` the
    `Prediction` of every other one.
    """
    both, failures = prepared(lambda x: (ground_truth_heads(x["instance_map"], x["classes"], x["edges"], num_classes),
                                         crf_inputs.gt_crf_inputs(x["instance_map"], x["edges"])),
                              list(examples), "ground truth")
    heads, inputs = [None if b is None else b[0] for b in both], [None if b is None else b[1] for b in both]
    return label_inputs(inputs, heads, method, processes, progress, lam, mu, failures=failures)
