"""The occlusion-order CRF energy, Eq. (8) of the paper, written independently of any solver."""

import numpy as np

from crf.inputs import check_labels, check_sigma_occ
from crf.move_graph import check_weights


def _occluder_occludee_labels(labels, occ):
    """Labels (x_p, x_q) of every ordered pair (p, q) in O, p occluding q; two int64 (M,) arrays."""
    pairs = (
        (labels[:, 1:], labels[:, :-1], occ[:, 1:, 0]),   # q is the left neighbour of p
        (labels[:, :-1], labels[:, 1:], occ[:, :-1, 1]),  # q is the right neighbour
        (labels[1:], labels[:-1], occ[1:, :, 2]),         # q is the top neighbour
        (labels[:-1], labels[1:], occ[:-1, :, 3]),        # q is the bottom neighbour
    )
    x_p = np.concatenate([p[m] for p, _, m in pairs])
    x_q = np.concatenate([q[m] for _, q, m in pairs])
    return x_p, x_q


def energy(labels, sigma, occ, lam=20.0, mu=100.0):
    """Energy of Eq. (8) for a labeling.

    E(x) = sum_p u_p(x_p) + lam * sum_{(p,q) in N} [x_p != x_q] + mu * sum_{(p,q) in O} o(x_p, x_q), with
    u_p of Eq. (5) (``1 - sigma_p`` for label 0, ``sigma_p`` otherwise), N the 4-connected pairs and o of
    Eq. (7) (``c_inf`` when x_p < x_q, -1 when x_p > x_q, else 0).

    Args:
      labels: ``int (H, W)`` occlusion-order labels, >= 0.
      sigma: ``float (H, W)`` in [0, 1], background probability.
      occ: ``bool (H, W, 4)`` occlusion pairs (conventions of docs/contracts.md).
      lam, mu: weights of the smoothness and occlusion terms, finite and >= 0 (as the solvers require).

    Returns:
      The energy as a float; ``inf`` when an occlusion pair is violated (c_inf is infinite).
    """
    sigma, occ = check_sigma_occ(sigma, occ)
    labels = check_labels(labels, sigma.shape)
    lam, mu, _ = check_weights(lam, mu)
    unary = np.where(labels == 0, 1.0 - sigma, sigma).sum()
    boundaries = np.count_nonzero(labels[:, 1:] != labels[:, :-1]) + np.count_nonzero(labels[1:] != labels[:-1])
    x_p, x_q = _occluder_occludee_labels(labels, occ)
    if (x_p < x_q).any():
        return float("inf")
    activated = np.count_nonzero(x_p > x_q)
    return float(unary + lam * boundaries - mu * activated)
