"""Per-image OOSIS metrics (pure numpy): weighted coverage, OAIR counts, cycle fraction.

- `weighted_coverage`: Eq. (16) of Sec. 5.4, normalised by the ground-truth instance pixels.
- `oair_counts`: the joint occlusion-order / instance metric of Sec. 4 (one point of an OAIR curve).
- `cycle_fraction`: the share of instances lying on a directed occlusion cycle (Tab. 1).

Array conventions are those of ``docs/contracts.md``: ``instance_map`` is int (H, W) with 0 = background and
1..N = instances, ``classes[k-1]`` / ``scores[k-1]`` belong to instance k, and an ``edges`` row (a, b) means
instance a occludes instance b. Dataset-level aggregation and curves live in `oosis_jax.evaluation.oair`.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from data.annotations import is_finite_number


def validate_instances(instance_map, classes, edges, scores=None, *, name: str = "instances"):
    """Check one labelled image and return it as arrays ``(instance_map, classes, edges, scores)``.

    Returns ``instance_map`` int64 (H, W), ``classes`` int64 (N,), ``edges`` int64 (M, 2) and ``scores``
    float64 (N,) (ones when ``scores`` is None). Raises ``ValueError`` naming ``name`` and the problem for
    non-integer or non-2-D maps, ids outside 0..N with N = len(classes), class ids < 1, edges naming missing
    instances or self-loops, and scores of the wrong length or not finite.
    """
    instance_map = _array(instance_map, name, "instance_map")
    if instance_map.ndim != 2 or instance_map.dtype.kind not in "iu":
        raise ValueError(f"{name}: instance_map must be an integer (H, W) array, got {instance_map.dtype} "
                         f"{instance_map.shape}")
    classes = _array(classes, name, "classes")
    if classes.ndim != 1 or (classes.size and classes.dtype.kind not in "iu"):
        raise ValueError(f"{name}: classes must be an integer (N,) array, got {classes.dtype} {classes.shape}")
    n = classes.shape[0]
    if instance_map.size and (instance_map.min() < 0 or instance_map.max() > n):
        raise ValueError(f"{name}: instance ids must lie in 0..{n} (len(classes)), got "
                         f"{instance_map.min()}..{instance_map.max()}")
    if n and classes.min() < 1:
        raise ValueError(f"{name}: class ids must be >= 1 (0 is background), got {classes.min()}")
    edges = _array(edges, name, "edges")
    if edges.size == 0:
        edges = np.zeros((0, 2), np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2 or edges.dtype.kind not in "iu":
        raise ValueError(f"{name}: edges must be an integer (M, 2) array, got {edges.dtype} {edges.shape}")
    if edges.size and (edges.min() < 1 or edges.max() > n):
        raise ValueError(f"{name}: edges name instances outside 1..{n}: {edges.min()}..{edges.max()}")
    if np.any(edges[:, 0] == edges[:, 1]):
        raise ValueError(f"{name}: edges contain a self-loop (an instance occluding itself)")
    if scores is None:
        scores = np.ones(n)
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: scores must be numbers, got {type(scores).__name__} ({err})") from err
    if scores.shape != (n,):
        raise ValueError(f"{name}: scores must have shape ({n},), got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name}: scores must be finite, got {scores}")
    return (instance_map.astype(np.int64), classes.astype(np.int64), edges.astype(np.int64), scores)


def intersections(gt_map: np.ndarray, pred_map: np.ndarray, num_gt: int, num_pred: int) -> np.ndarray:
    """int64 (num_gt + 1, num_pred + 1): pixel counts of every (gt id, pred id) pair, background included."""
    index = gt_map.ravel() * (num_pred + 1) + pred_map.ravel()
    return np.bincount(index, minlength=(num_gt + 1) * (num_pred + 1)).reshape(num_gt + 1, num_pred + 1)


def iou_matrix(gt_map, pred_map, num_gt: int, num_pred: int) -> np.ndarray:
    """float64 (num_gt, num_pred): IoU of ground-truth instance i+1 with predicted instance j+1.

    Both maps are int (H, W) with ids in 0..num_gt and 0..num_pred; 0 (background) is not a region.
    """
    gt_map, pred_map = np.asarray(gt_map), np.asarray(pred_map)
    if gt_map.shape != pred_map.shape:
        raise ValueError(f"ground-truth map {gt_map.shape} and predicted map {pred_map.shape} differ in shape")
    return ious_of(intersections(gt_map.astype(np.int64), pred_map.astype(np.int64), num_gt, num_pred))


def ious_of(overlap: np.ndarray) -> np.ndarray:
    """float64 (num_gt, num_pred) IoUs from the `intersections` table ``overlap`` (num_gt + 1, num_pred + 1)."""
    gt_area = overlap.sum(axis=1)[1:, None]
    pred_area = overlap.sum(axis=0)[None, 1:]
    inter = overlap[1:, 1:]
    union = gt_area + pred_area - inter
    return np.divide(inter, union, out=np.zeros(inter.shape), where=union > 0)


def _check_maps(gt_map, pred_map):
    gt_map, pred_map = np.asarray(gt_map), np.asarray(pred_map)
    for name, m in (("gt_map", gt_map), ("pred_map", pred_map)):
        if m.ndim != 2 or m.dtype.kind not in "iu":
            raise ValueError(f"{name} must be an integer (H, W) array, got {m.dtype} {m.shape}")
        if m.size and m.min() < 0:
            raise ValueError(f"{name} has negative ids (min {m.min()})")
    if gt_map.shape != pred_map.shape:
        raise ValueError(f"gt_map {gt_map.shape} and pred_map {pred_map.shape} differ in shape")
    return gt_map.astype(np.int64), pred_map.astype(np.int64)


def weighted_coverage(gt_map, pred_map) -> float:
    """Weighted coverage of Eq. (16) for one image, in [0, 1].

    ``sum_i |r_i| max_j IoU(r_i, s_j) / sum_i |r_i|`` over the ground-truth instances r_i (non-zero ids of
    ``gt_map``, int (H, W)) and the predicted segments s_j (non-zero ids of ``pred_map``, int (H, W)).
    Class-agnostic; background (0) is not a region; ids need not be contiguous. Equals 1.0 exactly when every
    ground-truth instance is also a predicted segment. Raises ``ValueError`` for mismatched shapes, negative
    ids, or an image without any ground-truth instance (Eq. (16) is undefined there; datasets skip them).
    """
    gt_map, pred_map = _check_maps(gt_map, pred_map)
    # Relabel to 0..N in id order (0 stays background): memory then grows with the number of instances,
    # not with the product of the largest ids.
    gt_map, pred_map = (np.searchsorted(np.union1d(0, m), m) for m in (gt_map, pred_map))
    num_gt, num_pred = int(gt_map.max(initial=0)), int(pred_map.max(initial=0))
    iou = iou_matrix(gt_map, pred_map, num_gt, num_pred)
    areas = np.bincount(gt_map.ravel(), minlength=num_gt + 1)[1:]
    total = areas.sum()
    if total == 0:
        raise ValueError("weighted_coverage: the ground truth has no instance pixels")
    best = iou.max(axis=1) if num_pred else np.zeros(num_gt)
    return float(np.dot(areas, best) / total)


def has_path(num_instances: int, edges, sources, targets) -> np.ndarray:
    """bool (K,): whether the graph (ids 1..N, ``edges`` int (M, 2)) has a directed path of length >= 1 from
    ``sources[k]`` to ``targets[k]`` (1-based ids). Breadth-first searches start only from the given sources."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    sources, targets = np.asarray(sources, np.int64), np.asarray(targets, np.int64)
    if sources.size == 0:
        return np.zeros(0, bool)
    starts, row = np.unique(sources, return_inverse=True)
    graph = _graph(num_instances, edges)
    dist = csgraph.shortest_path(graph, directed=True, unweighted=True, indices=starts - 1)
    reach = np.isfinite(dist)
    # Distance 0 to itself does not count: a node reaches itself by a path of length >= 1 only on a cycle.
    reach[np.arange(len(starts)), starts - 1] = _on_cycle(num_instances, edges)[starts - 1]
    return reach[row, targets - 1]


def _graph(num_instances: int, edges: np.ndarray) -> sparse.csr_matrix:
    """Sparse (N, N) adjacency of the occlusion graph with 1-based ``edges``."""
    return sparse.csr_matrix((np.ones(len(edges)), (edges[:, 0] - 1, edges[:, 1] - 1)),
                             shape=(num_instances, num_instances))


def _on_cycle(num_instances: int, edges: np.ndarray) -> np.ndarray:
    """bool (N,): instance i+1 lies on a directed cycle (a strongly connected component of size > 1)."""
    _, component = csgraph.connected_components(_graph(num_instances, edges), directed=True,
                                                connection="strong")
    return np.bincount(component)[component] > 1


def match_by_iou(iou, gt_classes, pred_classes, pred_scores, iou_threshold=0.5, min_score=0.0) -> np.ndarray:
    """Greedy matching of Sec. 4 from the IoU matrix float (N_gt, N_pred) (`iou_matrix` or `ious_of`); returns
    int64 (N_gt,): the predicted id matched to gt i+1, 0 if none.

    Predictions with score >= ``min_score`` are visited by descending score (ties: lower id first); each takes
    the unmatched ground-truth instance of the same class with the highest IoU (ties: lower id), if that IoU
    is >= ``iou_threshold``. Inputs must already be validated (see `validate_instances`).
    """
    same_class = gt_classes[:, None] == pred_classes[None, :]
    iou = np.where(same_class, iou, -1.0)
    match = np.zeros(len(gt_classes), np.int64)
    order = np.argsort(-pred_scores, kind="stable")
    for j in order:
        if pred_scores[j] < min_score:
            continue
        candidates = np.where(match == 0, iou[:, j], -1.0)
        if candidates.size == 0:
            break
        i = int(np.argmax(candidates))
        if candidates[i] >= iou_threshold:
            match[i] = j + 1
    return match


def check_thresholds(iou_threshold: float, min_score: float) -> None:
    """``ValueError`` unless ``iou_threshold`` lies in (0, 1] and ``min_score`` is finite or -inf (every
    prediction)."""
    for name, value in (("iou_threshold", iou_threshold), ("min_score", min_score)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a real number, got {value!r}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold}")
    if not (np.isfinite(min_score) or min_score == -np.inf):
        raise ValueError(f"min_score must be finite or -inf, got {min_score}")


def _array(value, name: str, field: str) -> np.ndarray:
    """``np.asarray(value)``; numpy's error for ragged nested lists named with the item and field."""
    try:
        return np.asarray(value)
    except ValueError as err:
        raise ValueError(f"{name}: {field} is not an array (rows of different lengths?): {err}") from None


def validate_pair(gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores, pred_edges) -> tuple:
    """``(ground truth, prediction)``, each `validate_instances`' ``(instance_map, classes, edges, scores)``
    with the edges of ids that have no pixel left out (`present_ids`: such an id, e.g. one a resize lost, is no
    object on either side, as mask mAP leaves it out); ``ValueError`` as there (naming "ground truth" or
    "prediction") or when the two maps differ in shape."""
    gt = validate_instances(gt_map, gt_classes, gt_edges, name="ground truth")
    pred = validate_instances(pred_map, pred_classes, pred_edges, pred_scores, name="prediction")
    if gt[0].shape != pred[0].shape:
        raise ValueError(f"gt_map {gt[0].shape} and pred_map {pred[0].shape} differ in shape")
    return tuple((m, c, edges_among(e, present_ids(m, len(c))), s) for m, c, e, s in (gt, pred))


def present_ids(instance_map: np.ndarray, num: int) -> np.ndarray:
    """bool (num,): which of the ids 1..num have a pixel in a validated ``instance_map``."""
    return np.bincount(instance_map.ravel(), minlength=num + 1)[1:num + 1] > 0


def edges_among(edges: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The rows of validated ``edges`` int (M, 2) (ids 1..N) whose two instances are ``kept`` (bool (N,)): the
    predicted graph of Sec. 4 without the instances below the minimum confidence, or the ground truth's without
    ids that have no pixels."""
    return edges if kept.all() else edges[kept[edges - 1].all(axis=1)]


def matched_pair_paths(gt_edges: np.ndarray, match: np.ndarray, num_pred: int,
                       pred_edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct ground-truth edge (a, b) (``np.unique`` row order): ``(recovered, forward, backward)``,
    bool (P,) each. ``recovered``: both a and b are matched; ``forward`` / ``backward``: the predicted graph
    (all predicted instances and ``pred_edges``) has a directed path from match(a) to match(b) / back (False
    where not recovered). Inputs validated (`validate_pair`): ``gt_edges`` int (E, 2) of ids 1..m, ``match``
    int (m,) (the predicted id of each ground-truth instance, 0 = unmatched, e.g. `match_by_iou`), ``num_pred``
    predicted instances and their ``pred_edges`` int (F, 2). The basis of `oair_counts` and of
    `oosis_jax.evaluation.failures.pair_outcomes`."""
    gt_edges = np.unique(gt_edges, axis=0)  # an edge listed twice is one occlusion relation, counted once
    m1, m2 = match[gt_edges[:, 0] - 1], match[gt_edges[:, 1] - 1]
    recovered = (m1 > 0) & (m2 > 0)
    a, b = m1[recovered], m2[recovered]
    forward, backward = np.zeros(len(gt_edges), bool), np.zeros(len(gt_edges), bool)
    forward[recovered] = has_path(num_pred, pred_edges, a, b)
    backward[recovered] = has_path(num_pred, pred_edges, b, a)
    return recovered, forward, backward


def oair_counts(gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores, pred_edges,
                iou_threshold: float = 0.5, min_score: float = 0.0) -> tuple[int, int, int]:
    """OAIR counts of Sec. 4 for one image: ``(pairs, recovered, correct)``.

    ``pairs`` = number of distinct ground-truth edges between ids that have pixels (duplicates count once;
    `validate_pair`); an edge (g1, g2) is
    ``recovered`` when both g1 and g2 are matched (see `match_by_iou`), and ``correct`` when the predicted
    graph has a directed path from match(g1) to match(g2) and none back (`matched_pair_paths`). Predictions
    below ``min_score`` are not considered (Sec. 4): neither matched nor part of the graph, so no path runs
    through them. The default 0.0 leaves out negative scores (the ad-hoc score of Sec. 5.4 can be negative);
    pass ``-inf`` to keep every prediction, as `oosis_jax.evaluation.evaluate`'s headline OAIR does.
    Recall = recovered / pairs, accuracy = correct / recovered, each summed over a dataset
    (`oosis_jax.evaluation.oair`).
    Raises ``ValueError`` for mismatched maps, ids without a class, edges naming missing instances, non-finite
    scores or an IoU threshold outside (0, 1].
    """
    gt, pred = validate_pair(gt_map, gt_classes, gt_edges, pred_map, pred_classes, pred_scores, pred_edges)
    iou = iou_matrix(gt[0], pred[0], len(gt[1]), len(pred[1]))
    return counts_by_iou(iou, gt[1], gt[2], pred[1], pred[3], pred[2], iou_threshold, min_score)


def counts_by_iou(iou, gt_classes, gt_edges, pred_classes, pred_scores, pred_edges, iou_threshold: float = 0.5,
                  min_score: float = 0.0) -> tuple[int, int, int]:
    """`oair_counts` of validated inputs (`validate_pair`) from their IoU matrix float (N_gt, N_pred)."""
    check_thresholds(iou_threshold, min_score)
    match = match_by_iou(iou, gt_classes, pred_classes, pred_scores, iou_threshold, min_score)
    recovered, forward, backward = matched_pair_paths(gt_edges, match, len(pred_classes),
                                                      edges_among(pred_edges, np.asarray(pred_scores) >= min_score))
    return len(recovered), int(recovered.sum()), int((forward & ~backward).sum())


def cycle_fraction(num_instances: int, edges) -> float:
    """Fraction of the ``num_instances`` instances that lie on a directed cycle of ``edges`` (Tab. 1).

    ``edges`` is int (M, 2) with ids in 1..num_instances. Returns 0.0 for an image without instances.
    Raises ``ValueError`` for a negative count or edges naming missing instances.
    """
    if not is_finite_number(num_instances) or int(num_instances) != num_instances or num_instances < 0:
        raise ValueError(f"num_instances must be a non-negative integer, got {num_instances!r}")
    num_instances = int(num_instances)
    _, _, edges, _ = validate_instances(np.zeros((0, 0), np.int64), np.ones(num_instances, np.int64), edges,
                                        name="cycle_fraction")
    if num_instances == 0:
        return 0.0
    return float(_on_cycle(num_instances, edges).mean())
