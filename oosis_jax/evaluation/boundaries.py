"""Oriented occlusion boundary ODS / OIS / AP with the P2ORM protocol, and plain boundary AP (Tab. 3, 5).

Protocol (``docs/datasets_and_metrics.md``; P2ORM ``EvaluateOcc.m``, BSDS ``correspondPixels``):
predicted boundaries are thinned (`oosis_jax.inference.nms.boundary_nms`) and swept over the 99 thresholds
``linspace(0.01, 0.99, 99)``; at each threshold predicted and ground-truth boundary pixels are matched one to
one within ``max_dist x image diagonal`` (a minimum-cost maximum bipartite matching, `correspond_pixels`), and a
matched prediction is correctly oriented when its angle is within pi/2 of its ground-truth pixel's angle.
Angles come from the 4 orientation bins by the conversion of supplement Sec. 1.4 (`orientation_angles`).

Per image and threshold we keep the counts ``COUNT_FIELDS``. Oriented curve: recall = matched_gt / gt,
precision = oriented_pred / pred. Plain boundary curve (b alone): precision = matched_pred / pred.

The pixels kept at a threshold include those kept at any higher one, so all 99 matchings of an image come from
one pass of `nested_matching.nested_matchings` over its predicted pixels in decreasing order of confidence:
about the cost of the lowest threshold's matching alone. The matching is ours instead of the CSA code bundled
in the PyPI package ``pyedgeeval``: that package builds and runs here, but it needs a C++ toolchain at install
and bundles code whose licence is not stated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from crf.numba_cache import keyed_cache

# its numba code cached as crf's is, wherever it can be written (its own folder beside crf's: ~/.cache/oosis-evaluation)
with keyed_cache(Path(__file__).resolve().parent, label="oosis-evaluation"):
    from oosis_jax.evaluation.nested_matching import nested_matchings
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
    BSDS's ``correspondPixels`` with its outlier cost): `_matching_problem`.
    """
    pred_idx, gt_idx = np.flatnonzero(pred), np.flatnonzero(gt)
    indptr, cols, dist, outlier = _matching_problem(pred_idx, gt_idx, pred.shape, max_dist)
    _, _, edge_of_row = nested_matchings(indptr, cols, dist, len(gt_idx), outlier, [len(pred_idx)])
    rows = np.flatnonzero(edge_of_row >= 0)
    partners = gt_idx[cols[edge_of_row[rows]]]
    pred_match, gt_match = np.full(pred.size, -1), np.full(gt.size, -1)
    pred_match[pred_idx[rows]] = partners
    gt_match[partners] = pred_idx[rows]
    return pred_match.reshape(pred.shape), gt_match.reshape(gt.shape)


def _matching_problem(pred_idx, gt_idx, shape, max_dist):
    """The matching of predicted pixels ``pred_idx`` (rows, in this order) to ground-truth pixels ``gt_idx``
    (columns; flat indices into ``shape``) as `nested_matchings` takes it: ``(indptr, cols, distances,
    outlier_cost)``, an edge for every pair within ``max_dist x diagonal`` pixels. Leaving a row unmatched costs
    more than any total of distances, so an optimal matching has the most pairs, then the least total distance.
    """
    radius = max_dist * np.hypot(*shape)
    indptr = np.zeros(len(pred_idx) + 1, np.int64)
    if not (len(pred_idx) and len(gt_idx)):
        return indptr, np.zeros(0, np.int64), np.zeros(0), 1.0
    points = [np.stack(np.unravel_index(idx, shape), -1) for idx in (pred_idx, gt_idx)]
    pairs = cKDTree(points[0]).sparse_distance_matrix(cKDTree(points[1]), radius, output_type="ndarray")
    order = np.lexsort((pairs["j"], pairs["i"]))
    np.cumsum(np.bincount(pairs["i"], minlength=len(pred_idx)), out=indptr[1:])
    return indptr, pairs["j"][order].astype(np.int64), pairs["v"][order], radius * (len(pred_idx) + 1) + 1.0


def _check_gt(gt_boundary, shape):
    gt_boundary = np.asarray(gt_boundary)
    if gt_boundary.dtype != bool or gt_boundary.ndim != 2:
        raise ValueError(f"gt_boundary must be a bool (H, W) array, got {gt_boundary.dtype} {gt_boundary.shape}")
    if gt_boundary.shape != shape:
        raise ValueError(f"b is {shape} but gt_boundary is {gt_boundary.shape}: they must have one shape")
    return gt_boundary


def check_max_dist(max_dist) -> float:
    """``max_dist`` (the matching radius as a fraction of the image diagonal) if a finite number > 0."""
    if isinstance(max_dist, bool) or not isinstance(max_dist, (int, float, np.floating)) or not (
            np.isfinite(max_dist) and max_dist > 0):
        raise ValueError(f"max_dist must be a finite number > 0 (a fraction of the image diagonal), got {max_dist!r}")
    return float(max_dist)


def check_heads(b, e=None, shape=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(b, e)`` as `image_counts` reads them: ``b`` float (H, W) in [0, 1] (`check_probability_map`), of
    ``shape`` when it is given (the ground truth's; checked before ``e``, so a wrong ``b`` is named as such), and
    ``e`` None or a finite float (H, W, 4); ``ValueError`` naming the problem otherwise."""
    b = check_probability_map(b)
    if shape is not None and b.shape != tuple(shape):
        raise ValueError(f"b is {b.shape}, the ground truth {tuple(shape)}")
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
    b = check_probability_map(b)
    gt_boundary = _check_gt(gt_boundary, b.shape)
    check_max_dist(max_dist)
    thresholds = np.asarray(thresholds, np.float64)
    if thresholds.ndim != 1 or not np.all(np.isfinite(thresholds)):
        raise ValueError(f"thresholds must be a 1-D array of finite numbers, got {thresholds!r}")
    if e is not None:
        e = _check_bins(e, b.shape, "e")
        gt_e = _check_bins(gt_e, b.shape, "gt_e")
        angles, gt_angles = orientation_angles(e).ravel(), orientation_angles(gt_e).ravel()
    thin = (boundary_nms(b) if apply_nms else b).ravel()
    counts = np.zeros((len(thresholds), 5), np.int64)
    if not len(thresholds):
        return counts
    # Rows: the pixels kept at the lowest threshold, most confident first, so each threshold keeps a prefix.
    rows = np.flatnonzero(thin >= thresholds.min())
    rows = rows[np.argsort(-thin[rows], kind="stable")]
    gt_idx = np.flatnonzero(gt_boundary)
    indptr, cols, dist, outlier = _matching_problem(rows, gt_idx, b.shape, max_dist)
    if e is None:
        flags = np.ones(len(cols), np.int64)
    else:
        edge_rows = np.repeat(np.arange(len(rows)), np.diff(indptr))
        diff = np.mod(angles[rows[edge_rows]] - gt_angles[gt_idx[cols]], 2 * np.pi)
        flags = (diff <= np.pi / 2) | (diff >= 3 * np.pi / 2)
    order = np.argsort(-thresholds, kind="stable")
    kept = len(rows) - np.searchsorted(thin[rows][::-1], thresholds[order], side="left")
    matched, oriented, _ = nested_matchings(indptr, cols, dist, len(gt_idx), outlier, kept, flags)
    counts[order] = np.stack([matched, np.full_like(matched, len(gt_idx)), matched, oriented, kept], -1)
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


# MATLAB's 0:0.01:1 bit for bit: its colon operator counts the upper half down from 1, so 11 of these levels
# differ from np.linspace's in the last bit, and a recall that hits one exactly (0.69) is inside the curve or not.
RECALL_LEVELS = np.array([k * 0.01 for k in range(51)] + [1.0 - (100 - k) * 0.01 for k in range(51, 101)])


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """AP of a precision-recall curve as BSDS and P2ORM compute it (``collect_eval_bdry*.m``): of the points
    with equal recall the first (lowest threshold) is kept, precision is interpolated linearly at recall 0,
    0.01, ..., 1, levels outside [smallest, largest recall] count 0, and the sum is divided by 100. A curve
    with one distinct recall scores 0: a binary map, whose every threshold gives the same point, has no AP
    (ground truth fed as b scores 0, or 0.505 when the top thresholds predict nothing); read ODS for it."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    r, first = np.unique(recall, return_index=True)
    if len(r) < 2:
        return 0.0
    interpolated = np.interp(RECALL_LEVELS, r, precision[first], left=0.0, right=0.0)
    return float(interpolated.sum() / 100)


def summarize(per_image_counts: Sequence[np.ndarray], oriented: bool = True) -> dict:
    """ODS, OIS and AP (fractions in [0, 1]) of a list of per-image (T, 5) counts, plus the curve.

    ODS: F of the dataset-summed counts, best over thresholds (interpolated). OIS: each image at its own best
    threshold, counts summed, then F. AP: `average_precision` of the dataset curve over every threshold (one
    that predicts no pixel is the point (recall 0, precision 0), as in P2ORM). Without any ground-truth
    boundary pixel in all the images, recall is undefined: ODS, OIS and AP are NaN (the curve's recall reads 0).
    Raises ``ValueError`` for an empty list or images with different numbers of thresholds.
    """
    per_image_counts = [np.asarray(c, np.int64) for c in per_image_counts]
    if not per_image_counts:
        raise ValueError("summarize: no per-image counts (an empty list has no ODS, OIS or AP)")
    for i, c in enumerate(per_image_counts, 1):  # images counted from 1, as `oosis_jax.evaluation.evaluate` does
        if c.ndim != 2 or c.shape[-1] != 5:
            raise ValueError(f"per-image counts must be (T, 5) arrays, got {c.shape} for image {i}")
        if len(c) != len(per_image_counts[0]):
            raise ValueError(f"summarize: image {i} has {len(c)} thresholds, image 1 has "
                             f"{len(per_image_counts[0])}; all images need the same thresholds")
    counts = np.stack(per_image_counts)
    total = counts.sum(axis=0)
    recall, precision = _precision_recall(total, oriented)
    per_image_f = _f_measure(*_precision_recall(counts, oriented))
    best = counts[np.arange(len(counts)), per_image_f.argmax(axis=1)].sum(axis=0)
    ois = float(_f_measure(*_precision_recall(best[None], oriented))[0])
    scores = {"ODS": _best_interpolated_f(recall, precision), "OIS": ois, "AP": average_precision(recall, precision)}
    if not total[:, 1].any():  # no boundary to find: a score of 0 would read as a method that found none
        scores = dict.fromkeys(scores, float("nan"))
    return dict(scores, recall=recall.tolist(), precision=precision.tolist())
