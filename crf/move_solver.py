"""Binary moves solved without intermediate graphs: capacities go straight into the max-flow's residual arrays.

``crf.move_graph`` writes a move's graph as the contract arrays of ``crf.grid_maxflow`` (``tedges``, ``right``,
``down``: 48 bytes a pixel), which ``crf.maxflow`` copies into the residual layout of ``crf.boykov_kolmogorov``.
``MoveSolver`` computes the same capacities (``pair_table`` and ``split_pair``, added up in the same order, so
the same numbers and the same smallest minimum cut) straight into residual arrays that the successive moves
of one image reuse, with the max-flow's narrow ``Workspace``: 51 bytes a pixel in all, allocated once.

A move may be restricted to a window: the pixels of a one-pixel frame around it are held at y = 0 by infinite
source links, which keeps the pairs across the window border exact. The move is taken only when it lowers
the bounded energy (Eq. 13) by more than a relative tolerance; that gain is summed over the moved pixels and
the pairs that touch them, straight from the tables.
"""

import numpy as np
from numba import njit

from crf.boykov_kolmogorov import NEVER, SINK_TREE, Workspace
from crf.hybrid import STOP_PATH, STOP_STEPS_PER_NODE, default_stop_steps, max_flow
from crf.maxflow import DOWN, LEFT, RIGHT, UP
from crf.move_graph import pair_table, split_pair, unary
from crf.moves import RELATIVE_TOLERANCE


@njit(cache=True, nogil=True)
def _fill(labels, keep, offset, sigma, occ, lam, mu, bound, box, window, res, terminal):
    """Residual graph of the move ``z = keep * x + offset`` on ``box`` = (y0, y1, x0, x1), node (y - y0) *
    (x1 - x0) + (x - x0); pixels of the box outside ``window`` get an infinite source link. ``res`` and
    ``terminal`` are the first (box size) rows of the buffers. Returns the sum of the sink links (as
    ``tedges[..., 1].sum()`` of ``crf.move_graph``), the energy scale of the tolerance."""
    y0, y1, x0, x1 = box
    width = x1 - x0
    shift = keep == 1 and offset != 0  # every label moves by offset: equal neighbours stay equal
    stay = 0.0
    res[:] = 0.0
    terminal[:] = 0.0
    for y in range(y0, y1):
        for x in range(x0, x1):
            i = (y - y0) * width + (x - x0)
            xp = labels[y, x]
            zp = keep * xp + offset
            terminal[i] += unary(zp, sigma[y, x]) - unary(xp, sigma[y, x])
            if x + 1 < x1:
                xq = labels[y, x + 1]
                if shift and xq == xp and not occ[y, x, 1] and not occ[y, x + 1, 0]:
                    res[i, RIGHT] = lam  # the table (0, lam, lam, 0): split_pair gives arcs lam and adds 0.0
                    res[i + 1, LEFT] = lam
                else:
                    a, b, c, d = pair_table(xp, zp, xq, keep * xq + offset, occ[y, x, 1], occ[y, x + 1, 0], lam,
                                            mu, bound)
                    to_i, to_j, res[i, RIGHT], res[i + 1, LEFT] = split_pair(a, b, c, d)
                    terminal[i] += to_i
                    terminal[i + 1] += to_j
            if y + 1 < y1:
                xq = labels[y + 1, x]
                if shift and xq == xp and not occ[y, x, 3] and not occ[y + 1, x, 2]:
                    res[i, DOWN] = lam
                    res[i + width, UP] = lam
                else:
                    a, b, c, d = pair_table(xp, zp, xq, keep * xq + offset, occ[y, x, 3], occ[y + 1, x, 2], lam,
                                            mu, bound)
                    to_i, to_j, res[i, DOWN], res[i + width, UP] = split_pair(a, b, c, d)
                    terminal[i] += to_i
                    terminal[i + width] += to_j
            if terminal[i] < 0.0:  # final now: its up and left pairs came before it
                stay -= terminal[i]
    wy0, wy1, wx0, wx1 = window
    for y in range(y0, y1):
        step = 1 if y < wy0 or y >= wy1 else max(x1 - x0 - 1, 1)  # whole frame rows, else the two ends
        for x in range(x0, x1, step):
            if y < wy0 or y >= wy1 or x < wx0 or x >= wx1:
                terminal[(y - y0) * width + (x - x0)] = np.inf
    return stay


@njit(cache=True, inline="always")
def _pair_gain(xp, zp, xq, zq, mp, mq, occ_pq, occ_qp, lam, mu, bound, shift):
    """Table at (0, 0) minus table at (y_p, y_q) of one pair, at least one of them moving."""
    if shift and mp and mq and xq == xp and not occ_pq and not occ_qp:
        return 0.0  # equal labels moving together: the table (0, lam, lam, 0) keeps its value 0
    a, b, c, d = pair_table(xp, zp, xq, zq, occ_pq, occ_qp, lam, mu, bound)
    return -((d if mq else c) - a if mp else b - a)


@njit(cache=True, nogil=True)
def _gain(labels, keep, offset, sigma, occ, lam, mu, bound, box, tree):
    """Bounded energy at y = 0 minus at the move y (y_p = 1 where ``tree`` is SINK_TREE, node order of
    ``_fill``): the unary change of every moved pixel and the table change of every pair touching one."""
    y0, y1, x0, x1 = box
    width = x1 - x0
    shift = keep == 1 and offset != 0
    gain = 0.0
    for y in range(y0, y1):
        for x in range(x0, x1):
            i = (y - y0) * width + (x - x0)
            xp = labels[y, x]
            zp = keep * xp + offset
            mp = tree[i] == SINK_TREE
            if mp:
                gain -= unary(zp, sigma[y, x]) - unary(xp, sigma[y, x])
            if x + 1 < x1 and (mp or tree[i + 1] == SINK_TREE):
                xq = labels[y, x + 1]
                gain += _pair_gain(xp, zp, xq, keep * xq + offset, mp, tree[i + 1] == SINK_TREE, occ[y, x, 1],
                                   occ[y, x + 1, 0], lam, mu, bound, shift)
            if y + 1 < y1 and (mp or tree[i + width] == SINK_TREE):
                xq = labels[y + 1, x]
                gain += _pair_gain(xp, zp, xq, keep * xq + offset, mp, tree[i + width] == SINK_TREE, occ[y, x, 3],
                                   occ[y + 1, x, 2], lam, mu, bound, shift)
    return gain


@njit(cache=True, nogil=True)
def _solve(labels, keep, offset, sigma, occ, lam, mu, bound, box, window, stop_steps, stop_path, res, terminal,
           tree, parent, queued, ts, dist, orphans):
    """Cut of one move (``crf.hybrid.max_flow``); returns ``(moves, gain, stay)``: whether some pixel is on the
    sink side, the gain of that cut (``_gain``) and the energy scale (``_fill``)."""
    stay = _fill(labels, keep, offset, sigma, occ, lam, mu, bound, box, window, res, terminal)
    max_flow(res, terminal, box[3] - box[2], tree, parent, queued, ts, dist, orphans, stop_steps, stop_path)
    for i in range(tree.shape[0]):
        if tree[i] == SINK_TREE:
            return True, _gain(labels, keep, offset, sigma, occ, lam, mu, bound, box, tree), stay
    return False, 0.0, stay


@njit(cache=True, nogil=True)
def _sink_mask(tree, box, mask):
    """Set ``mask`` (bool (H, W)) True on the pixels of ``box`` whose node is on the sink side."""
    y0, y1, x0, x1 = box
    for y in range(y0, y1):
        for x in range(x0, x1):
            mask[y, x] = tree[(y - y0) * (x1 - x0) + (x - x0)] == SINK_TREE


class MoveSolver:
    """Optimal binary moves (``crf.move_graph``) on one image, reusing one set of max-flow arrays.

    ``sigma``: ``float64 (H, W)`` and ``occ``: ``bool (H, W, 4)``, validated (``crf.inputs``); ``lam``, ``mu``
    floats. The arrays (``float64 (H*W, 4)`` residuals, ``float64 (H*W,)`` terminal links, a ``Workspace``)
    are allocated at the first move and live as long as the solver; a move that ``crf.hybrid`` hands over to
    push-relabel allocates about 40 bytes a pixel more for its duration. ``stop``: ``(steps per node, steps per
    augmentation)``, when the max-flow's Boykov-Kolmogorov search gives up and push-relabel finishes
    (``crf.hybrid``); ``None``: never, BK alone. Either way the cut is a minimum one (the same one but for
    exact ties broken by rounding).
    """

    def __init__(self, sigma, occ, lam, mu, stop=(STOP_STEPS_PER_NODE, STOP_PATH)):
        self.sigma, self.occ, self.lam, self.mu = sigma, occ, lam, mu
        self.stop = stop
        self._buffers = None

    def move(self, labels, keep, offset, bound, window=None):
        """Optimal move of ``labels`` (``int32`` or ``int64 (H, W)``) towards ``z = keep * labels + offset``
        (``keep`` 1 and ``offset`` k: a jump by k; ``keep`` 0: an expansion on ``offset``) under the bound code
        ``bound``.

        ``window``: ``None`` (the whole image) or ``(y0, y1, x0, x1)``, the pixels allowed to move. Returns
        ``bool (H, W)``, True where the move changes the label: the smallest minimum cut of the move graph,
        all False when it does not lower the bounded energy (Eq. 13) by more than the relative tolerance.
        """
        height, width = labels.shape
        window = (0, height, 0, width) if window is None else tuple(int(v) for v in window)
        box = (max(window[0] - 1, 0), min(window[1] + 1, height), max(window[2] - 1, 0), min(window[3] + 1, width))
        n = (box[1] - box[0]) * (box[3] - box[2])
        if self._buffers is None:
            size = height * width
            self._buffers = (np.empty((size, 4)), np.empty(size), Workspace(size))
        res, terminal, workspace = self._buffers
        arrays = workspace.arrays(n)
        steps, path = (NEVER, 0.0) if self.stop is None else (default_stop_steps(n, self.stop[0]), float(self.stop[1]))
        moves, gain, stay = _solve(labels, keep, offset, self.sigma, self.occ, self.lam, self.mu, bound, box,
                                   window, steps, path, res[:n], terminal[:n], *arrays)
        mask = np.zeros((height, width), dtype=bool)
        if moves and gain > RELATIVE_TOLERANCE * max(1.0, stay):
            _sink_mask(arrays[0], box, mask)
        return mask
