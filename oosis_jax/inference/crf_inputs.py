"""From network heads (or ground truth) to the CRF inputs of Eq. (8): sigma (Eq. 5) and the set O (Eq. 7).

Rule for O (our documented choice; the paper only says "oriented boundaries ... stored as a set of ordered
pixel pairs"): a pixel p is a boundary pixel when its boundary probability survives non-maximum suppression
and the threshold 0.1 of Sec. 3.1; such a p occludes its neighbour in direction d when
``e_p[d] >= max(e_p) / 2``, i.e. every orientation bin at least half as likely as the most likely one. On
ground truth (supplement Sec. 1.3: E_p spreads 1 evenly over the k occluded directions, 1/k each, others 0)
this selects exactly the occluded directions, so `occlusion_set(B, E)` reproduces the ground-truth occlusion
map; on predictions it keeps diagonal boundaries (two strong bins) and drops weak bins. Pairs that would
point outside the image are dropped.
"""

from __future__ import annotations

import numpy as np

from data import targets
from oosis_jax.inference.nms import (BOUNDARY_THRESHOLD, boundary_nms, check_probabilities, check_probability_map,
                                     thin_boundaries)
from oosis_jax.inference.robustness import Robustness, drop_short_segments, hysteresis_boundaries

DIRECTION_RATIO = 0.5  # e_d >= DIRECTION_RATIO * max(e) selects direction d


def sigma_from_semantic(s) -> np.ndarray:
    """sigma of Eq. (5): float64 (H, W), the probability of the background class (index 0) of ``s``.

    ``s`` is the semantic head's float (H, W, C) class distribution. Raises ``ValueError`` for a wrong shape,
    NaN or values outside [0, 1].
    """
    s = np.asarray(s)
    if s.ndim != 3 or s.shape[-1] < 2 or not np.issubdtype(s.dtype, np.floating):
        raise ValueError(f"s must be a float (H, W, C) array with C >= 2, got {s.dtype} {s.shape}")
    check_probabilities(s, "s (every class's probability)")
    return s[..., 0].astype(np.float64)


def _check_orientations(e, shape) -> np.ndarray:
    e = np.asarray(e)
    if e.shape != (*shape, 4) or not np.issubdtype(e.dtype, np.floating):
        raise ValueError(f"e must be a float {(*shape, 4)} array, got {e.dtype} {e.shape}")
    if not np.all(np.isfinite(e)) or e.min() < 0:
        raise ValueError("e must be finite and non-negative (NaN or negative values found)")
    return e


def occlusion_set(boundary, e) -> np.ndarray:
    """The set O of Eq. (7) as an occlusion map, bool (H, W, 4) (directions left, right, top, bottom).

    ``boundary``: bool (H, W), the (thinned) boundary pixels; ``e``: float (H, W, 4), orientation
    distribution (the e head, or ground truth E). ``occ[p, d]`` = boundary[p] and e_p[d] > 0 and
    e_p[d] >= max(e_p) / 2 and the neighbour in direction d exists (module docstring).
    """
    boundary = np.asarray(boundary)
    if boundary.ndim != 2 or boundary.dtype != bool:
        raise ValueError(f"boundary must be a bool (H, W) array, got {boundary.dtype} {boundary.shape}")
    e = _check_orientations(e, boundary.shape)
    occ = boundary[..., None] & (e > 0) & (e >= DIRECTION_RATIO * e.max(axis=-1, keepdims=True))
    occ[:, 0, 0] = occ[:, -1, 1] = occ[0, :, 2] = occ[-1, :, 3] = False
    return occ


def predicted_boundary(b, sigma, threshold: float = BOUNDARY_THRESHOLD,
                       robustness: Robustness = Robustness()) -> np.ndarray:
    """bool (H, W): the boundary pixels of O from the b head (float (H, W) in [0, 1]).

    Thinned by NMS and thresholded at ``threshold`` (Sec. 3.1); ``robustness``
    (`oosis_jax.inference.robustness`, beyond the paper) may replace that threshold (``low``), link them by
    hysteresis (``high``; the threshold is then the weak one), drop short pieces and keep only pixels the
    semantic head calls foreground (``1 - sigma >= robustness.min_foreground``, with ``sigma`` float (H, W) of
    `sigma_from_semantic`).
    """
    b = check_probability_map(b)
    if b.shape != np.shape(sigma):
        raise ValueError(f"b {b.shape} and s {np.shape(sigma)} differ in height/width")
    if robustness.low is not None:
        threshold = robustness.low
    if robustness.high is None:
        boundary = thin_boundaries(b, threshold)
    else:
        boundary = hysteresis_boundaries(boundary_nms(b), threshold, max(robustness.high, threshold))
    boundary = drop_short_segments(boundary, robustness.min_segment)
    if robustness.min_foreground > 0:
        boundary &= 1.0 - sigma >= robustness.min_foreground
    return boundary


def predicted_crf_inputs(s, b, e, threshold: float = BOUNDARY_THRESHOLD,
                         robustness: Robustness = Robustness()) -> tuple[np.ndarray, np.ndarray]:
    """``(sigma, occ)`` from the heads: sigma float64 (H, W) (Eq. 5) and occ bool (H, W, 4) (Eq. 7).

    ``s``: float (H, W, C) semantic probabilities; ``b``: float (H, W) boundary probability; ``e``: float
    (H, W, 4) conditional orientation. The boundary pixels are `predicted_boundary` (``threshold`` and
    ``robustness`` as there), their directions `occlusion_set`.
    """
    sigma = sigma_from_semantic(s)
    return sigma, occlusion_set(predicted_boundary(b, sigma, threshold, robustness), e)


def gt_crf_inputs(instance_map, edges) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth ``(sigma, occ)`` for the Tab. 4 / Fig. 10 setting.

    sigma = 1 on background pixels and 0 on instance pixels (a perfect semantic segmentation); occ = the set
    O built from the ground-truth B and E (supplement Sec. 1.3) by the same `occlusion_set` rule as for
    predictions (ground-truth boundaries are already one pixel thick, so no NMS).
    """
    boundary, e = targets.boundary_targets(instance_map, edges)
    sigma = (np.asarray(instance_map) == 0).astype(np.float64)
    return sigma, occlusion_set(boundary, e)
