"""Preflow push-relabel max-flow on a 4-connected grid (numba), first phase only.

Goldberg-Tarjan push-relabel with highest-label selection, periodic global relabelling (a backward
breadth-first search from the sink) and the gap heuristic. The minimum cut is known as soon as no active
node can reach the sink, so the second phase (returning excess to the source) is skipped. Residual
capacities use the layout of ``crf.maxflow``: ``res`` is ``float64 (H*W, 4)`` (left, right, up, down; the
reverse of direction ``d`` is ``d ^ 1``), ``tcap`` the residual capacity to the sink and ``excess`` the flow
already received from the source.
"""

import numpy as np
from numba import njit

# A global relabelling is run after this many relabels per node of the grid (tuned on the CRF moves).
_GLOBAL_RELABEL_FREQUENCY = 0.5


@njit(cache=True, nogil=True)
def pinned_capacity(finite_total, pinned):
    """The finite capacity push-relabel solves an infinite terminal link (a pixel pinned to a side) with:
    ``2 * finite_total + 1``, above every cut of finite capacities (``finite_total``: all of them added up). An
    infinite excess pushed along an infinite arc would turn the residuals into NaN. No flow or excess exceeds the
    source links and the finite arcs together; ``inf`` when, with ``pinned`` such links (several flowing into one
    node), that is beyond float64 (``(pinned + 1) * big + finite_total``), where push-relabel would meet
    ``inf - inf`` and never end: the callers refuse a graph with ``pinned > 0`` and an infinite result."""
    big = 2.0 * finite_total + 1.0
    if pinned > 0 and not np.isfinite((pinned + 1) * big + finite_total):
        return np.inf
    return big


@njit(cache=True, nogil=True)
def _offsets(width):
    return np.array([-1, 1, -width, width], dtype=np.int64)


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def push_relabel(res, tcap, excess, width):
    """Run the first phase of push-relabel in place. Returns (flow pushed into the sink, sink-side mask)."""
    n = tcap.shape[0]
    dead = n + 1
    off = _offsets(width)
    label = np.empty(n, dtype=np.int32)
    queue = np.empty(n, dtype=np.int32)
    a_head = np.empty(n + 2, dtype=np.int32)
    a_next = np.empty(n, dtype=np.int32)
    b_head = np.empty(n + 2, dtype=np.int32)
    b_next = np.empty(n, dtype=np.int32)
    b_prev = np.empty(n, dtype=np.int32)
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


@njit(cache=True, nogil=True)
def reach_from_excess(res, excess, width):
    """Nodes reachable in the residual graph from the nodes that still hold excess after phase one.

    Together with the source this is the smallest source side of a minimum cut: every minimum cut must
    keep the excess nodes on the source side and is closed under residual arcs.
    """
    n = excess.shape[0]
    off = _offsets(width)
    seen = excess > 0.0
    queue = np.flatnonzero(seen)
    stack = np.empty(n, dtype=np.int32)
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
