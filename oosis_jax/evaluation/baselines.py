"""Occlusion-ordering baselines for GIVEN instances (Sec. 5.5, Tab. 1, Fig. 9 and 11). Pure numpy, no JAX.

Each baseline takes an instance map (ground truth or predicted) and orders every pair of touching instances
(4-neighbouring pixels, ``targets.touching_pairs``); non-touching pairs get no edge, as in the paper's
baselines, which order the instance pairs that overlap or touch.

- ``bottom_y_edges``: the pre-deep-learning ground-plane heuristic: the instance whose lowest pixel is lower
  in the image is nearer (it stands closer to the camera on the ground).
- ``area_edges``: the larger instance is nearer.
- ``depth_edges``: ordering by a per-instance depth; with ``noisy_instance_depths`` it plays the monocular
  depth baselines of Sec. 5.5, whose error grows with distance.
- ``pairwise_vote_edges``: a *pairwise* classifier in the spirit of OrderNet/InstaOrder: each touching pair
  is decided on its own, by the oriented boundary evidence (heads ``b``, ``e``) along the shared border.
  Decided independently, pairs can form directed cycles (Tab. 1); ``oosis_jax.evaluation.decycle`` removes them.

The first three order instances by one scalar each, so their graphs are acyclic by construction.
Edges are int32 (M, 2), rows (a, b) = "a occludes b" (``docs/contracts.md``).
"""

from __future__ import annotations

import numpy as np

from data.targets import touching_pairs
from oosis_jax.inference.votes import occlusion_votes


def _order_by_nearness(instance_map, nearness: np.ndarray) -> np.ndarray:
    """Edges from a larger-is-nearer score per instance (float (N + 1,), index 0 unused); ties: no edge."""
    pairs = touching_pairs(instance_map)
    a, b = pairs[:, 0], pairs[:, 1]
    forward, backward = nearness[a] > nearness[b], nearness[b] > nearness[a]
    edges = np.concatenate([pairs[forward], pairs[backward][:, ::-1]])
    return edges.astype(np.int32).reshape(-1, 2)


def _num_instances(instance_map) -> int:
    return int(np.asarray(instance_map).max(initial=0))


def bottom_y_edges(instance_map) -> np.ndarray:
    """int32 (M, 2): the instance whose lowest pixel row is larger (lower in the image) occludes the other.

    ``instance_map``: int (H, W), 0 = background, 1..N. Touching pairs with the same bottom row get no edge.
    """
    inst = np.asarray(instance_map)
    touching_pairs(inst)  # validates the map
    rows = np.broadcast_to(np.arange(inst.shape[0])[:, None], inst.shape)
    bottom = np.full(_num_instances(inst) + 1, -1.0)
    np.maximum.at(bottom, inst.ravel(), rows.ravel().astype(np.float64))
    return _order_by_nearness(inst, bottom)


def area_edges(instance_map) -> np.ndarray:
    """int32 (M, 2): the instance with more pixels occludes the touching one with fewer (ties: no edge)."""
    inst = np.asarray(instance_map)
    touching_pairs(inst)
    area = np.bincount(inst.ravel(), minlength=_num_instances(inst) + 1).astype(np.float64)
    return _order_by_nearness(inst, area)


def depth_edges(instance_map, depths) -> np.ndarray:
    """int32 (M, 2): the touching instance with the smaller depth occludes the other.

    ``depths``: float (N,), depth of instance k at ``depths[k - 1]`` (any unit; smaller = nearer; +inf, as
    `instance_depths` gives an instance without depth, is farthest; ids absent from the map are not read).
    """
    inst = np.asarray(instance_map)
    touching_pairs(inst)
    depths = np.asarray(depths, np.float64)
    n = _num_instances(inst)
    if depths.ndim != 1 or len(depths) < n:
        raise ValueError(f"depths must be an (N,) array with N >= {n} (largest instance id), got shape "
                         f"{depths.shape}")
    present = np.bincount(inst.ravel(), minlength=n + 1)[1:] > 0
    bad = np.flatnonzero(present & (np.isnan(depths[:n]) | (depths[:n] == -np.inf))) + 1
    if bad.size:
        raise ValueError(f"depths of instances {bad[:10].tolist()} are NaN or -inf")
    return _order_by_nearness(inst, np.concatenate([[0.0], -np.where(present, depths[:n], 0.0)]))


def instance_depths(instance_map, depth_map) -> np.ndarray:
    """float64 (N,): mean of ``depth_map`` (float (H, W), NaN where unknown) over each instance's pixels
    ("averaged on instance pixels", Sec. 5.5).

    Used to give predicted instances the depth of the ground-truth scene under them; an instance whose
    pixels have no finite depth gets +inf (farthest). Each mean is numpy's over that instance's depths in
    raster order (one stable sort of the pixels by id, O(H W log(H W)) for any N), bit for bit the mean of
    ``depth_map[instance_map == k]``: exact depth ties between instances stay ties.
    """
    inst = np.asarray(instance_map)
    depth_map = np.asarray(depth_map, np.float64)
    if depth_map.shape != inst.shape:
        raise ValueError(f"depth_map shape {depth_map.shape} differs from instance_map shape {inst.shape}")
    out = np.full(_num_instances(inst), np.inf)
    ids, values = inst.ravel(), depth_map.ravel()
    known = (ids >= 1) & np.isfinite(values)
    order = np.argsort(ids[known], kind="stable")  # by id, each id's pixels in raster order
    ids, values = ids[known][order], values[known][order]
    bounds = np.searchsorted(ids, np.arange(1, len(out) + 2))
    for k in np.flatnonzero(np.diff(bounds)):
        out[k] = values[bounds[k]:bounds[k + 1]].mean()
    return out


def noisy_instance_depths(depths, relative_noise: float, seed: int = 0) -> np.ndarray:
    """float64 (N,): ``depths * exp(relative_noise * N(0, 1))``, a monocular-depth stand-in (Sec. 5.5).

    The absolute error grows with distance (log-normal with a constant relative spread), so near objects
    keep their order and far ones get swapped, as the paper argues for monocular depth on KINS.
    ``depths``: float (N,) > 0 (inf allowed, stays inf). Deterministic for ``seed``.
    """
    depths = np.asarray(depths, np.float64)
    if depths.ndim != 1 or np.any(np.isnan(depths)) or np.any(depths <= 0):
        raise ValueError(f"depths must be a 1-D array of positive depths, got {depths}")
    if not np.isfinite(relative_noise) or relative_noise < 0:
        raise ValueError(f"relative_noise must be finite and >= 0, got {relative_noise}")
    rng = np.random.default_rng(seed)
    return depths * np.exp(relative_noise * rng.standard_normal(depths.shape))


def pairwise_vote_edges(instance_map, b, e) -> np.ndarray:
    """int32 (M, 2): each touching pair ordered on its own by oriented boundary evidence on its border.

    For every 4-neighbouring pixel pair (p in instance a, q in instance b, q in direction d of p) the vote
    for "a occludes b" is ``b_p e_p[d] - b_q e_q[opposite d]`` (Eq. 3's probability that p occludes q, minus
    the reverse). A pair with positive total gets (a, b), negative (b, a), zero no edge. ``b``: float (H, W)
    in [0, 1]; ``e``: float (H, W, 4) over (left, right, top, bottom).
    """
    inst = np.asarray(instance_map)
    pairs = touching_pairs(inst)
    votes = occlusion_votes(inst, b, e)
    score = votes[pairs[:, 0], pairs[:, 1]] - votes[pairs[:, 1], pairs[:, 0]]
    edges = np.concatenate([pairs[score > 0], pairs[score < 0][:, ::-1]])
    return edges.astype(np.int32).reshape(-1, 2)
