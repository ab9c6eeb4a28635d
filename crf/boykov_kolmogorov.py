"""Boykov-Kolmogorov augmenting-path max-flow on a 4-connected grid (numba).

Two search trees grow from the terminals (source tree S, sink tree T) through non-saturated arcs; when they
touch, the path is augmented, the nodes cut off from their tree become orphans and are re-attached
("adopted") to a node of the same tree that still has a path to its terminal, or freed. The distance /
timestamp heuristic of the original paper keeps the trees shallow. Y. Boykov and V. Kolmogorov, "An
experimental comparison of min-cut/max-flow algorithms for energy minimization in vision", PAMI 2004.

Residual capacities use the layout of ``crf.maxflow``: ``res`` is ``float64 (H*W, 4)`` (left, right, up,
down; the reverse of direction ``d`` is ``d ^ 1``), arcs leaving the grid have capacity 0. ``terminal`` is
``float64 (H*W,)``: a positive value is residual capacity from the source, a negative one to the sink.
The search state lives in a ``Workspace`` of narrow arrays (int8 tree and parent direction, int32 node
indices, timestamps and distances: 11 bytes a node) that successive cuts of one image reuse.
"""

import numpy as np
from numba import njit

FREE, SOURCE_TREE, SINK_TREE = 0, 1, 2
NO_PARENT, TERMINAL = -1, 4
_FAR = np.iinfo(np.int64).max
_LAST_TIME = np.iinfo(np.int32).max
IN_QUEUE, IN_SWEEP = 1, 2  # active: in the FIFO, or a starting root the first sweep has not reached yet
NEVER = np.iinfo(np.int64).max  # stop_steps of a search that never gives up


class Workspace:
    """Scratch arrays of ``boykov_kolmogorov`` for graphs of up to ``n`` nodes: ``tree`` int8 (FREE, SOURCE_TREE,
    SINK_TREE; after a solve SINK_TREE marks the sink side), ``parent`` int8 (direction to the parent, NO_PARENT
    or TERMINAL), ``queued`` int8 (0, or IN_QUEUE, or IN_SWEEP), ``ts`` and ``dist`` int32 (timestamp /
    distance heuristic), ``orphans`` int32 node indices (a stack, only its top pages ever touched). Only the
    first ``m`` entries are used for a graph of ``m`` nodes."""

    def __init__(self, n):
        self.tree = np.empty(n, dtype=np.int8)
        self.parent = np.empty(n, dtype=np.int8)
        self.queued = np.empty(n, dtype=np.int8)
        self.ts = np.empty(n, dtype=np.int32)
        self.dist = np.empty(n, dtype=np.int32)
        self.orphans = np.empty(n, dtype=np.int32)

    def arrays(self, m):
        return self.tree[:m], self.parent[:m], self.queued[:m], self.ts[:m], self.dist[:m], self.orphans[:m]


@njit(cache=True, inline="always")
def _arc_into_tree(res, p, q, d, tree):
    """Residual of the arc that lets tree node q reach p's side: q->p in S, p->q in T (q = p + off[d])."""
    return res[q, d ^ 1] if tree == SOURCE_TREE else res[p, d]


@njit(cache=True, nogil=True)
def _origin_distance(q, parent, ts, dist, off, time):
    """Distance from q to its terminal through parents, or _FAR when the chain ends at an orphan."""
    length = 0
    j = q
    while True:
        if ts[j] == time:
            return length + dist[j]
        length += 1
        if parent[j] == TERMINAL:
            ts[j] = time
            dist[j] = 1
            return length
        if parent[j] == NO_PARENT:
            return _FAR
        j = j + off[parent[j]]


@njit(cache=True, inline="always")
def _enqueue(queue, head, size, q, queued):
    """Append q to the circular FIFO ``queue[head:head + size]``; returns the queue (twice as large, in order,
    when it was full) and its head and size."""
    capacity = queue.shape[0]
    if size == capacity:
        grown = np.empty(2 * capacity, dtype=queue.dtype)
        for k in range(size):
            grown[k] = queue[head + k - capacity if head + k >= capacity else head + k]
        queue, head, capacity = grown, 0, 2 * capacity
    queue[head + size - capacity if head + size >= capacity else head + size] = q
    queued[q] = IN_QUEUE
    return queue, head, size + 1


@njit(cache=True, nogil=True)
def boykov_kolmogorov(res, terminal, width, tree, parent, queued, ts, dist, orphans, stop_steps=NEVER,
                      stop_path=0.0):
    """Maximum flow in place, with the scratch arrays of a ``Workspace`` (``Workspace.arrays(n)``, any content
    on entry). Returns ``(flow, finished)``. When ``finished``, ``tree[i] == SINK_TREE`` exactly for the nodes
    that can reach the sink in the final residual graph (the smallest minimum-cut sink side).

    Giving up: the search counts its steps (nodes walked along augmenting paths, orphans processed). Once they
    exceed ``stop_steps`` and average more than ``stop_path`` per augmentation, it returns ``finished = False``
    between two augmentations: ``res`` and ``terminal`` then hold the residual graph of a valid flow of value
    ``flow``, whose maximum flow another algorithm can finish (``crf.hybrid``). Long paths are where this
    algorithm is slow (each augmentation walks its path and re-attaches its orphans); the defaults never stop.

    Active nodes are taken first from one sweep over the starting roots (nodes with a terminal link, in
    index order), then from a FIFO of the nodes activated since, which grows as needed: the order of one FIFO
    holding all starting roots first, without its n entries."""
    n = terminal.shape[0]
    off = np.array([-1, 1, -width, width], dtype=np.int64)
    tree[:] = FREE
    parent[:] = NO_PARENT
    queued[:] = 0
    ts[:] = 0
    dist[:] = 0
    queue = np.empty(1024, dtype=np.int32)
    head = 0
    size = 0
    sweep = 0
    for i in range(n):
        if terminal[i] != 0.0:
            tree[i] = SOURCE_TREE if terminal[i] > 0.0 else SINK_TREE
            parent[i] = TERMINAL
            dist[i] = 1
            queued[i] = IN_SWEEP
    flow = 0.0
    time = 0
    current = -1
    steps = 0
    augmentations = 0
    while True:
        if steps > stop_steps and steps > stop_path * augmentations:
            return flow, False
        if current < 0 or parent[current] == NO_PARENT:
            current = -1
            while sweep < n:
                p = sweep
                sweep += 1
                if queued[p] == IN_SWEEP:
                    queued[p] = 0
                    if parent[p] != NO_PARENT:
                        current = p
                        break
            while current < 0 and size > 0:
                p = queue[head]
                head = head + 1 if head + 1 < queue.shape[0] else 0
                size -= 1
                queued[p] = 0
                if parent[p] != NO_PARENT:
                    current = p
            if current < 0:
                break
        p = current
        side = tree[p]
        # Grow the tree of p until it touches the other tree.
        meet_d = -1
        for d in range(4):
            q = p + off[d]
            if (res[p, d] if side == SOURCE_TREE else res[q, d ^ 1] if 0 <= q < n else 0.0) <= 0.0:
                continue
            if tree[q] == FREE:
                tree[q] = side
                parent[q] = d ^ 1
                ts[q] = ts[p]
                dist[q] = dist[p] + 1
                if queued[q] == 0:
                    queue, head, size = _enqueue(queue, head, size, q, queued)
            elif tree[q] != side:
                meet_d = d
                break
            elif ts[q] <= ts[p] and dist[q] > dist[p]:
                parent[q] = d ^ 1
                ts[q] = ts[p]
                dist[q] = dist[p] + 1
        if meet_d < 0:
            current = -1
            continue
        if time == _LAST_TIME:  # restart the timestamps: no distance is then trusted as current
            ts[:] = 0
            time = 0
        time += 1
        # The path: source ... a -> b ... sink, a in S, b in T, through arc (a, ab).
        if side == SOURCE_TREE:
            a, b, ab = p, p + off[meet_d], meet_d
        else:
            a, b, ab = p + off[meet_d], p, meet_d ^ 1
        bottleneck = res[a, ab]
        u = a
        while parent[u] != TERMINAL:
            up = u + off[parent[u]]
            bottleneck = min(bottleneck, res[up, parent[u] ^ 1])
            u = up
            steps += 1
        bottleneck = min(bottleneck, terminal[u])
        u = b
        while parent[u] != TERMINAL:
            bottleneck = min(bottleneck, res[u, parent[u]])
            u = u + off[parent[u]]
            steps += 1
        bottleneck = min(bottleneck, -terminal[u])
        res[a, ab] -= bottleneck
        res[b, ab ^ 1] += bottleneck
        n_orphans = 0
        u = a
        while parent[u] != TERMINAL:
            up = u + off[parent[u]]
            res[up, parent[u] ^ 1] -= bottleneck
            res[u, parent[u]] += bottleneck
            if res[up, parent[u] ^ 1] <= 0.0:
                parent[u] = NO_PARENT
                orphans[n_orphans] = u
                n_orphans += 1
            u = up
        terminal[u] -= bottleneck
        if terminal[u] <= 0.0:
            terminal[u] = 0.0
            parent[u] = NO_PARENT
            orphans[n_orphans] = u
            n_orphans += 1
        u = b
        while parent[u] != TERMINAL:
            up = u + off[parent[u]]
            res[u, parent[u]] -= bottleneck
            res[up, parent[u] ^ 1] += bottleneck
            if res[u, parent[u]] <= 0.0:
                parent[u] = NO_PARENT
                orphans[n_orphans] = u
                n_orphans += 1
            u = up
        terminal[u] += bottleneck
        if terminal[u] >= 0.0:
            terminal[u] = 0.0
            parent[u] = NO_PARENT
            orphans[n_orphans] = u
            n_orphans += 1
        flow += bottleneck
        augmentations += 1
        # Adoption: re-attach every orphan to a node of its tree that still reaches the terminal, or free it.
        while n_orphans > 0:
            n_orphans -= 1
            o = orphans[n_orphans]
            steps += 1
            side_o = tree[o]
            best_d = -1
            best_dist = _FAR
            for d in range(4):
                q = o + off[d]
                if q < 0 or q >= n or tree[q] != side_o or parent[q] == NO_PARENT:
                    continue
                if _arc_into_tree(res, o, q, d, side_o) <= 0.0:
                    continue
                length = _origin_distance(q, parent, ts, dist, off, time)
                if length == _FAR:
                    continue
                if length < best_dist:
                    best_d, best_dist = d, length
                j, k = q, length
                while ts[j] != time:
                    ts[j] = time
                    dist[j] = k
                    k -= 1
                    j = j + off[parent[j]]
            if best_d >= 0:
                parent[o] = best_d
                ts[o] = time
                dist[o] = best_dist + 1
                continue
            for d in range(4):
                q = o + off[d]
                if q < 0 or q >= n or tree[q] != side_o:
                    continue
                if _arc_into_tree(res, o, q, d, side_o) > 0.0 and queued[q] == 0:
                    queue, head, size = _enqueue(queue, head, size, q, queued)
                if parent[q] == (d ^ 1):
                    parent[q] = NO_PARENT
                    orphans[n_orphans] = q
                    n_orphans += 1
            tree[o] = FREE
    return flow, True
