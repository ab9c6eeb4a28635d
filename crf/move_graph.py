"""Binary move energies as grid graphs (paper Sec. 3.3, Eqs. 9-14; supplement Sec. 2).

A binary move from the current labeling ``x`` towards a proposal ``z`` lets every pixel either keep its
label (y_p = 0) or take the proposed one (y_p = 1). The jump move of the paper is the proposal
``z = x + 1`` (Eq. 9); the alpha-expansion of the supplement is ``z = alpha``. The binary energy E_b(y)
(Eq. 13) collects, for every pair of neighbours, the four values of the smoothness (Eq. 11) and occlusion
(Eq. 12) terms. Smoothness tables that violate submodularity (Eq. 14; for jumps exactly the pairs whose
labels differ by 1, Eq. 15) are replaced by a submodular upper bound that is exact at y = 0:

* ``"constant"``: the paper's bound (Sec. 3.3), the term becomes the constant max of its table;
* ``"merge"``: keep the table exact where the pair moves towards equal labels and raise the opposite
  mixed entry just enough to restore Eq. (14) (an alternative for better optimizers).

The submodular tables are turned into a graph as in Kolmogorov-Zabih: with S = B+C-A-D >= 0,
E(y_p, y_q) = A + (C-A-S/2) y_p + (B-A-S/2) y_q + S/2 (1-y_p) y_q + S/2 y_p (1-y_q), i.e. an arc of
capacity S/2 each way; infinite entries (the c_inf of Eq. 7) become one-way infinite arcs. The graph
encodes y_p = 1 as "p on the sink side", so that ``E_b(y) = constant + cut(y)``, where ``cut`` is the
capacity of that cut (``crf.maxflow.cut_value``).
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from crf.inputs import check_labels, check_sigma_occ

BOUNDS = {"constant": 0, "merge": 1}
_INF = np.inf


class MoveGraph(NamedTuple):
    """Grid graph of one binary move, in the format of ``crf.grid_maxflow``.

    ``tedges``, ``right``, ``down``: ``float64 (H, W, 2)``; ``constant``: float, so that the (bounded) binary
    energy of a move y equals ``constant + cut(y)`` with y_p = 1 on the sink side.
    """
    tedges: np.ndarray
    right: np.ndarray
    down: np.ndarray
    constant: float


@njit(cache=True, inline="always")
def unary(label, sigma):
    return 1.0 - sigma if label == 0 else sigma


@njit(cache=True, inline="always")
def _occlusion(a, b, mu):
    """mu * o(a, b) of Eq. (7) for an occluder label a and an occludee label b; c_inf = inf for any mu."""
    if a < b:
        return _INF
    return -mu if a > b else 0.0


@njit(cache=True, nogil=True)
def pair_table(xp, zp, xq, zq, occ_pq, occ_qp, lam, mu, bound):
    """(A, B, C, D) = E(0,0), E(0,1), E(1,0), E(1,1) of one neighbour pair, first argument y_p."""
    a = lam * (xp != xq)
    b = lam * (xp != zq)
    c = lam * (zp != xq)
    d = lam * (zp != zq)
    excess = a + d - b - c
    if excess > 0.0:
        if bound == 0:
            top = max(max(a, b), max(c, d))
            a, b, c, d = top, top, top, top
        elif b >= c:
            b += excess
        else:
            c += excess
    if occ_pq:
        a += _occlusion(xp, xq, mu)
        b += _occlusion(xp, zq, mu)
        c += _occlusion(zp, xq, mu)
        d += _occlusion(zp, zq, mu)
    if occ_qp:
        a += _occlusion(xq, xp, mu)
        b += _occlusion(zq, xp, mu)
        c += _occlusion(xq, zp, mu)
        d += _occlusion(zq, zp, mu)
    return a, b, c, d


@njit(cache=True, inline="always")
def split_pair(a, b, c, d):
    """Reparametrise one table into unary terms and two arcs: ``(to_i, to_j, arc i->j, arc j->i)``."""
    if a == _INF:
        raise ValueError("the current labeling violates an occlusion pair (infinite energy)")
    if d == _INF:
        raise ValueError("a move proposal violates an occlusion pair in both pixels: not submodular")
    if c != _INF and b != _INF:
        # Symmetric split of the pairwise part: both arcs carry half of B + C - A - D, which gives the
        # flow the same freedom in both directions (a one-sided split would force it right and down).
        half = 0.5 * (b + c - a - d)
        if half < 0.0:
            raise ValueError("a move term is not submodular (Eq. 14)")
        return c - a - half, b - a - half, half, half
    if c != _INF:
        return c - a, d - c, _INF, 0.0
    if b != _INF:
        return d - b, b - a, 0.0, _INF
    return d - a, 0.0, _INF, _INF


@njit(cache=True, nogil=True)
def _build(labels, proposal, sigma, occ, lam, mu, bound):
    height, width = labels.shape
    n = height * width
    tedges = np.zeros((height, width, 2))
    right = np.zeros((height, width, 2))
    down = np.zeros((height, width, 2))
    delta = np.zeros(n)
    constant = 0.0
    for y in range(height):
        for x in range(width):
            i = y * width + x
            xp, zp = labels[y, x], proposal[y, x]
            keep = unary(xp, sigma[y, x])
            constant += keep
            delta[i] += unary(zp, sigma[y, x]) - keep
            if x + 1 < width:
                a, b, c, d = pair_table(xp, zp, labels[y, x + 1], proposal[y, x + 1], occ[y, x, 1],
                                        occ[y, x + 1, 0], lam, mu, bound)
                to_i, to_j, right[y, x, 0], right[y, x, 1] = split_pair(a, b, c, d)
                delta[i] += to_i
                delta[i + 1] += to_j
                constant += a
            if y + 1 < height:
                a, b, c, d = pair_table(xp, zp, labels[y + 1, x], proposal[y + 1, x], occ[y, x, 3],
                                        occ[y + 1, x, 2], lam, mu, bound)
                to_i, to_j, down[y, x, 0], down[y, x, 1] = split_pair(a, b, c, d)
                delta[i] += to_i
                delta[i + width] += to_j
                constant += a
    for y in range(height):
        for x in range(width):
            v = delta[y * width + x]
            if v >= 0.0:
                tedges[y, x, 0] = v
            else:
                tedges[y, x, 1] = -v
                constant += v
    return tedges, right, down, constant


def _real(name, value) -> float:
    """``value`` as a float if it is one real number (a Python or numpy scalar, or a 0-d array)."""
    if not isinstance(value, (bool, np.bool_, str, bytes)) and np.ndim(value) == 0:
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")


# Largest lam and mu accepted: a graph's capacities add up weights over every pixel, which must stay finite in
# float64 (the max-flow replaces infinite links by twice that sum), so weights near float64's maximum are refused.
MAX_WEIGHT = 1e100


def check_weights(lam, mu, bound="constant"):
    """Validate the weights of Eq. (8) and the bound name; returns ``(lam, mu, bound code)``."""
    lam, mu = _real("lam", lam), _real("mu", mu)
    if not (np.isfinite(lam) and np.isfinite(mu) and lam >= 0 and mu >= 0):
        raise ValueError(f"lam and mu must be finite and >= 0, got lam={lam}, mu={mu}")
    if max(lam, mu) > MAX_WEIGHT:
        raise ValueError(f"lam and mu must be at most {MAX_WEIGHT:g} (sums of them must fit in float64), "
                         f"got lam={lam}, mu={mu}")
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {sorted(BOUNDS)}, got {bound!r}")
    return lam, mu, BOUNDS[bound]


def build_move_graph(labels, proposal, sigma, occ, lam, mu, bound_code):
    """``move_graph`` for inputs already validated (``int64``/``float64``/``bool`` C arrays, bound code)."""
    return MoveGraph(*_build(labels, proposal, sigma, occ, lam, mu, bound_code))


def move_graph(labels, proposal, sigma, occ, lam=20.0, mu=100.0, bound="constant"):
    """Graph of the binary move from ``labels`` (y_p = 0) to ``proposal`` (y_p = 1), Eqs. (10)-(13).

    Args:
      labels: ``int (H, W)`` current labeling, >= 0, satisfying every occlusion pair (finite energy).
      proposal: ``int (H, W)`` label each pixel takes when it moves, >= 0.
      sigma, occ, lam, mu: as in ``crf.energy``.
      bound: submodular upper bound of the non-submodular smoothness tables (module docstring).

    Returns:
      ``MoveGraph(tedges, right, down, constant)``.

    Raises:
      ValueError: on invalid inputs, a current labeling of infinite energy, or a proposal whose move
        energy is not submodular after bounding the smoothness terms.
    """
    sigma, occ = check_sigma_occ(sigma, occ)
    labels = check_labels(labels, sigma.shape)
    proposal = check_labels(proposal, sigma.shape)
    return build_move_graph(labels, proposal, sigma, occ, *check_weights(lam, mu, bound))


def jump_move_graph(labels, sigma, occ, lam=20.0, mu=100.0, bound="constant"):
    """Graph of the jump move from ``labels`` (Eq. 9: y_p = 1 raises x_p by one), see ``move_graph``."""
    labels = check_labels(labels)
    return move_graph(labels, labels + 1, sigma, occ, lam, mu, bound)


def expansion_move_graph(labels, alpha, sigma, occ, lam=20.0, mu=100.0, bound="constant"):
    """Graph of the alpha-expansion from ``labels`` (supplement Sec. 2: y_p = 1 sets x_p = alpha)."""
    labels = check_labels(labels)
    return move_graph(labels, np.full_like(labels, alpha), sigma, occ, lam, mu, bound)
