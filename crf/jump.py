"""The paper's jump-move algorithm (Sec. 3.2-3.3): repeated optimal jumps of a submodular upper bound."""

import numpy as np

from crf.inputs import all_background_is_optimal, check_labels, check_sigma_occ
from crf.move_graph import BOUNDS, check_weights
from crf.move_solver import MoveSolver
from crf.result import Result


def jump_move(labels, sigma, occ, lam=20.0, mu=100.0, bound="constant"):
    """One jump move (Eq. 9): ``bool (H, W)`` mask of the pixels whose label the optimal move raises by 1.

    The move minimises the binary energy of Eq. (13) with the non-submodular smoothness terms replaced by
    ``bound`` (``crf.move_graph``); it is all-False when no jump lowers that bound.
    """
    sigma, occ = check_sigma_occ(sigma, occ)
    labels = check_labels(labels, sigma.shape)
    lam, mu, code = check_weights(lam, mu, bound)
    return MoveSolver(sigma, occ, lam, mu).move(labels, 1, 1, code)


def jump_moves(sigma, occ, lam=20.0, mu=100.0, max_cuts=None):
    """``int32 (H, W)`` labels of ``jump_moves_result`` (the paper's jump moves, Sec. 3.3).

    Args: as ``crf.jump_moves_result`` (``sigma`` float (H, W) in [0, 1], Eq. 5; ``occ`` bool (H, W, 4), Eq. 7;
    ``lam``, ``mu`` of Eq. 8, finite, >= 0 and at most 1e100; ``max_cuts``). Raises ``ValueError`` on invalid
    inputs.
    """
    return jump_moves_result(sigma, occ, lam, mu, max_cuts).labels


def check_max_cuts(max_cuts):
    """Validate a cap on graph cuts: ``None`` or an int >= 1."""
    if max_cuts is not None and (isinstance(max_cuts, bool) or not isinstance(max_cuts, (int, np.integer))
                                 or max_cuts < 1):
        raise ValueError(f"max_cuts must be None or an int >= 1, got {max_cuts!r}")


def jump_moves_result(sigma, occ, lam=20.0, mu=100.0, max_cuts=None) -> Result:
    """Minimise Eq. (8) with the paper's jump moves.

    Starts from all labels 0 and applies the optimal jump move of the submodular upper bound of Sec. 3.3
    (constant smoothness term for neighbours whose labels differ by exactly 1) until the labeling stops
    changing. The true energy never increases. Inputs where nothing prefers a label > 0 and O is empty
    return all zeros without a cut (``crf.inputs.all_background_is_optimal``: the moves would find none).

    Args:
      sigma: ``float (H, W)`` in [0, 1], background probability (Eq. 5).
      occ: ``bool (H, W, 4)`` occlusion pairs (Eq. 7, conventions of docs/contracts.md).
      lam, mu: weights of Eq. (8) (paper: 20 and 100), finite, >= 0 and at most 1e100 (``MAX_WEIGHT``: sums of
        them must fit in float64).
      max_cuts: ``None`` (default: until no move lowers the energy) or the most moves (graph cuts) to solve.
        Each move raises labels by at most 1, so labels stay <= the number of cuts.

    Returns:
      ``crf.Result``: ``int32 (H, W)`` occlusion-order labels and the number of graph cuts solved.
    """
    sigma, occ = check_sigma_occ(sigma, occ)
    lam, mu, _ = check_weights(lam, mu)
    check_max_cuts(max_cuts)
    return run_jump_moves(MoveSolver(sigma, occ, lam, mu), max_cuts)


def run_jump_moves(solver, max_cuts=None) -> Result:
    """``jump_moves_result`` with a ``crf.move_solver.MoveSolver`` of validated inputs (``crf.solve`` then uses
    its arrays for its own moves)."""
    labels = np.zeros(solver.sigma.shape, dtype=np.int32)
    if all_background_is_optimal(solver.sigma, solver.occ):
        return Result(labels, graph_cuts=0)
    moves = 0
    while True:
        move = solver.move(labels, 1, 1, BOUNDS["constant"])
        moves += 1
        if not move.any():
            return Result(labels, graph_cuts=moves)
        labels += move
        if moves == max_cuts:
            return Result(labels, graph_cuts=moves)
