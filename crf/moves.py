"""Solving one binary move given as a graph (``crf.move_graph``): the minimum cut, kept only when it strictly
lowers the energy. The minimisers use ``crf.move_solver``, which builds the same capacities straight into the
max-flow's arrays; this graph path is what the tests compare it with, move by move."""

import numpy as np

from crf.maxflow import cut_value, solve_grid

# A move is taken only when it lowers the (bounded) energy by more than this, relative to the energy
# scale, so that rounding in the flow can never make the move loop on ties.
RELATIVE_TOLERANCE = 1e-10


def best_move(graph):
    """Optimal move of a ``crf.move_graph.MoveGraph``: ``bool (H, W)``, True where y_p = 1.

    The smallest minimum-cut sink side is returned, so ties are broken towards moving fewer pixels; an
    all-False mask is returned when no move lowers ``constant + cut(y)`` below its value at y = 0.
    """
    _, sink = solve_grid(graph.tedges, graph.right, graph.down)
    stay = float(graph.tedges[..., 1].sum())
    if not sink.any():
        return sink
    gain = stay - cut_value(graph.tedges, graph.right, graph.down, sink)
    if gain <= RELATIVE_TOLERANCE * max(1.0, stay):
        return np.zeros_like(sink)
    return sink
