"""Random decycling of an occlusion graph (Sec. 5.6, "Random Decycling for Baselines").

The paper's procedure: find a directed cycle, remove a random edge of it, and repeat until the graph is
acyclic. Used to post-process baselines whose pairwise orderings contain cycles (Fig. 11); our CRF output is
acyclic by construction.
"""

from __future__ import annotations

import numpy as np

from oosis_jax.evaluation.metrics import validate_instances


def find_cycle(num_instances: int, edges: np.ndarray) -> list[int] | None:
    """Row indices into ``edges`` (int (M, 2), ids 1..N) forming one directed cycle, or None if acyclic.

    Iterative depth-first search; the returned rows, in order, walk the cycle once.
    """
    succ: list[list[tuple[int, int]]] = [[] for _ in range(num_instances + 1)]
    for row, (a, b) in enumerate(edges):
        succ[a].append((b, row))
    state = np.zeros(num_instances + 1, np.int8)  # 0 unvisited, 1 on the DFS stack, 2 finished
    for root in range(1, num_instances + 1):
        if state[root]:
            continue
        stack = [(root, 0)]  # (node, index of the next successor to try)
        via: list[int] = []  # edge rows along the current DFS path
        state[root] = 1
        while stack:
            node, k = stack[-1]
            if k == len(succ[node]):
                state[node] = 2
                stack.pop()
                if via:
                    via.pop()
                continue
            stack[-1] = (node, k + 1)
            nxt, row = succ[node][k]
            if state[nxt] == 1:  # back edge: the cycle is the path from nxt to node plus this edge
                start = [n for n, _ in stack].index(nxt)
                return via[start:] + [row]
            if state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, 0))
                via.append(row)
    return None


def random_decycle(num_instances: int, edges, seed: int = 0) -> np.ndarray:
    """Remove random edges of found cycles until ``edges`` is acyclic (Sec. 5.6); returns int64 (M', 2).

    ``edges`` is int (M, 2) with ids 1..num_instances (duplicate rows are kept and treated as parallel
    edges). The surviving rows keep their original order. Deterministic for a given ``seed``.
    Raises ``ValueError`` for edges naming missing instances or self-loops.
    """
    _, _, edges, _ = validate_instances(np.zeros((0, 0), np.int64), np.ones(int(num_instances), np.int64),
                                        edges, name="random_decycle")
    rng = np.random.default_rng(seed)
    keep = np.ones(len(edges), bool)
    while True:
        rows = np.flatnonzero(keep)
        cycle = find_cycle(int(num_instances), edges[rows])
        if cycle is None:
            return edges[keep]
        keep[rows[cycle[rng.integers(len(cycle))]]] = False
