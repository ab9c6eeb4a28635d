"""Oriented occlusion boundary ODS / OIS / AP with the P2ORM protocol, and plain boundary AP (Tab. 3, 5).

Protocol (``docs/datasets_and_metrics.md``; P2ORM ``EvaluateOcc.m``, BSDS ``correspondPixels``):
predicted boundaries are thinned (`oosis_jax.inference.nms.boundary_nms`) and swept over the 99 thresholds
``linspace(0.01, 0.99, 99)``; at each threshold predicted and ground-truth boundary pixels are matched one to
one within ``max_dist x image diagonal`` (a minimum-cost maximum bipartite matching, `correspond_pixels`), and a
matched prediction is correctly oriented when its angle is within pi/2 of its ground-truth pixel's angle.
Angles come from the 4 orientation bins by the conversion of supplement Sec. 1.4 (`orientation_angles`).

Per image and threshold we keep the counts ``COUNT_FIELDS``. Oriented curve: recall = matched_gt / gt,
precision = oriented_pred / pred. Plain boundary curve (b alone): precision = matched_pred / pred.

The matching is ours, with scipy (`correspond_pixels`), instead of the CSA code bundled in the PyPI package
``pyedgeeval``: that package builds and runs here, but it needs a C++ toolchain at install and bundles code
whose licence is not stated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

from oosis_jax.inference.nms import check_probability_map, boundary_nms

THRESHOLDS = np.linspace(0.01, 0.99, 99)
MAX_DIST = 0.0075  # matching radius, fraction of the image diagonal
COUNT_FIELDS = ("matched_gt", "gt", "matched_pred", "oriented_pred", "pred")


def orientation_angles(e) -> np.ndarray:
    """Boundary angle in (-pi, pi] of 4-bin orientations ``e`` (float (H, W, 4), order left/right/top/bottom).

    Supplement Sec. 1.4: the horizontal component of the occlusion normal (occluder -> occludee, x right,
    y down) is the larger of the left and right bins with its sign (+ for right), the vertical one the larger of
    top and bottom (+ for bottom); the boundary angle is the normal's angle minus pi/2 (the "left rule": the
    occluder lies on the left of the boundary tangent). So occluding right -> -pi/2, left -> pi/2,
    bottom -> 0, top -> pi. Ties between opposite bins pick right/bottom.
    """
    e = np.asarray(e, np.float64)
    if e.ndim != 3 or e.shape[-1] != 4:
        raise ValueError(f"e must be a float (H, W, 4) array, got {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("e contains NaN or inf")
    left, right, top, bottom = np.moveaxis(e, -1, 0)
    nx = np.where(right >= left, right, -left)
    ny = np.where(bottom >= top, bottom, -top)
    angle = np.arctan2(ny, nx) - np.pi / 2
    return np.where(angle <= -np.pi, angle + 2 * np.pi, angle)


def correspond_pixels(pred: np.ndarray, gt: np.ndarray, max_dist: float = MAX_DIST) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of two bool (H, W) boundary maps within ``max_dist x diagonal`` pixels.

    Returns ``(pred_match, gt_match)``: int64 (H, W) holding, at each matched pixel, the flat index of its
    partner, and -1 elsewhere. The matching has maximum size and, among those, the minimum total distance (as
    BSDS's ``correspondPixels`` with its outlier cost), exactly at every size: `_match_pairs`.
    """
    height, width = pred.shape
    radius = max_dist * np.hypot(height, width)
    pred_idx, gt_idx = np.flatnonzero(pred), np.flatnonzero(gt)
    pred_match, gt_match = np.full(pred.size, -1), np.full(gt.size, -1)
    if len(pred_idx) and len(gt_idx):
        pts_p = np.stack(np.unravel_index(pred_idx, pred.shape), -1)
        pts_g = np.stack(np.unravel_index(gt_idx, gt.shape), -1)
        pairs = cKDTree(pts_p).sparse_distance_matrix(cKDTree(pts_g), radius, output_type="ndarray")
        rows, cols = _match_pairs(pairs["i"], pairs["j"], pairs["v"], radius)
        pred_match[pred_idx[rows]] = gt_idx[cols]
        gt_match[gt_idx[cols]] = pred_idx[rows]
    return pred_match.reshape(pred.shape), gt_match.reshape(gt.shape)


def _match_pairs(i, j, d, radius):
    """Matched (pred rows, gt cols) among the candidate pairs (i[k], j[k]) at distance d[k] <= ``radius``: a
    maximum matching of minimum total distance.

    Each connected component of the candidate graph is matched on its own: a component of one pair is that
    pair, a larger one a sparse minimum-cost matching that covers its smaller side (`_min_cost_matching`).
    """
    if len(i) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    preds, p = np.unique(i, return_inverse=True)
    gts, g = np.unique(j, return_inverse=True)
    d = np.asarray(d, np.float64)
    graph = sparse.csr_matrix((np.ones(len(p)), (p, len(preds) + g)), shape=(len(preds) + len(gts),) * 2)
    count, component = connected_components(graph, directed=False)
    pair_component = component[p]
    single = np.bincount(pair_component, minlength=count)[pair_component] == 1
    out_p, out_g = [p[single]], [g[single]]
    rest = np.flatnonzero(~single)
    rest = rest[np.argsort(pair_component[rest], kind="stable")]
    for group in np.split(rest, np.flatnonzero(np.diff(pair_component[rest])) + 1):
        if group.size:
            local_preds, local_p = np.unique(p[group], return_inverse=True)
            local_gts, local_g = np.unique(g[group], return_inverse=True)
            rows, cols = _min_cost_matching(local_p, local_g, d[group], radius)
            out_p.append(local_preds[rows])
            out_g.append(local_gts[cols])
    return preds[np.concatenate(out_p)], gts[np.concatenate(out_g)]


def _min_cost_matching(p, g, d, radius):
    """A maximum matching of minimum total distance of the pairs (p[k], g[k]) at distances d[k] <= ``radius``
    (ids 0..P-1 and 0..G-1, each used): scipy's LAPJVsp matching that covers the smaller side, where each of
    its nodes may also take an outlier node of its own at a cost above any total of real distances, so that
    such a matching always exists and a larger real matching is always cheaper (BSDS's ``correspondPixels``
    adds outliers the same way). Costs are shifted by 1 so that zero distances stay edges."""
    n_p, n_g = p.max() + 1, g.max() + 1
    flip = n_g < n_p
    rows, cols, n_rows, n_cols = (g, p, n_g, n_p) if flip else (p, g, n_p, n_g)
    own = np.arange(n_rows)
    costs = np.concatenate([d + 1.0, np.full(n_rows, radius * (n_rows + 1) + 2.0)])
    graph = sparse.csr_matrix((costs, (np.concatenate([rows, own]), np.concatenate([cols, n_cols + own]))),
                              shape=(n_rows, n_cols + n_rows))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    real = col_ind < n_cols
    return (col_ind[real], row_ind[real]) if flip else (row_ind[real], col_ind[real])


def _check_gt(gt_boundary, shape):
    gt_boundary = np.asarray(gt_boundary)
    if gt_boundary.shape != shape or gt_boundary.dtype != bool:
        raise ValueError(f"gt_boundary must be bool {shape}, got {gt_boundary.dtype} {gt_boundary.shape}")
    return gt_boundary


def check_heads(b, e=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(b, e)`` as `image_counts` reads them: ``b`` float (H, W) in [0, 1] (`check_probability_map`), ``e``
    None or a finite float (H, W, 4); ``ValueError`` naming the problem otherwise."""
    b = check_probability_map(b)
    return b, None if e is None else _check_bins(e, b.shape, "e")


def _check_bins(e, shape, name):
    if np.shape(e) != (*shape, 4):
        raise ValueError(f"{name} must have shape {(*shape, 4)}, got {np.shape(e)}")
    e = np.asarray(e, np.float64)
    if not np.all(np.isfinite(e)):
        raise ValueError(f"{name} contains NaN or inf")
    return e


def image_counts(b, e, gt_boundary, gt_e, thresholds=THRESHOLDS, max_dist: float = MAX_DIST,
                 apply_nms: bool = True) -> np.ndarray:
    """int64 (T, 5) counts (`COUNT_FIELDS`) of one image at each of the T ``thresholds``.

    ``b``: float (H, W) boundary probability in [0, 1]; ``e``: float (H, W, 4) orientation bins or None (plain
    boundaries: ``oriented_pred`` then equals ``matched_pred``); ``gt_boundary``: bool (H, W);
    ``gt_e``: float (H, W, 4) ground-truth bins (e.g. ``targets.boundary_targets``' E) or None.
    ``b`` is thinned with `boundary_nms` first unless ``apply_nms`` is False.
    """
    if (e is None) != (gt_e is None):
        raise ValueError("give both e and gt_e (oriented evaluation) or neither (plain boundaries)")
    b, e = check_heads(b, e)
    gt_boundary = _check_gt(gt_boundary, b.shape)
    if e is not None:
        gt_e = _check_bins(gt_e, b.shape, "gt_e")
        angles, gt_angles = orientation_angles(e).ravel(), orientation_angles(gt_e).ravel()
    thin = boundary_nms(b) if apply_nms else b
    counts = np.zeros((len(thresholds), 5), np.int64)
    for t, threshold in enumerate(thresholds):
        pred = thin >= threshold
        pred_match, gt_match = correspond_pixels(pred, gt_boundary, max_dist)
        matched = np.flatnonzero(pred_match >= 0)
        if e is None:
            oriented = len(matched)
        else:
            diff = np.mod(angles[matched] - gt_angles[pred_match.ravel()[matched]], 2 * np.pi)
            oriented = int(np.sum((diff <= np.pi / 2) | (diff >= 3 * np.pi / 2)))
        counts[t] = (np.sum(gt_match >= 0), gt_boundary.sum(), len(matched), oriented, pred.sum())
    return counts


def _precision_recall(counts: np.ndarray, oriented: bool) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision of summed counts (..., 5); empty denominators give 0."""
    counts = counts.astype(np.float64)
    hits = counts[..., 3] if oriented else counts[..., 2]
    recall = np.divide(counts[..., 0], counts[..., 1], out=np.zeros(counts.shape[:-1]), where=counts[..., 1] > 0)
    precision = np.divide(hits, counts[..., 4], out=np.zeros(counts.shape[:-1]), where=counts[..., 4] > 0)
    return recall, precision


def _f_measure(recall, precision):
    total = recall + precision
    return np.divide(2 * recall * precision, total, out=np.zeros_like(total), where=total > 0)


def _best_interpolated_f(recall: np.ndarray, precision: np.ndarray) -> float:
    """BSDS ``findBestRF``: best F over the curve, linearly interpolated (100 steps) between thresholds."""
    if len(recall) == 1:
        return float(_f_measure(recall, precision)[0])
    steps = np.linspace(0, 1, 100)[None, :]
    r = recall[:-1, None] * (1 - steps) + recall[1:, None] * steps
    p = precision[:-1, None] * (1 - steps) + precision[1:, None] * steps
    return float(_f_measure(r, p).max())


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Mean precision at the 101 recall levels 0, 0.01, ..., 1, linearly interpolated along the curve.

    Levels above the curve's largest recall count 0; levels below its smallest recall take the precision of
    the smallest-recall point. (BSDS drops those low levels and sums over 101 levels / 100, so a perfect
    detector, whose curve is the single point (1, 1), scores 0 there; we want it to score 1.)
    """
    order = np.argsort(recall, kind="stable")
    r, first = np.unique(recall[order], return_index=True)
    p = precision[order][first]
    levels = np.linspace(0, 1, 101)
    interpolated = np.interp(levels, r, p, left=p[0], right=0.0)
    interpolated[levels > r[-1] + 1e-12] = 0.0
    return float(interpolated.mean())


def summarize(per_image_counts: Sequence[np.ndarray], oriented: bool = True) -> dict:
    """ODS, OIS and AP (fractions in [0, 1]) of a list of per-image (T, 5) counts, plus the curve.

    ODS: F of the dataset-summed counts, best over thresholds (interpolated). OIS: each image at its own best
    threshold, counts summed, then F. AP: `average_precision` of the dataset curve over the thresholds that
    predict at least one pixel (0 when none does). Raises ``ValueError`` for an empty list or images with
    different numbers of thresholds.
    """
    per_image_counts = [np.asarray(c, np.int64) for c in per_image_counts]
    if not per_image_counts:
        raise ValueError("summarize: no per-image counts (an empty list has no ODS, OIS or AP)")
    for i, c in enumerate(per_image_counts):
        if c.ndim != 2 or c.shape[-1] != 5:
            raise ValueError(f"per-image counts must be (T, 5) arrays, got {c.shape} for image {i}")
        if len(c) != len(per_image_counts[0]):
            raise ValueError(f"summarize: image {i} has {len(c)} thresholds, image 0 has "
                             f"{len(per_image_counts[0])}; all images need the same thresholds")
    counts = np.stack(per_image_counts)
    total = counts.sum(axis=0)
    recall, precision = _precision_recall(total, oriented)
    # A threshold with no predicted pixel has no precision: it is not a point of the curve (it would add
    # (recall 0, precision 0) and halve the AP of a perfect detector whose confidence is below 1).
    defined = total[:, 4] > 0
    per_image_f = _f_measure(*_precision_recall(counts, oriented))
    best = counts[np.arange(len(counts)), per_image_f.argmax(axis=1)].sum(axis=0)
    ois = float(_f_measure(*_precision_recall(best[None], oriented))[0])
    return {"ODS": _best_interpolated_f(recall, precision), "OIS": ois,
            "AP": average_precision(recall[defined], precision[defined]) if defined.any() else 0.0,
            "recall": recall.tolist(), "precision": precision.tolist()}
