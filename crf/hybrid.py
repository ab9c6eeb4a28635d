"""Max-flow that starts with Boykov-Kolmogorov and hands hard graphs over to push-relabel (the default solver).

Boykov-Kolmogorov (``crf.boykov_kolmogorov``) is the fastest of our solvers on the moves of ground-truth and
noisy scenes, where augmenting paths are short. On the moves of a network's predictions, where one
occlusion-order region covers most of the image and its few terminal links lie far apart, its augmenting paths
run over hundreds of pixels and every augmentation walks them and re-attaches their orphans: there it was up to
10x slower than push-relabel (``crf.push_relabel``; ``experiments/bench_maxflow.py``). ``max_flow`` therefore
runs BK until its steps (path nodes walked and orphans processed) pass ``STOP_STEPS_PER_NODE`` per node while
averaging more than ``STOP_PATH`` per augmentation, and then finishes the maximum flow of the residual graph it
leaves with push-relabel. Both end with a minimum cut, the smallest minimum-cut sink side; that side is unique
in exact arithmetic, and on every move of ``experiments/bench_maxflow.py`` handed over the two found the same
one. Only where several minimum cuts tie exactly can floating-point rounding make them pick different ones (of
the same value), as BK and push-relabel alone do on random inputs. The rule depends on the graph alone, so a
result never depends on the machine or the timing.
"""

import numpy as np
from numba import njit

from crf.boykov_kolmogorov import FREE, SINK_TREE, boykov_kolmogorov
from crf.push_relabel import pinned_capacity, push_relabel, reach_from_excess

# Switch rule (measured in experiments/bench_maxflow.py): the moves of ground-truth, noisy and random inputs
# average at most about 20 steps per augmentation and finish within about 10 steps per node; those of
# predicted scenes average 50-200.
STOP_STEPS_PER_NODE = 0.25
STOP_PATH = 100.0


@njit(cache=True, nogil=True)
def _mirror(res, width):
    """Reverse every arc of the residual graph in place: ``res[i, d]`` and ``res[i + off[d], d ^ 1]`` swap."""
    n = res.shape[0]
    for i in range(n):
        if i + 1 < n:  # right of i and left of i + 1 (zero across a row end, so the swap keeps them zero)
            res[i, 1], res[i + 1, 0] = res[i + 1, 0], res[i, 1]
        if i + width < n:
            res[i, 3], res[i + width, 2] = res[i + width, 2], res[i, 3]


@njit(cache=True, nogil=True)
def finish_with_push_relabel(res, terminal, width, tree):
    """Maximum flow of the residual graph ``res`` with signed terminal residuals ``terminal`` (as
    ``crf.boykov_kolmogorov``: positive to the source, negative to the sink) by push-relabel; returns the flow
    it adds and marks the smallest minimum-cut sink side ``tree[i] = SINK_TREE`` (``FREE`` elsewhere).

    Push-relabel spends its time moving excess, so it runs on the orientation that starts with fewer nodes
    holding excess (the mirrored graph when more nodes keep source capacity than sink capacity); its sink side
    is then the set reached from the nodes still holding excess. Infinite terminal links (pixels pinned to a
    side) become ``crf.push_relabel.pinned_capacity``, as in ``crf.grid_maxflow``, and as there a
    ``ValueError`` refuses a graph whose flows could then add up beyond float64. ``res`` and ``terminal`` are
    consumed."""
    n = terminal.shape[0]
    sources = 0
    sinks = 0
    pinned = 0
    finite = 0.0
    for i in range(n):
        sources += terminal[i] > 0.0
        sinks += terminal[i] < 0.0
        if np.isfinite(terminal[i]):
            finite += abs(terminal[i])
        else:
            pinned += 1
        for d in range(4):
            if np.isfinite(res[i, d]):
                finite += res[i, d]
    big = pinned_capacity(finite, pinned)
    if pinned > 0 and not np.isfinite(big):
        raise ValueError("finish_with_push_relabel: with infinite terminal links, each solved as a capacity of "
                         "2 * the finite capacities + 1, the flows could add up beyond float64")
    mirrored = sinks < sources
    excess = np.empty(n)
    for i in range(n):  # terminal becomes the sink capacities of the solved orientation
        toward_sink = -terminal[i] if mirrored else terminal[i]
        excess[i] = min(max(toward_sink, 0.0), big)
        terminal[i] = min(max(-toward_sink, 0.0), big)
    if mirrored:
        _mirror(res, width)
    flow, reaches_sink = push_relabel(res, terminal, excess, width)
    sink = reach_from_excess(res, excess, width) if mirrored else reaches_sink
    for i in range(n):
        tree[i] = SINK_TREE if sink[i] else FREE
    return flow


@njit(cache=True, nogil=True)
def max_flow(res, terminal, width, tree, parent, queued, ts, dist, orphans, stop_steps, stop_path=STOP_PATH):
    """Maximum flow in place with a ``Workspace``'s arrays, as ``crf.boykov_kolmogorov`` (same arguments and the
    same ``tree == SINK_TREE`` sink side afterwards), finished by push-relabel when BK gives up after
    ``stop_steps`` steps averaging more than ``stop_path`` per augmentation (``STOP_STEPS_PER_NODE`` times the
    number of nodes for the default solver). Returns the flow."""
    flow, finished = boykov_kolmogorov(res, terminal, width, tree, parent, queued, ts, dist, orphans, stop_steps,
                                       stop_path)
    if finished:
        return flow
    return flow + finish_with_push_relabel(res, terminal, width, tree)


def default_stop_steps(n, per_node=STOP_STEPS_PER_NODE):
    """``stop_steps`` for a graph of ``n`` nodes, ``per_node`` steps a node (the default solver's by default)."""
    return np.int64(per_node * n)
