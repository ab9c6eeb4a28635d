"""PyMaxflow (GPL), the test oracle of ``crf.grid_maxflow``: our grid graph built in PyMaxflow.

Only the tests and ``experiments/bench_crf.py`` (which times this very graph) import it; the packages never do.
PyMaxflow comes with the ``test`` extra.
"""

import numpy as np


def pymaxflow_grid(tedges, right, down):
    """The grid graph in PyMaxflow . Returns ``(graph, node ids)``."""
    import maxflow

    height, width, _ = tedges.shape
    graph = maxflow.Graph[float]()
    ids = graph.add_grid_nodes((height, width))
    # (structure cell of the arc head, arc array, channel, rows/cols of the arc tail, rows/cols of its value)
    kinds = (((1, 2), right, 0, np.s_[:, :-1], np.s_[:, :-1]), ((1, 0), right, 1, np.s_[:, 1:], np.s_[:, :-1]),
             ((2, 1), down, 0, np.s_[:-1, :], np.s_[:-1, :]), ((0, 1), down, 1, np.s_[1:, :], np.s_[:-1, :]))
    for (sy, sx), arcs, channel, tail, value in kinds:
        structure = np.zeros((3, 3))
        structure[sy, sx] = 1
        weights = np.zeros((height, width))
        weights[tail] = arcs[value + (channel,)]
        graph.add_grid_edges(ids, weights=weights, structure=structure, symmetric=False)
    graph.add_grid_tedges(ids, tedges[..., 0], tedges[..., 1])
    return graph, ids
