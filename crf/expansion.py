"""Alpha-expansion for the occlusion-order energy, the comparison of supplement Sec. 2."""

import numpy as np

from crf.inputs import check_sigma_occ
from crf.move_graph import BOUNDS, check_weights
from crf.move_solver import MoveSolver


def expansion_moves(sigma, occ, lam=20.0, mu=100.0):
    """Minimise Eq. (8) with one cycle of alpha-expansions in increasing label order (supplement Sec. 2).

    Starts from all labels 0 and expands on alpha = 1, 2, ...; every such expansion is submodular (all
    current labels are below alpha), so each one is optimal. The cycle stops at the first alpha whose
    expansion changes nothing: labels above it would see the same energy differences.

    Args: ``sigma``, ``occ``, ``lam``, ``mu`` as ``crf.jump_moves_result`` (there is no ``max_cuts``: the cycle
    is one expansion per label). Returns ``int32 (H, W)`` labels; raises ``ValueError`` on invalid inputs.
    """
    sigma, occ = check_sigma_occ(sigma, occ)
    lam, mu, _ = check_weights(lam, mu)
    solver = MoveSolver(sigma, occ, lam, mu)
    labels = np.zeros(sigma.shape, dtype=np.int32)
    alpha = 1
    while True:
        move = solver.move(labels, 0, alpha, BOUNDS["constant"])
        if not move.any():
            return labels
        labels[move] = alpha
        alpha += 1
