"""``crf.solve``: the project's best minimiser of Eq. (8), escaping the jump moves' local minima.

The paper's jump moves (Sec. 3.2-3.3) stall where the submodular upper bound of Sec. 3.3 hides the gain of
raising a label that sits exactly 1 below a neighbour: a one-pixel band of an occluded instance keeps a
lower label than its interior, or a strip keeps a label 2 below the instance it belongs to, or two instances
of a chain end with the same label. ``solve`` starts from the jump-move labeling and alternates two kinds of
moves that only ever lower the energy, until neither changes anything:

* region moves (``crf.region_moves``): a whole connected label region takes a neighbour's label (or its own
  +- 1), pushing the regions that must stay above (or below) it; evaluated exactly on the region graph;
* pixel moves raising labels by 1 or 2 (``steps``) with the ``"merge"`` bound (``crf.move_graph``): exact
  where a pair of neighbours moves towards equal labels, so the optimal cut sees the gain of closing a band,
  and still an upper bound exact at "no move", so the energy never increases. After a first cut on the whole
  image, each step only cuts the bounding box of what changed since its previous cut; when those find nothing,
  whole-image cuts confirm the fixed point (or resume the descent).

Measured in ``experiments/bench_solve.py``: on ground-truth synthetic inputs it reaches the energy and the
instances of the ground-truth order labels; the jump moves stay in the local minima of Sec. 3.3.
"""

import numpy as np

from crf.inputs import check_sigma_occ
from crf.jump import check_max_cuts, run_jump_moves
from crf.move_graph import BOUNDS, check_weights
from crf.move_solver import MoveSolver
from crf.region_moves import LABEL_MAX, UNLIMITED, region_descent
from crf.result import Result


# Default cap on region-move work (region visits per pixel, ``solve_result``): predicted and ground-truth
# scenes use under 1; random sigma and O at 200x200 use about 5600 uncapped (12x the time of the jump moves),
# about 64 with this cap (1.2x, energy 0.6% above the uncapped result there; a measured mean, not a bound: the
# region moves are greedy, and on some inputs the capped run ends lower than the uncapped one).
REGION_WORK = 64

# The first merge-bound jump of each step covers the whole image; each later one only the bounding box of the
# pixels changed since the previous one of that step, grown by this many pixels.
_MARGIN = 2


def _window(changed, margin):
    """``(y0, y1, x0, x1)``: bounding box of ``changed`` (bool (H, W)) grown by ``margin`` pixels; None if empty."""
    rows, cols = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]
    if len(rows) == 0:
        return None
    height, width = changed.shape
    return (max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height), max(cols[0] - margin, 0),
            min(cols[-1] + margin + 1, width))


def solve(sigma, occ, lam=20.0, mu=100.0, steps=(1, 2), region_work=REGION_WORK, max_cuts=None):
    """``int32 (H, W)`` labels of ``solve_result``: the project's default minimiser of Eq. (8).

    Args: as ``crf.solve_result`` (``sigma`` float (H, W) in [0, 1], Eq. 5; ``occ`` bool (H, W, 4), Eq. 7; the
    weights ``lam``, ``mu`` of Eq. 8, finite, >= 0 and at most 1e100; the work options ``steps``,
    ``region_work``, ``max_cuts``). Raises ``ValueError`` on invalid inputs or options.
    """
    return solve_result(sigma, occ, lam, mu, steps, region_work, max_cuts).labels


def _check_options(steps, region_work, max_cuts) -> tuple[int, ...]:
    """Validate `solve_result`'s options; returns ``steps`` as Python ints (a NumPy ``int8`` step would
    overflow in the label arithmetic)."""
    if (np.ndim(steps) != 1 or len(steps) == 0
            or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < 2**31 for k in steps)):
        raise ValueError(f"steps must be a non-empty sequence of positive ints (< 2**31) such as (1, 2), got "
                         f"{steps!r}")
    if region_work is not None and not (isinstance(region_work, (int, float, np.integer, np.floating))
                                        and not isinstance(region_work, bool) and 0 <= region_work < np.inf):
        raise ValueError(f"region_work must be None (no cap) or a finite number >= 0, got {region_work!r}")
    check_max_cuts(max_cuts)
    return tuple(int(k) for k in steps)


def solve_result(sigma, occ, lam=20.0, mu=100.0, steps=(1, 2), region_work=REGION_WORK, max_cuts=None) -> Result:
    """Minimise Eq. (8): jump moves (Sec. 3.3), then region moves and merge-bound jumps to a joint fixed point.

    The energy of the result is never higher than that of ``crf.jump_moves(sigma, occ, lam, mu)``: it
    starts from that labeling and only takes moves that lower the energy. It is a local minimum, not the
    optimum, and the region moves visit regions in raster order: a transposed or mirrored input (its ``occ``
    directions mapped with it) can end in another local minimum (4 of 150 random problems in an audit, e.g.
    -384.1 against -382.9; ``jump_moves`` and ``expansion_moves`` gave the mirrored labeling on all 150).
    Inputs where nothing prefers a label > 0 and O is empty return all zeros at once
    (``crf.inputs.all_background_is_optimal``).

    Work: every graph cut costs about one max-flow on the image (the merge-bound ones after the first of each step
    only on the box of what changed, until a last round on the whole image finds nothing); the jump moves take one
    cut per move and each move raises labels by at most 1 (so the jump moves' labels stay <= their cuts; region
    moves then raise labels without a cut, so ``solve``'s labels have no such bound). Region moves cost
    one region visit per region a proposed move and its pushes enter (a visit scans that region's neighbours); on
    inputs whose occlusion pairs tie thousands of small regions together (e.g. random sigma and O) the pushes
    reach a large part of the region graph, so their total is capped by ``region_work`` visits per pixel.
    Predicted and ground-truth scenes use under 1 visit per pixel (``experiments/bench_solve.py``), far below the
    cap.

    Args:
      sigma: ``float (H, W)`` in [0, 1], background probability (Eq. 5).
      occ: ``bool (H, W, 4)`` occlusion pairs (Eq. 7, conventions of docs/contracts.md).
      lam, mu: weights of Eq. (8) (paper: 20 and 100), finite and >= 0.
      steps: label increments of the merge-bound jump moves (positive ints below 2**31; ``(1,)`` is faster,
        ``(1, 2)`` also closes gaps of 2 labels, which predicted inputs often leave). No move, of these or a
        region move, that would raise a label above 2**31 - 1 (the largest int32, ``LABEL_MAX``) is taken.
      region_work: region visits allowed per pixel (default ``REGION_WORK``); ``None`` for no cap. Once they
        are used, no more region moves are tried (the moves applied are kept); the budget is checked before
        each region, so the last region's proposals may take it a little beyond.
      max_cuts: ``None`` (default: until no move lowers the energy) or the most graph cuts to solve, jump
        moves included; the result is the labeling reached after them.

    Returns:
      ``crf.Result``: ``int32 (H, W)`` occlusion-order labels (0 = background), the graph cuts solved (jump
      moves included), the region moves applied and the region visits used.

    Raises:
      ValueError: on invalid inputs (as ``crf.jump_moves``) or options.
    """
    sigma, occ = check_sigma_occ(sigma, occ)
    lam, mu, _ = check_weights(lam, mu)
    steps = _check_options(steps, region_work, max_cuts)
    solver = MoveSolver(sigma, occ, lam, mu)
    start = run_jump_moves(solver, max_cuts)
    if start.graph_cuts == 0:  # run_jump_moves found all zeros a global minimum: no move can lower it
        return start
    labels = start.labels
    stats = {"region_moves": 0, "graph_cuts": start.graph_cuts, "region_visits": 0}
    # a cap beyond int64 is no cap
    budget = UNLIMITED if region_work is None else int(min(region_work * labels.size, UNLIMITED))
    cuts_left = UNLIMITED if max_cuts is None else max_cuts - start.graph_cuts
    last = {step: None for step in steps}  # labeling at the last cut of each step, None: cut the whole image
    while True:
        if stats["region_visits"] < budget:
            labels, applied, visits = region_descent(labels, sigma, occ, lam, mu, budget - stats["region_visits"])
            stats["region_moves"] += applied
            stats["region_visits"] += visits
        whole_round, progress = all(last[step] is None for step in steps), False
        for step in steps:
            window = (0, labels.shape[0], 0, labels.shape[1]) if last[step] is None else _window(
                labels != last[step], _MARGIN)
            if window is None or cuts_left <= 0:
                continue
            move = solver.move(labels, 1, step, BOUNDS["merge"], window)
            stats["graph_cuts"] += 1
            cuts_left -= 1
            last[step] = labels
            if move.any() and labels[move].max() <= LABEL_MAX - step:  # else the move would overflow: not taken
                labels = labels.copy()
                labels[move] += step
                progress = True
        if progress:
            continue
        if whole_round or cuts_left <= 0:
            break
        # The windowed cuts found nothing, but a change can make a move worthwhile beyond their boxes (their
        # frames stay still): the fixed point is only reached when whole-image cuts find nothing too.
        last = {step: None for step in steps}
    return Result(labels, **stats)
