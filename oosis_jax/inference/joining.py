"""Joining the pieces of an object that an occluder cuts in two: an option beyond the paper.

The paper's instances are the connected components of the CRF labelling (Sec. 3.2), so an object seen on
both sides of a pole, a person or through a frame's hole comes out as two instances, each holding only part
of it. On the synthetic validation scenes 38 % of the ground-truth instances are cut this way, and they
make up about four fifths of the instances lost as fragments (RESULTS.md, "Eleventh round").

`join_candidates` proposes pairs of pieces that could be one object: two instances of the same class that
do not touch, whose nearest pixels are at most ``max_gap`` px apart, with at least half of the gap between them
(the pixels on paths from one to the other at most a pixel longer than the shortest) covered by instances in
front of both (an occluder). `JoinModel` scores each pair
from the features `JOIN_FEATURES` (geometry, depth labels and colours of the two pieces: an object's parts
keep their colours on both sides of the occluder; every feature is the same for a left-right mirror of the
image, so a mirrored image gets the same joins) by a logistic model of the features and their products,
fitted to "both pieces lie mostly (>= 70 %) in the same ground-truth instance" on validation scenes
(`fit_join_model`), and `join_pieces` joins the pairs scored above its threshold, best
first, skipping a join that would put instances on a cycle of the occlusion graph. A joined instance is
one id over several components; the occlusion edges of its pieces become its edges.
"""

from __future__ import annotations

import dataclasses
import reprlib

import numpy as np
from scipy import ndimage

from data.targets import touching_pairs
from oosis_jax.inference.instances import Prediction, adhoc_scores
from oosis_jax.inference.scoring import check_feature_names, fit_logistic, logistic

MAX_GAP = 25  # px between the nearest pixels of two pieces
MIN_FRONT = 0.5  # share of the gap between the pieces covered by instances in front of both
SAME_OBJECT = 0.7  # fitting target: both pieces hold this share of their pixels in one ground-truth instance
NUM_CLASSES = 5  # class one-hot features: the synthetic classes (other classes share the last slot)

JOIN_FEATURES = (
    "gap (px)", "share of the gap in front of both", "share of the gap on instances", "label difference",
    "log smaller area", "log larger area", "row overlap", "column overlap", "a shared neighbour in front",
    "log joint box aspect", "log smaller piece aspect", "log larger piece aspect", "joint box fill",
    "top offset", "bottom offset", "smaller side offset", "larger side offset", "log joint box area",
    "mean colour distance", "median colour distance", "colour spread difference",
    "colour histogram intersection (4 levels)", "colour histogram intersection (8 levels)",
    *(f"class {c}" for c in range(1, NUM_CLASSES + 1)),
    *(f"log joint box aspect x class {c}" for c in range(1, NUM_CLASSES + 1)))


def _neighbours(instance_map: np.ndarray, n: int) -> list[set]:
    """For each id 0..n, the set of instance ids 4-adjacent to it (`data.targets.touching_pairs`)."""
    sets = [set() for _ in range(n + 1)]
    for u, v in touching_pairs(instance_map).tolist():
        sets[u].add(v)
        sets[v].add(u)
    return sets


def _intersects(box: tuple[slice, slice], window: tuple[slice, slice]) -> bool:
    return all(a.start < b.stop and b.start < a.stop for a, b in zip(box, window))


def _overlap(a: slice, b: slice) -> float:
    return max(0, min(a.stop, b.stop) - max(a.start, b.start)) / max(1, min(a.stop - a.start, b.stop - b.start))


def _histogram(colours: np.ndarray, levels: int) -> np.ndarray:
    """A piece's RGB histogram (``levels`` bins per channel), summing to 1."""
    bins = np.minimum((colours * levels / 256).astype(np.int64), levels - 1)
    codes = (bins[:, 0] * levels + bins[:, 1]) * levels + bins[:, 2]
    return np.bincount(codes, minlength=levels ** 3) / len(codes)


def _colour_statistics(k: int, image: np.ndarray, instance_map: np.ndarray, boxes) -> tuple:
    """Piece ``k``'s mean, median and spread of colour and its 4- and 8-level histograms (computed once per
    piece: a large piece is a candidate of many pairs)."""
    box = boxes[k - 1]
    colours = image[box][instance_map[box] == k].astype(np.float64)
    return (colours.mean(0), np.median(colours, 0), colours.std(0), _histogram(colours, 4),
            _histogram(colours, 8))


def _pair_features(i, j, gap, front, inner, lab, area, boxes, neighbours, instance_map, classes,
                   colours_of) -> np.ndarray:
    (ri, ci), (rj, cj) = boxes[i - 1], boxes[j - 1]
    top, bottom = min(ri.start, rj.start), max(ri.stop, rj.stop)
    left, right = min(ci.start, cj.start), max(ci.stop, cj.stop)
    height, width = bottom - top, right - left
    aspects = sorted([np.log((ci.stop - ci.start) / (ri.stop - ri.start)),
                      np.log((cj.stop - cj.start) / (rj.stop - rj.start))])
    box_ids = instance_map[top:bottom, left:right]
    fill = (area[i] + area[j] + np.sum(lab[box_ids] > max(lab[i], lab[j]))) / (height * width)
    (mean_i, median_i, spread_i, *histograms_i), (mean_j, median_j, spread_j, *histograms_j) = \
        colours_of(i), colours_of(j)
    one_hot = np.eye(NUM_CLASSES)[min(int(classes[i - 1]), NUM_CLASSES) - 1]
    joint_aspect = np.log(width / height)
    return np.array([
        gap, front, (inner > 0).mean(), abs(lab[i] - lab[j]),
        np.log(min(area[i], area[j])), np.log(max(area[i], area[j])), _overlap(ri, rj), _overlap(ci, cj),
        float(any(lab[k] > max(lab[i], lab[j]) for k in neighbours[i] & neighbours[j])),
        joint_aspect, *aspects, fill,
        abs(ri.start - rj.start) / height, abs(ri.stop - rj.stop) / height,
        *sorted([abs(ci.start - cj.start) / width, abs(ci.stop - cj.stop) / width]), np.log(height * width),
        np.linalg.norm(mean_i - mean_j) / 255, np.linalg.norm(median_i - median_j) / 255,
        np.linalg.norm(spread_i - spread_j) / 255,
        *(float(np.minimum(a, b).sum()) for a, b in zip(histograms_i, histograms_j)),
        *one_hot, *(joint_aspect * one_hot)])


def join_candidates(prediction: Prediction, image: np.ndarray, max_gap: float = MAX_GAP):
    """The pairs of pieces of ``prediction`` that could be one object cut by an occluder, and their features.

    ``image``: uint8 (H, W, 3), the image predicted (``prediction.instance_map`` is int (H, W) with
    ``labels`` the CRF's occlusion-order labels on the same grid). Returns ``(pairs, features)``: int64
    (K, 2) with ids i < j, and float64 (K, len(JOIN_FEATURES)).
    """
    instance_map, labels = np.asarray(prediction.instance_map), np.asarray(prediction.labels)
    image = np.asarray(image)
    if image.shape[:2] != instance_map.shape or labels.shape != instance_map.shape:
        raise ValueError(f"image {image.shape[:2]}, instance map {instance_map.shape} and labels {labels.shape} "
                         "must share one grid")
    n, classes = len(prediction.classes), np.asarray(prediction.classes)
    lab = np.zeros(n + 1, np.int64)
    lab[instance_map.ravel()] = labels.ravel()
    area = np.bincount(instance_map.ravel(), minlength=n + 1)
    boxes = ndimage.find_objects(instance_map, max_label=n)
    neighbours = _neighbours(instance_map, n)
    reach, (height, width) = int(np.ceil(max_gap)) + 1, instance_map.shape
    pairs, features, statistics = [], [], {}

    def colours_of(k):
        if k not in statistics:
            statistics[k] = _colour_statistics(k, image, instance_map, boxes)
        return statistics[k]

    for i in range(1, n + 1):
        if boxes[i - 1] is None:
            continue
        # every pixel within max_gap of instance i lies in its box widened by `reach`: distances there are exact
        rows, cols = boxes[i - 1]
        window = (slice(max(rows.start - reach, 0), min(rows.stop + reach, height)),
                  slice(max(cols.start - reach, 0), min(cols.stop + reach, width)))
        partners = [j for j in range(i + 1, n + 1) if classes[j - 1] == classes[i - 1] and j not in neighbours[i]
                    and boxes[j - 1] is not None and _intersects(boxes[j - 1], window)]
        if not partners:
            continue
        crop = instance_map[window]
        distance = ndimage.distance_transform_edt(crop != i)
        for j in partners:
            # the part of the window within `reach` of j's box holds every pixel of j there and every pixel
            # within max_gap + 1 of them: the gap's distances are exact on it
            near_j = tuple(slice(max(b.start - reach, w.start) - w.start, min(b.stop + reach, w.stop) - w.start)
                           for b, w in zip(boxes[j - 1], window))
            sub, sub_distance = crop[near_j], distance[near_j]
            to_j = np.where(sub == j, sub_distance, np.inf)
            q = np.unravel_index(np.argmin(to_j), to_j.shape)
            if to_j[q] > max_gap:
                continue
            # the gap: pixels on a path between the pieces at most one pixel longer than the shortest
            bridge = sub_distance + ndimage.distance_transform_edt(sub != j) <= to_j[q] + 1.0
            inner = sub[bridge & (sub != i) & (sub != j)]
            front = np.mean(lab[inner] > max(lab[i], lab[j])) if inner.size else 0.0
            if front < MIN_FRONT:
                continue
            pairs.append((i, j))
            features.append(_pair_features(i, j, float(to_j[q]), front, inner, lab, area, boxes, neighbours,
                                           instance_map, classes, colours_of))
    return (np.asarray(pairs, np.int64).reshape(-1, 2),
            np.asarray(features, np.float64).reshape(-1, len(JOIN_FEATURES)))


def _products(features: np.ndarray) -> np.ndarray:
    """The features and all their pairwise products (squares included): float (K, F + F (F + 1) / 2)."""
    rows, cols = np.triu_indices(features.shape[1])
    return np.c_[features, features[:, rows] * features[:, cols]]


@dataclasses.dataclass(frozen=True)
class JoinModel:
    """p(same object) = sigmoid(w . (x - mean) / scale + bias) for x = `_products` of a pair's `JOIN_FEATURES`;
    pairs with p >= ``threshold`` are joined (`join_pieces`)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.5

    def __post_init__(self):
        f = len(JOIN_FEATURES)
        k = f + f * (f + 1) // 2
        if not len(self.mean) == len(self.scale) == len(self.weights) == k:
            raise ValueError(f"a JoinModel needs {k} means, scales and weights, got {len(self.mean)}, "
                             f"{len(self.scale)}, {len(self.weights)}")
        values = [*self.mean, *self.scale, *self.weights, self.bias, self.threshold]
        if not np.all(np.isfinite(values)) or min(self.scale) <= 0 or not 0.0 < self.threshold < 1.0:
            raise ValueError("a JoinModel needs finite values, positive scales and a threshold in (0, 1)")

    def __call__(self, features) -> np.ndarray:
        """float64 (K,) probabilities for pair features float (K, len(JOIN_FEATURES))."""
        x = _products(np.asarray(features, np.float64).reshape(-1, len(JOIN_FEATURES)))
        return logistic(x, self.mean, self.scale, self.weights, self.bias)

    @classmethod
    def fit(cls, features, targets, l2: float = 10.0, threshold: float = 0.5) -> "JoinModel":
        """The model of ``features`` (float (K, len(JOIN_FEATURES)), K >= 2) against ``targets`` (float (K,)
        in [0, 1]); the strong ``l2`` keeps the many products from fitting noise."""
        x, y = np.asarray(features, np.float64), np.asarray(targets, np.float64)
        if x.ndim != 2 or x.shape[1] != len(JOIN_FEATURES) or y.shape != (len(x),) or len(x) < 2:
            raise ValueError(f"need features (K, {len(JOIN_FEATURES)}) and targets (K,) with K >= 2, "
                             f"got {x.shape}, {y.shape}")
        if not (np.all(np.isfinite(x)) and np.all((y >= 0) & (y <= 1))):
            raise ValueError("features must be finite and targets in [0, 1]")
        mean, scale, w = fit_logistic(_products(x), y, l2)
        return cls(tuple(mean.tolist()), tuple(scale.tolist()), tuple(w[:-1].tolist()), float(w[-1]), threshold)

    def to_dict(self) -> dict:
        """The model's values and the names of the features it was fitted on (`JOIN_FEATURES`)."""
        return {**dataclasses.asdict(self), "features": list(JOIN_FEATURES)}

    @classmethod
    def from_dict(cls, values: dict) -> "JoinModel":
        """The model `to_dict` wrote; ``ValueError`` for one fitted on other features than `JOIN_FEATURES` (an
        earlier version's, which had the same number of values but other meanings: refit it)."""
        try:
            features = values.get("features")
            model = cls(tuple(values["mean"]), tuple(values["scale"]), tuple(values["weights"]),
                        float(values["bias"]), float(values["threshold"]))
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a JoinModel: {reprlib.repr(values)} ({err!r})") from err
        check_feature_names(features, JOIN_FEATURES, "join model", "experiments.export_model --fit-joins")
        return model


def _acyclic(num_nodes: int, edges: np.ndarray) -> bool:
    """Whether the directed graph on nodes 0..num_nodes-1 with ``edges`` (int (M, 2)) has no cycle (Kahn)."""
    indegree = np.bincount(edges[:, 1], minlength=num_nodes)
    successors = [[] for _ in range(num_nodes)]
    for a, b in edges.tolist():
        successors[a].append(b)
    ready, seen = [v for v in range(num_nodes) if indegree[v] == 0], 0
    while ready:
        seen += 1
        for b in successors[ready.pop()]:
            indegree[b] -= 1
            if indegree[b] == 0:
                ready.append(b)
    return seen == num_nodes


def _merged_edges(roots: np.ndarray, edges: np.ndarray) -> np.ndarray:
    merged = roots[edges]
    return np.unique(merged[merged[:, 0] != merged[:, 1]], axis=0).reshape(-1, 2)


def join_pieces(prediction: Prediction, pairs: np.ndarray, probabilities: np.ndarray,
                threshold: float) -> Prediction:
    """``prediction`` with the ``pairs`` (int (K, 2) of ids) whose ``probabilities`` (finite float (K,)) reach
    ``threshold`` joined, most probable first; a join that would close a cycle in the occlusion graph is
    skipped, and so is one between pieces that an occlusion edge already orders. Ids are renumbered 1..N' in
    order of their smallest piece id; edges are the pieces' edges between different instances; classes are
    kept (joined pieces share one); scores are recomputed ad hoc (Sec. 5.4)."""
    n = len(prediction.classes)
    edges = np.asarray(prediction.edges, np.int64).reshape(-1, 2)
    pairs, probabilities = np.asarray(pairs, np.int64).reshape(-1, 2), np.asarray(probabilities, np.float64)
    if len(probabilities) != len(pairs) or not np.isfinite(probabilities).all():
        raise ValueError(f"need one finite probability per pair, got {probabilities.shape} for {len(pairs)} pairs")
    outside = (pairs < 1) | (pairs > n)
    if outside.any():
        k = int(np.flatnonzero(outside.any(axis=1))[0])
        raise ValueError(f"pair {k} is {pairs[k].tolist()}: instance ids run from 1 to {n} (0 is the background)")
    roots = np.arange(n + 1)
    for k in np.argsort(-probabilities, kind="stable"):
        if probabilities[k] < threshold:
            break
        a, b = roots[pairs[k]]
        if a == b:
            continue
        trial = np.where(roots == max(a, b), min(a, b), roots)
        # an edge between the two (groups of) pieces says they lie at different depths: never one object
        after, before = trial[edges], roots[edges]
        ordered = np.any((after[:, 0] == after[:, 1]) & (before[:, 0] != before[:, 1]))
        if not ordered and _acyclic(n + 1, _merged_edges(trial, edges)):
            roots = trial
    if np.array_equal(roots, np.arange(n + 1)):
        return prediction
    kept, renumber = np.unique(roots, return_inverse=True)  # kept[0] == 0: background stays 0
    instance_map = renumber[np.asarray(prediction.instance_map)].astype(np.int32)
    classes = np.asarray(prediction.classes, np.int32)[kept[1:] - 1]
    new_edges = _merged_edges(renumber, edges).astype(np.int32)
    return dataclasses.replace(prediction, instance_map=instance_map, classes=classes, edges=new_edges,
                               scores=adhoc_scores(instance_map, prediction.b, len(classes)))


def join(prediction: Prediction, image: np.ndarray, model: JoinModel) -> Prediction:
    """`join_pieces` with ``model``'s probabilities for the `join_candidates` of ``prediction``."""
    pairs, features = join_candidates(prediction, image)
    if not len(pairs):
        return prediction
    return join_pieces(prediction, pairs, model(features), model.threshold)


def same_object(prediction: Prediction, gt_instance_map: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """float64 (K,): 1 where both pieces of a pair hold >= `SAME_OBJECT` of their pixels in one ground-truth
    instance of ``gt_instance_map`` (int (H, W), 0 = background), else 0."""
    from oosis_jax.evaluation.metrics import intersections  # fitting only: keeps prediction free of the metrics

    instance_map, gt = np.asarray(prediction.instance_map, np.int64), np.asarray(gt_instance_map, np.int64)
    if gt.shape != instance_map.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {instance_map.shape} differ in shape")
    n, m = len(prediction.classes), int(gt.max(initial=0))
    table = intersections(instance_map, gt, n, m)  # (n + 1, m + 1): rows the pieces, columns the true instances
    owner = np.argmax(table[:, 1:], axis=1) + 1 if m else np.zeros(n + 1, np.int64)
    share = table[np.arange(n + 1), owner] / np.maximum(table.sum(1), 1) if m else np.zeros(n + 1)
    i, j = pairs[:, 0], pairs[:, 1]
    return ((owner[i] == owner[j]) & (share[i] >= SAME_OBJECT) & (share[j] >= SAME_OBJECT)).astype(np.float64)


def fit_join_model(predictions, images, ground_truths, l2: float = 10.0, threshold: float = 0.5) -> JoinModel:
    """A `JoinModel` fitted on the candidates of ``predictions`` (unjoined `Prediction`s of ``images``) against
    the ``ground_truths`` (dicts with ``instance_map``) of the same images."""
    if not len(predictions) == len(images) == len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions, {len(images)} images, {len(ground_truths)} ground truths")
    features, targets = [], []
    for prediction, image, truth in zip(predictions, images, ground_truths):
        pairs, pair_features = join_candidates(prediction, image)
        features.append(pair_features)
        targets.append(same_object(prediction, truth["instance_map"], pairs))
    targets = np.concatenate(targets)
    if len(targets) < 2 or targets.min() == targets.max():
        raise ValueError(f"fitting a join model needs candidate pairs of both kinds (pieces of one object and of "
                         f"two); these predictions have {int(targets.sum())} of one and {int((1 - targets).sum())} "
                         "of two")
    return JoinModel.fit(np.concatenate(features), targets, l2, threshold)
