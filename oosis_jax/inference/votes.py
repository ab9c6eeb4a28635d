"""Oriented-boundary evidence between touching regions: who occludes whom along a shared border (Eq. 3).

Used to order regions that the CRF labelling cannot order (`oosis_jax.inference.class_split`) and by the
pairwise baseline of Tab. 1 (`oosis_jax.evaluation.baselines.pairwise_vote_edges`).
"""

from __future__ import annotations

import numpy as np

from data.targets import OFFSETS

# Index of the opposite direction of (left, right, top, bottom).
OPPOSITE = (1, 0, 3, 2)


def occlusion_votes(regions, b, e) -> np.ndarray:
    """float64 (N + 1, N + 1): ``votes[a, c]`` sums, over 4-neighbouring pixel pairs (p in region a, q in
    region c, q in direction d of p), ``b_p e_p[d] - b_q e_q[opposite d]``: Eq. (3)'s probability that p
    occludes q minus the reverse. ``votes[a, c] - votes[c, a]`` > 0 says a occludes c.

    ``regions``: int (H, W), 0 = unassigned (never voted), 1..N regions; ``b``: float (H, W) in [0, 1];
    ``e``: float (H, W, 4) over (left, right, top, bottom).
    """
    regions = np.asarray(regions)
    b, e = np.asarray(b, np.float64), np.asarray(e, np.float64)
    if b.shape != regions.shape or e.shape != regions.shape + (4,):
        raise ValueError(f"b must be {regions.shape} and e {regions.shape + (4,)}, got {b.shape} and {e.shape}")
    if not (np.isfinite(b).all() and np.isfinite(e).all()):
        raise ValueError("b and e must be finite")
    n = int(regions.max(initial=0))
    votes = np.zeros((n + 1, n + 1))
    occludes = b[..., None] * e
    height, width = regions.shape
    for d, (dy, dx) in enumerate(OFFSETS):
        ys = slice(max(0, -dy), height - max(0, dy))
        xs = slice(max(0, -dx), width - max(0, dx))
        yq = slice(max(0, dy), height - max(0, -dy))
        xq = slice(max(0, dx), width - max(0, -dx))
        p_ids, q_ids = regions[ys, xs], regions[yq, xq]
        vote = occludes[ys, xs, d] - occludes[yq, xq, OPPOSITE[d]]
        keep = (p_ids != q_ids) & (p_ids > 0) & (q_ids > 0)
        np.add.at(votes, (p_ids[keep], q_ids[keep]), vote[keep])
    return votes
