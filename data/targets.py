"""Ground-truth training targets from instance masks and their occlusion order (pure numpy, no JAX).

Conventions (``docs/contracts.md``): ``instance_map`` is an integer (H, W) array, 0 = background and
1..N = instance ids; ``edges`` is an integer (M, 2) array whose row (a, b) says "instance a occludes
instance b"; directions are D = (left, right, top, bottom) with (row, col) offsets
(0, -1), (0, +1), (-1, 0), (+1, 0).

Targets:
- ``occlusion_map``: the set O of ordered neighbouring pixel pairs (p, q), p occludes q, of Eq. (7).
- ``boundary_targets``: B and E of supplement Sec. 1.3 (targets of the b and e heads, Eq. (4)).
- ``order_labels``: the occlusion-order labels of Sec. 5.1 (also the labels x of Eq. (8) that explain the
  ground truth).
- ``semantic_map``: the per-pixel class S of Eq. (4).
- ``touching_pairs``: unordered pairs of instances whose pixels are 4-neighbours.

Every function validates its input and raises ``ValueError`` naming the problem.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# (row, col) offsets of the four directions in the order (left, right, top, bottom).
OFFSETS = ((0, -1), (0, 1), (-1, 0), (1, 0))
# Above this id, ids are renumbered before building the (id x id) occlusion table or the order labels' tables.
MAX_DENSE_ID = 1024


def _check_instance_map(instance_map) -> np.ndarray:
    """Return ``instance_map`` as int64 (H, W) after checking dtype, shape and ids."""
    inst = np.asarray(instance_map)
    if inst.dtype.kind not in "iu":
        raise ValueError(f"instance_map must be an integer array, got dtype {inst.dtype}")
    if inst.ndim != 2:
        raise ValueError(f"instance_map must be 2-D (H, W), got shape {inst.shape}")
    if inst.size == 0:
        raise ValueError(f"instance_map is empty: shape {inst.shape}")
    if inst.min() < 0:
        raise ValueError(f"instance_map has negative ids (min {inst.min()}); 0 is background, 1..N instances")
    if inst.max() > np.iinfo(np.int64).max:  # uint64 beyond int64
        raise ValueError(f"instance_map has ids above 2**63 - 1 (max {inst.max()})")
    return inst.astype(np.int64, copy=False)


def _check_edges(edges, inst: np.ndarray) -> np.ndarray:
    """Return ``edges`` as int64 (M, 2) after checking that every id names an instance present in ``inst``."""
    e = np.asarray(edges)
    if e.size == 0:
        return np.zeros((0, 2), np.int64)
    if e.dtype.kind not in "iu":
        raise ValueError(f"edges must be an integer array, got dtype {e.dtype}")
    if e.ndim != 2 or e.shape[1] != 2:
        raise ValueError(f"edges must have shape (M, 2), got {e.shape}")
    e = e.astype(np.int64, copy=False)
    if e.min() < 1:
        bad = sorted(set(e[e < 1].tolist()))
        raise ValueError(f"edges contain ids {bad}; instance ids must be >= 1 (0 is background)")
    ids = np.unique(inst)  # no table of the largest id: ids may be sparse (e.g. 2**40)
    missing = np.unique(e[~np.isin(e, ids[ids > 0])])
    if missing.size:
        raise ValueError(f"edges name instances {missing.tolist()} that do not appear in instance_map")
    loops = e[e[:, 0] == e[:, 1], 0]
    if loops.size:
        raise ValueError(f"edges contain self-occlusions (a, a) for instances {np.unique(loops).tolist()}")
    return e


def _compact_ids(inst: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renumber sparse ids (e.g. 7, 90210) to 1..N, keeping 0 as background, so lookup tables stay small:
    ``(inst, edges, ids)`` with ``ids[new] = old``."""
    ids = np.unique(np.concatenate([[0], inst.ravel()]))
    return np.searchsorted(ids, inst), np.searchsorted(ids, edges), ids


def _occludes_table(inst: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """bool (K+1, K+1) table T with T[a, b] = "instance a occludes b", K = max id; T[a, 0] = True for a >= 1."""
    k = int(inst.max())
    table = np.zeros((k + 1, k + 1), bool)
    table[1:, 0] = True
    table[edges[:, 0], edges[:, 1]] = True
    return table


def occlusion_map(instance_map, edges) -> np.ndarray:
    """The occlusion set O of Eq. (7) as a bool (H, W, 4) array.

    Args:
      instance_map: int (H, W); 0 = background, 1..N = instance ids (negative ids are rejected).
      edges: int (M, 2); row (a, b) = instance a occludes instance b. Ids must appear in ``instance_map``.
        Any set of pairs is allowed (a mutual pair marks both sides of the contact); only `order_labels` needs
        an acyclic graph.

    Returns:
      bool (H, W, 4); ``occ[y, x, d]`` is True when pixel (y, x) occludes its neighbour in direction d
      (left, right, top, bottom): an instance pixel next to a background pixel, or a pixel of instance a next
      to a pixel of instance b where (a, b) is an edge. Pairs pointing outside the image are False.
    """
    inst = _check_instance_map(instance_map)
    edges = _check_edges(edges, inst)
    if inst.max() > MAX_DENSE_ID:
        inst, edges, _ = _compact_ids(inst, edges)
    table = _occludes_table(inst, edges)
    occ = np.zeros(inst.shape + (4,), bool)
    occ[:, 1:, 0] = table[inst[:, 1:], inst[:, :-1]]
    occ[:, :-1, 1] = table[inst[:, :-1], inst[:, 1:]]
    occ[1:, :, 2] = table[inst[1:, :], inst[:-1, :]]
    occ[:-1, :, 3] = table[inst[:-1, :], inst[1:, :]]
    return occ


def boundary_targets(instance_map, edges) -> tuple[np.ndarray, np.ndarray]:
    """Boundary and orientation targets B, E of supplement Sec. 1.3 (the b and e heads of Eq. (4)).

    Args: as ``occlusion_map``.

    Returns:
      B: bool (H, W); pixel p occludes at least one of its 4 neighbours.
      E: float32 (H, W, 4); the directions p occludes (left, right, top, bottom), normalised to sum 1, e.g.
        [0.5, 0, 0.5, 0] for a pixel occluding its left and top neighbours; all zero where B is False.
    """
    occ = occlusion_map(instance_map, edges)
    count = occ.sum(axis=-1)
    b = count > 0
    e = occ.astype(np.float32) / np.maximum(count, 1)[..., None].astype(np.float32)
    return b, e


def order_labels(instance_map, edges) -> np.ndarray:
    """Occlusion-order labels of Sec. 5.1 as an int32 (H, W) array.

    Background pixels get 0. An instance gets 1 + the largest label among the instances it occludes (following
    ``edges``, adjacent or not), and 1 when it occludes none. So every instance has a larger label than each
    of its occludees, as the labels x of Eq. (8) require.

    Args: as ``occlusion_map``.

    Raises:
      ValueError: the edges contain a directed cycle; the message names the instances on cycles.
    """
    inst = _check_instance_map(instance_map)
    e = np.unique(_check_edges(edges, inst), axis=0)
    ids = None
    if inst.max() > MAX_DENSE_ID:  # sparse ids: tables of the number of instances, not of the largest id
        inst, e, ids = _compact_ids(inst, e)
    k = int(inst.max())
    label = np.zeros(k + 1, np.int64)
    remaining = np.ones(k + 1, bool)
    remaining[0] = False
    pending = np.bincount(e[:, 0], minlength=k + 1)  # occludees of each instance not yet labelled
    level = 0
    while True:
        ready = remaining & (pending == 0)
        if not ready.any():
            break
        level += 1
        label[ready] = level  # every occludee was labelled at an earlier level, the latest at level - 1
        remaining &= ~ready
        done_edges = ready[e[:, 1]]
        pending -= np.bincount(e[done_edges, 0], minlength=k + 1)
    if remaining.any():
        members = _cycle_members(e, k)
        members = members if ids is None else ids[members].tolist()
        raise ValueError(f"edges contain a directed occlusion cycle through instances {members}; "
                         "order labels are undefined")
    return label[inst].astype(np.int32)


def _cycle_members(edges: np.ndarray, k: int) -> list[int]:
    """Ids of the instances that lie on a directed cycle (strongly connected components of size > 1)."""
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(k + 1, k + 1))
    _, comp = connected_components(graph, directed=True, connection="strong")
    sizes = np.bincount(comp)
    return np.flatnonzero(sizes[comp] > 1).tolist()


def semantic_map(instance_map, classes) -> np.ndarray:
    """Per-pixel semantic class S of Eq. (4) as an int32 (H, W) array.

    Args:
      instance_map: int (H, W); 0 = background, 1..N = instance ids.
      classes: int (N,); ``classes[k - 1]`` is the class (>= 1) of instance k.

    Returns:
      int32 (H, W); 0 on background, ``classes[k - 1]`` on the pixels of instance k.
    """
    inst = _check_instance_map(instance_map)
    cls = np.asarray(classes)
    if cls.dtype.kind not in "iu" or cls.ndim != 1:
        raise ValueError(f"classes must be an integer (N,) array, got dtype {cls.dtype} shape {cls.shape}")
    if inst.max() > len(cls):
        raise ValueError(f"instance_map has id {inst.max()} but classes has only {len(cls)} entries")
    if cls.size and cls.min() < 1:
        raise ValueError(f"class ids must be >= 1 (0 is background), got {cls.min()}")
    lookup = np.concatenate([[0], cls]).astype(np.int32)
    return lookup[inst]


def touching_pairs(instance_map) -> np.ndarray:
    """Unordered pairs of distinct instances with 4-neighbouring pixels.

    Args:
      instance_map: int (H, W); 0 = background, 1..N = instance ids.

    Returns:
      int32 (K, 2), rows (a, b) with 1 <= a < b, sorted lexicographically, each pair once.
    """
    inst = _check_instance_map(instance_map)
    if inst.max() > np.iinfo(np.int32).max:
        raise ValueError(f"instance_map has ids above the int32 pairs' range (max {inst.max()}); renumber them")
    p = np.concatenate([inst[:, :-1].ravel(), inst[:-1, :].ravel()])
    q = np.concatenate([inst[:, 1:].ravel(), inst[1:, :].ravel()])
    keep = (p != q) & (p > 0) & (q > 0)
    low = np.minimum(p[keep], q[keep]).astype(np.int64)
    high = np.maximum(p[keep], q[keep]).astype(np.int64)
    # One int64 key per pair: a 1-D unique is far faster than np.unique(axis=0) and sorts the same way.
    base = int(inst.max()) + 1
    keys = np.unique(low * base + high)
    return np.stack([keys // base, keys % base], axis=1).reshape(-1, 2).astype(np.int32)
