"""Minimum s-t cut of a 4-connected grid graph (``crf.grid_maxflow``).

The graph has one node per pixel, terminal links (``tedges``) and arcs in both directions between
4-neighbours (``right``, ``down``), exactly as in ``docs/contracts.md``. The moves of the occlusion-order CRF
(paper Sec. 3.3, "we use the graph-cut/max-flow algorithm to compute the minimum cut") are solved by the same
Boykov-Kolmogorov code, fed directly by ``crf.move_solver``.

Two numba solvers share one flat residual layout (``float64 (H*W, 4)``, arcs of a node adjacent in memory;
direction order left, right, up, down, the reverse of ``d`` is ``d ^ 1``): Boykov-Kolmogorov augmenting
paths (``crf.boykov_kolmogorov``) and push-relabel (``crf.push_relabel``). On the jump-move graphs of
615x2048 synthetic scenes BK is 3-10x faster than our push-relabel, and a whole fused move (capacities
included) takes 0.5-0.8x the time of PyMaxflow's solve alone (``experiments/bench_crf.py``); on those of a
network's predictions, where augmenting paths are hundreds of pixels long, push-relabel is up to 10x faster
than BK. The default, ``"auto"`` (``crf.hybrid``), starts with
BK and hands such graphs over to push-relabel. All return the smallest minimum-cut sink side.
"""

import numpy as np
from numba import njit

from crf.boykov_kolmogorov import NEVER, SINK_TREE, Workspace
from crf.hybrid import default_stop_steps, max_flow
from crf.inputs import as_array
from crf.push_relabel import pinned_capacity, push_relabel, reach_from_excess

# Neighbour directions, as in docs/contracts.md: left, right, up (top), down (bottom).
LEFT, RIGHT, UP, DOWN = 0, 1, 2, 3
# Algorithms of solve_grid / grid_maxflow.
AUTO, BOYKOV_KOLMOGOROV, PUSH_RELABEL = 0, 1, 2
METHODS = {"auto": AUTO, "boykov_kolmogorov": BOYKOV_KOLMOGOROV, "push_relabel": PUSH_RELABEL}


@njit(cache=True, nogil=True)
def _residual_graph(tedges, right, down, reverse):
    """Flatten the contract arrays into residual arrays; cancels the common part of the two t-links.

    With ``reverse`` the graph is mirrored (source and sink swapped, every arc reversed): its minimum
    cuts are those of the original graph with the two sides exchanged.
    """
    height, width = tedges.shape[0], tedges.shape[1]
    n = height * width
    fwd, bwd = (1, 0) if reverse else (0, 1)
    res = np.zeros((n, 4), dtype=np.float64)
    tcap = np.empty(n, dtype=np.float64)
    excess = np.empty(n, dtype=np.float64)
    direct = 0.0
    for y in range(height):
        for x in range(width):
            i = y * width + x
            s = tedges[y, x, fwd]
            t = tedges[y, x, bwd]
            common = min(s, t)
            direct += common
            excess[i] = s - common
            tcap[i] = t - common
            if x + 1 < width:
                res[i, RIGHT] = right[y, x, fwd]
                res[i + 1, LEFT] = right[y, x, bwd]
            if y + 1 < height:
                res[i, DOWN] = down[y, x, fwd]
                res[i + width, UP] = down[y, x, bwd]
    return res, tcap, excess, direct


@njit(cache=True, nogil=True)
def _excess_nodes(tedges):
    """Number of nodes whose source link exceeds their sink link, and the converse."""
    more_source = 0
    more_sink = 0
    for y in range(tedges.shape[0]):
        for x in range(tedges.shape[1]):
            if tedges[y, x, 0] > tedges[y, x, 1]:
                more_source += 1
            elif tedges[y, x, 1] > tedges[y, x, 0]:
                more_sink += 1
    return more_source, more_sink


@njit(cache=True, nogil=True)
def cut_value(tedges, right, down, sink):
    """Capacity of the cut whose sink side is ``sink`` (bool (H, W)); arcs from source side to sink side."""
    height, width = sink.shape
    total = 0.0
    for y in range(height):
        for x in range(width):
            if sink[y, x]:
                total += tedges[y, x, 0]
            else:
                total += tedges[y, x, 1]
            if x + 1 < width and sink[y, x] != sink[y, x + 1]:
                total += right[y, x, 0] if sink[y, x + 1] else right[y, x, 1]
            if y + 1 < height and sink[y, x] != sink[y + 1, x]:
                total += down[y, x, 0] if sink[y + 1, x] else down[y, x, 1]
    return total


@njit(cache=True, nogil=True)
def _solve_bk(tedges, right, down, stop_steps, tree, parent, queued, ts, dist, orphans):
    res, tcap, excess, direct = _residual_graph(tedges, right, down, False)
    flow = max_flow(res, excess - tcap, tedges.shape[1], tree, parent, queued, ts, dist, orphans, stop_steps)
    return direct + flow, (tree == SINK_TREE).reshape(tedges.shape[0], tedges.shape[1])


def solve_grid(tedges, right, down, method=AUTO):
    """Unchecked minimum cut for trusted float64 C-contiguous input with finite t-links.

    ``method`` is ``AUTO`` (the default, ``crf.hybrid``: Boykov-Kolmogorov, finished by push-relabel on graphs
    of long augmenting paths), ``BOYKOV_KOLMOGOROV`` (``crf.boykov_kolmogorov`` alone) or ``PUSH_RELABEL``.
    Push-relabel spends its time moving excess, so it solves the graph in the orientation (as given, or
    mirrored) that starts with fewer nodes holding excess; in the jump moves most pixels prefer to keep their
    label and hold source excess, which the mirrored graph turns into sink capacity. Returns ``(flow, sink)``:
    the maximum flow and the smallest minimum-cut sink side as ``bool (H, W)``. Arcs between neighbours may be
    ``inf``. With ``AUTO`` and Boykov-Kolmogorov a t-link may be ``inf`` too (e.g. to pin pixels to the source
    side) provided no pixel has both t-links infinite and some cut is finite; push-relabel alone needs finite
    t-links (``grid_maxflow`` handles the general case).
    """
    height, width = tedges.shape[0], tedges.shape[1]
    if method == PUSH_RELABEL:
        return _solve_push_relabel(tedges, right, down)
    n = height * width
    stop_steps = default_stop_steps(n) if method == AUTO else NEVER
    return _solve_bk(tedges, right, down, stop_steps, *Workspace(n).arrays(n))


@njit(cache=True, nogil=True)
def _solve_push_relabel(tedges, right, down):
    height, width = tedges.shape[0], tedges.shape[1]
    more_source, more_sink = _excess_nodes(tedges)
    reverse = more_sink < more_source
    res, tcap, excess, direct = _residual_graph(tedges, right, down, reverse)
    flow, reaches_sink = push_relabel(res, tcap, excess, width)
    sink = reach_from_excess(res, excess, width) if reverse else reaches_sink
    return direct + flow, sink.reshape(height, width)


def _checked_capacities(name, array, shape, used=np.s_[...]):
    """``array`` as C-contiguous ``float64 (H, W, 2)``, after checking its shape and dtype, and that its
    ``used`` entries (the others are ignored) are neither NaN nor negative nor finite beyond float64's range
    (e.g. a long double 1e400, which the cast would turn into ``inf``, a hard constraint)."""
    array = as_array(name, array)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (H, W, 2), got {array.shape}")
    if array.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be a real-valued array castable to float64, got dtype {array.dtype}")
    if array.dtype.kind in "iu" and array[used].size and np.abs(array[used]).max() > 2**53:
        raise ValueError(f"{name} contains integer capacities above 2**53 (max {np.abs(array[used]).max()}), which "
                         "float64, the solvers' type, cannot hold exactly; scale them down or pass floats")
    with np.errstate(over="ignore"):  # a finite capacity beyond float64 is refused below
        values = np.ascontiguousarray(array, dtype=np.float64)
    if np.isnan(values[used]).any():
        raise ValueError(f"{name} contains NaN capacities")
    if (values[used] < 0).any():
        raise ValueError(f"{name} contains negative capacities (min {values[used].min()})")
    beyond = np.isinf(values[used]) & ~np.isinf(array[used])
    if beyond.any():
        raise ValueError(f"{name} contains finite capacities beyond float64 (e.g. {array[used][beyond][0]!s}; "
                         f"float64 ends at {np.finfo(np.float64).max:g}); scale them down")
    return values


def grid_maxflow(tedges, right, down, method="auto"):
    """Maximum flow and a minimum cut of a 4-connected grid graph.

    Args:
      tedges: ``float64 (H, W, 2)``; ``[..., 0]`` capacity source->p, ``[..., 1]`` capacity p->sink.
      right: ``float64 (H, W, 2)``; ``[y, x, 0]`` capacity (y,x)->(y,x+1), ``[y, x, 1]`` the reverse arc;
        column ``W-1`` is ignored.
      down: ``float64 (H, W, 2)``; ``[y, x, 0]`` capacity (y,x)->(y+1,x), ``[y, x, 1]`` the reverse arc;
        row ``H-1`` is ignored.
      Capacities must be >= 0 and not NaN; ``inf`` is allowed (hard constraints, the c_inf of Eq. 7). The
      finite ones must add up within float64; with k infinite t-links, each solved as a capacity
      ``big = 2 * total + 1`` above every finite cut, ``(k + 1) * big + total`` must be finite too, so that no
      flow of the solvers overflows.
      method: ``"auto"`` (default, ``crf.hybrid``), ``"boykov_kolmogorov"`` or ``"push_relabel"``.

    Returns:
      ``(flow, sink)``: ``flow`` (float) is the maximum flow value, ``inf`` when every cut contains an
      infinite arc; ``sink`` (``bool (H, W)``) is True for pixels on the sink side of a minimum cut (the
      smallest such side). The capacity of that cut equals ``flow``.

    Raises:
      ValueError: on a wrong shape or dtype, an empty grid, NaN or negative capacities, finite capacities
        beyond float64 (before the cast to it), integer ones above 2**53 (float64 would round them) or finite
        ones adding up beyond the limits above.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    tedges = as_array("tedges", tedges)
    if tedges.ndim != 3 or tedges.shape[-1] != 2 or tedges.shape[0] == 0 or tedges.shape[1] == 0:
        raise ValueError(f"tedges must have shape (H, W, 2) with H, W >= 1, got {tedges.shape}")
    shape = tedges.shape
    tedges = _checked_capacities("tedges", tedges, shape)
    right = _checked_capacities("right", right, shape, np.s_[:, :-1])
    down = _checked_capacities("down", down, shape, np.s_[:-1])
    with np.errstate(over="ignore"):  # an overflowing sum is refused below
        finite_total = sum(float(np.where(np.isinf(a), 0.0, a).sum()) for a in (tedges, right[:, :-1], down[:-1]))
    if not np.isfinite(finite_total):
        raise ValueError(f"the finite capacities add up beyond float64 ({finite_total:g}); scale them down")
    # An infinite t-link is replaced by a capacity larger than every finite cut (pinned_capacity): a minimum
    # cut of the modified graph cuts such a link only when every cut of the original graph is infinite.
    pinned = int(np.isinf(tedges).sum())
    big = pinned_capacity(finite_total, pinned)
    if pinned > 0 and not np.isfinite(big):
        raise ValueError(f"the finite capacities add up to {finite_total:g}: with {pinned} infinite t-links, each "
                         "solved as a capacity of 2 * that + 1, the flows could add up beyond float64; scale them "
                         "down")
    solver_tedges = np.where(np.isinf(tedges), big, tedges)
    _, sink = solve_grid(solver_tedges, right, down, METHODS[method])
    return float(cut_value(tedges, right, down, sink)), sink
