"""Random decycling of an occlusion graph (Sec. 5.6, "Random Decycling for Baselines").

The paper's procedure: find a directed cycle, remove a random edge of it, and repeat until the graph is
acyclic. Used to post-process baselines whose pairwise orderings contain cycles (Fig. 11); our CRF output is
acyclic by construction.
"""

from __future__ import annotations

import numpy as np

from oosis_jax.evaluation.metrics import validate_instances


def random_decycle(num_instances: int, edges, seed: int = 0) -> np.ndarray:
    """Remove random edges of found cycles until ``edges`` is acyclic (Sec. 5.6); returns int64 (M', 2).

    ``edges`` is int (M, 2) with ids 1..num_instances (duplicate rows are kept and treated as parallel
    edges). The surviving rows keep their original order. Deterministic for a given ``seed``.
    Raises ``ValueError`` for edges naming missing instances or self-loops.

    One depth-first search runs through all removals (removing an edge creates no cycle, so a finished node,
    whose successors are all finished, stays finished): a cycle is a back edge plus the path to it; after a
    random edge of it is removed, the nodes above a removed path edge leave the path and are searched again
    later. Linear in M between removals (a restart per removal took 590 s for 16000 removals at M = 20000).
    """
    _, _, edges, _ = validate_instances(np.zeros((0, 0), np.int64), np.ones(_count(num_instances), np.int64),
                                        edges, name="random_decycle")
    n = int(num_instances)
    rng = np.random.default_rng(seed)
    keep = np.ones(len(edges), bool)
    succ: list[list[tuple[int, int]]] = [[] for _ in range(n + 1)]
    for row, (a, b) in enumerate(edges.tolist()):
        succ[a].append((b, row))
    state = np.zeros(n + 1, np.int8)  # 0 unvisited, 1 on the path, 2 finished
    depth = np.zeros(n + 1, np.int64)  # a path node's index in `path`
    for root in range(1, n + 1):
        if state[root]:
            continue
        path, next_k, via = [root], [0], []  # nodes, next successor to try, edge rows between them
        state[root] = 1
        while path:
            node, k = path[-1], next_k[-1]
            if k == len(succ[node]):
                state[node] = 2
                path.pop(), next_k.pop()
                if via:
                    via.pop()
                continue
            next_k[-1] = k + 1
            nxt, row = succ[node][k]
            if not keep[row] or state[nxt] == 2:
                continue
            if state[nxt] == 0:
                state[nxt], depth[nxt] = 1, len(path)
                path.append(nxt), next_k.append(0), via.append(row)
                continue
            cycle = via[depth[nxt]:] + [row]  # a back edge: the path from nxt to node, then this edge
            cut = int(rng.integers(len(cycle)))
            keep[cycle[cut]] = False
            if cut < len(cycle) - 1:  # a path edge: the nodes above it leave the path, unfinished; their ids
                # exceed `root` (every smaller id was finished by an earlier root), so a later root reaches them
                top = depth[nxt] + cut + 1
                state[path[top:]] = 0
                del path[top:], next_k[top:], via[top - 1:]
    return edges[keep]


def _count(num_instances) -> int:
    if isinstance(num_instances, bool) or not isinstance(num_instances, (int, np.integer)) or num_instances < 0:
        raise ValueError(f"random_decycle: num_instances must be an int >= 0, got {num_instances!r}")
    return int(num_instances)
