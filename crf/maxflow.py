"""Minimum s-t cut of a 4-connected grid graph: numba push-relabel.

The graph has one node per pixel, terminal links (``tedges``) and arcs in both directions between
4-neighbours (``right``, ``down``), exactly as in ``CONTRACTS.md``. The moves of the occlusion-order CRF
(paper Sec. 3.3, "we use the graph-cut/max-flow algorithm to compute the minimum cut") are solved here.

Algorithm: preflow push-relabel (Goldberg-Tarjan) with highest-label selection, periodic global relabelling
(a backward breadth-first search from the sink) and the gap heuristic, first phase only: the minimum cut is
known as soon as no active node can reach the sink. The graph is solved as given or mirrored, whichever
starts with fewer nodes holding excess (``solve_grid``). Residual capacities live in one flat ``(H*W, 4)`` array
(left, right, up, down: the arcs of one node are adjacent in memory); the reverse of direction ``d`` is
``d ^ 1``. The sink side returned is the set of nodes that can still reach the sink in the residual graph,
(as given), or the nodes reachable from the excess left in the mirrored graph: either way the smallest
sink side over all minimum cuts.
"""

import numpy as np
from numba import njit

# Neighbour directions, as in CONTRACTS.md: left, right, up (top), down (bottom).
LEFT, RIGHT, UP, DOWN = 0, 1, 2, 3
# A global relabelling is run after this many relabels per node of the grid.
_GLOBAL_RELABEL_FREQUENCY = 2


@njit(cache=True)
def _offsets(width):
    return np.array([-1, 1, -width, width], dtype=np.int64)


@njit(cache=True)
def _global_relabel(res, tcap, excess, label, queue, a_head, a_next, b_head, b_next, b_prev, width, dead):
    """Exact distances to the sink by backward BFS; rebuilds the label buckets. Returns the highest label."""
    n = label.shape[0]
    off = _offsets(width)
    for i in range(n):
        label[i] = dead
    for level in range(n + 2):
        a_head[level] = -1
        b_head[level] = -1
    q_end = 0
    for i in range(n):
        if tcap[i] > 0.0:
            label[i] = 1
            queue[q_end] = i
            q_end += 1
    q_start = 0
    while q_start < q_end:
        v = queue[q_start]
        q_start += 1
        next_level = label[v] + 1
        for d in range(4):
            u = v + off[d]
            # u -> v has direction d ^ 1 from u; the arc exists only when res[u, d ^ 1] > 0, which is
            # always false for arcs that would leave the grid (their capacity is zero).
            if 0 <= u < n and label[u] == dead and res[u, d ^ 1] > 0.0:
                label[u] = next_level
                queue[q_end] = u
                q_end += 1
    highest = 0
    for k in range(q_end):
        i = queue[k]
        level = label[i]
        b_prev[i] = -1
        b_next[i] = b_head[level]
        if b_head[level] >= 0:
            b_prev[b_head[level]] = i
        b_head[level] = i
        if excess[i] > 0.0:
            a_next[i] = a_head[level]
            a_head[level] = i
        highest = level
    return highest


@njit(cache=True)
def _push_relabel(res, tcap, excess, width):
    """Run the first phase of push-relabel in place. Returns (flow pushed into the sink, sink-side mask)."""
    n = tcap.shape[0]
    dead = n + 1
    off = _offsets(width)
    label = np.empty(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    a_head = np.empty(n + 2, dtype=np.int64)
    a_next = np.empty(n, dtype=np.int64)
    b_head = np.empty(n + 2, dtype=np.int64)
    b_next = np.empty(n, dtype=np.int64)
    b_prev = np.empty(n, dtype=np.int64)
    flow = 0.0
    max_label = _global_relabel(res, tcap, excess, label, queue, a_head, a_next, b_head, b_next, b_prev,
                                width, dead)
    max_active = max_label
    relabels = 0
    relabel_budget = int(_GLOBAL_RELABEL_FREQUENCY * n) + 16
    while max_active >= 1:
        i = a_head[max_active]
        if i < 0:
            max_active -= 1
            continue
        a_head[max_active] = a_next[i]
        if label[i] != max_active or excess[i] <= 0.0:
            continue
        h = label[i]
        while True:  # discharge node i
            if h == 1 and tcap[i] > 0.0:
                delta = min(excess[i], tcap[i])
                tcap[i] -= delta
                excess[i] -= delta
                flow += delta
            if excess[i] > 0.0:
                for d in range(4):
                    if res[i, d] > 0.0:
                        j = i + off[d]
                        if label[j] == h - 1:
                            delta = min(excess[i], res[i, d])
                            res[i, d] -= delta
                            res[j, d ^ 1] += delta
                            if excess[j] <= 0.0:
                                a_next[j] = a_head[h - 1]
                                a_head[h - 1] = j
                                if h - 1 > max_active:
                                    max_active = h - 1
                            excess[j] += delta
                            excess[i] -= delta
                            if excess[i] <= 0.0:
                                break
            if excess[i] <= 0.0:
                break
            # Relabel: the smallest admissible label, or dead when the sink is out of reach.
            new_h = dead
            if tcap[i] > 0.0:
                new_h = 1
            for d in range(4):
                if res[i, d] > 0.0:
                    cand = label[i + off[d]] + 1
                    if cand < new_h:
                        new_h = cand
            # Unlink i from the bucket of all nodes at height h.
            nxt = b_next[i]
            prv = b_prev[i]
            if prv >= 0:
                b_next[prv] = nxt
            else:
                b_head[h] = nxt
            if nxt >= 0:
                b_prev[nxt] = prv
            relabels += 1
            if b_head[h] < 0:
                # Gap: nothing is left at height h, so nothing above h can reach the sink any more.
                # Highest-label selection guarantees that no node above h is active.
                for level in range(h + 1, max_label + 1):
                    j = b_head[level]
                    while j >= 0:
                        label[j] = dead
                        j = b_next[j]
                    b_head[level] = -1
                label[i] = dead
                max_label = h - 1
                break
            if new_h >= dead:
                label[i] = dead
                break
            h = new_h
            label[i] = h
            b_prev[i] = -1
            b_next[i] = b_head[h]
            if b_head[h] >= 0:
                b_prev[b_head[h]] = i
            b_head[h] = i
            if h > max_label:
                max_label = h
        if max_label < max_active:
            max_active = max_label
        if relabels > relabel_budget:
            relabels = 0
            max_label = _global_relabel(res, tcap, excess, label, queue, a_head, a_next, b_head, b_next,
                                        b_prev, width, dead)
            max_active = max_label
    _global_relabel(res, tcap, excess, label, queue, a_head, a_next, b_head, b_next, b_prev, width, dead)
    return flow, label < dead


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def _reach_from_excess(res, excess, width):
    """Nodes reachable in the residual graph from the nodes that still hold excess after phase one.

    Together with the source this is the smallest source side of a minimum cut: every minimum cut must
    keep the excess nodes on the source side and is closed under residual arcs.
    """
    n = excess.shape[0]
    off = _offsets(width)
    seen = excess > 0.0
    queue = np.flatnonzero(seen)
    stack = np.empty(n, dtype=np.int64)
    top = queue.shape[0]
    stack[:top] = queue
    while top > 0:
        top -= 1
        u = stack[top]
        for d in range(4):
            if res[u, d] > 0.0:
                v = u + off[d]
                if not seen[v]:
                    seen[v] = True
                    stack[top] = v
                    top += 1
    return seen


@njit(cache=True)
def solve_grid(tedges, right, down):
    """Unchecked minimum cut for trusted float64 C-contiguous input with finite t-links.

    Push-relabel spends its time moving excess, so the graph is solved in the orientation (as given, or
    mirrored) that starts with fewer nodes holding excess; in the jump moves of the paper most pixels
    prefer to keep their label and hold source excess, which the mirrored graph turns into sink capacity.
    Returns ``(flow, sink)``: the maximum flow and the smallest minimum-cut sink side as ``bool (H, W)``
    (as given: the nodes that reach the sink; mirrored: the nodes reachable from the excess left in the
    mirrored graph). Arcs between neighbours may be ``inf``; t-links must be finite.
    """
    height, width = tedges.shape[0], tedges.shape[1]
    more_source, more_sink = _excess_nodes(tedges)
    reverse = more_sink < more_source
    res, tcap, excess, direct = _residual_graph(tedges, right, down, reverse)
    flow, reaches_sink = _push_relabel(res, tcap, excess, width)
    sink = _reach_from_excess(res, excess, width) if reverse else reaches_sink
    return direct + flow, sink.reshape(height, width)


def _checked_capacities(name, array, shape):
    array = np.asarray(array)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (H, W, 2), got {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
            or array.dtype == np.bool_):
        raise ValueError(f"{name} must be a real-valued array castable to float64, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _check_values(name, values):
    if np.isnan(values).any():
        raise ValueError(f"{name} contains NaN capacities")
    if (values < 0).any():
        raise ValueError(f"{name} contains negative capacities (min {values.min()})")


def grid_maxflow(tedges, right, down):
    """Maximum flow and a minimum cut of a 4-connected grid graph.

    Args:
      tedges: ``float64 (H, W, 2)``; ``[..., 0]`` capacity source->p, ``[..., 1]`` capacity p->sink.
      right: ``float64 (H, W, 2)``; ``[y, x, 0]`` capacity (y,x)->(y,x+1), ``[y, x, 1]`` the reverse arc;
        column ``W-1`` is ignored.
      down: ``float64 (H, W, 2)``; ``[y, x, 0]`` capacity (y,x)->(y+1,x), ``[y, x, 1]`` the reverse arc;
        row ``H-1`` is ignored.
      Capacities must be >= 0 and not NaN; ``inf`` is allowed (hard constraints, the c_inf of Eq. 7).

    Returns:
      ``(flow, sink)``: ``flow`` (float) is the maximum flow value, ``inf`` when every cut contains an
      infinite arc; ``sink`` (``bool (H, W)``) is True for pixels on the sink side of a minimum cut (the
      smallest such side). The capacity of that cut equals ``flow``.

    Raises:
      ValueError: on a wrong shape or dtype, an empty grid, NaN or negative capacities.
    """
    tedges = np.asarray(tedges)
    if tedges.ndim != 3 or tedges.shape[-1] != 2 or tedges.shape[0] == 0 or tedges.shape[1] == 0:
        raise ValueError(f"tedges must have shape (H, W, 2) with H, W >= 1, got {tedges.shape}")
    shape = tedges.shape
    tedges = _checked_capacities("tedges", tedges, shape)
    right = _checked_capacities("right", right, shape)
    down = _checked_capacities("down", down, shape)
    _check_values("tedges", tedges)
    _check_values("right", right[:, :-1])
    _check_values("down", down[:-1])
    finite_total = sum(float(np.where(np.isinf(a), 0.0, a).sum()) for a in (tedges, right[:, :-1], down[:-1]))
    # An infinite t-link is replaced by a capacity larger than every finite cut: a minimum cut of the
    # modified graph cuts such a link only when every cut of the original graph is infinite.
    big = 2.0 * finite_total + 1.0
    solver_tedges = np.where(np.isinf(tedges), big, tedges)
    _, sink = solve_grid(solver_tedges, right, down)
    return float(cut_value(tedges, right, down, sink)), sink
