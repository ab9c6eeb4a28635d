"""Occlusion-order CRF (paper Sec. 3.2-3.3, supplement Sec. 2): a standalone solver, numpy and numba only.

Inputs (``docs/contracts.md``): ``sigma`` float (H, W), the probability that a pixel is background (Eq. 5),
and ``occ`` bool (H, W, 4), the occlusion pairs O of Eq. (7) in the direction order (left, right, top,
bottom): ``occ[y, x, d]`` says pixel (y, x) occludes its neighbour in direction d.

- ``solve(sigma, occ, lam=20.0, mu=100.0)``: the default minimiser of Eq. (8); never a higher energy than
  the paper's jump moves (it starts from them). ``solve_result`` also returns what it took (``Result``);
  ``region_work`` and ``max_cuts`` cap that work (``crf.solve_result``).
- ``jump_moves`` / ``jump_moves_result``: the paper's algorithm exactly; ``expansion_moves``: the supplement's.
- ``energy(labels, sigma, occ)``: Eq. (8); ``instances(labels, gap=0)``: components and occlusion edges.
- ``grid_maxflow(tedges, right, down)``: the max-flow on a 4-connected grid that every move solves
  (Boykov-Kolmogorov, finished by push-relabel on graphs of long augmenting paths: ``crf.hybrid``).
- ``solve_many(inputs)``: many images on every core (``method="solve"`` by default); when some items fail,
  ``BatchError`` (a ``ValueError``) names each failed index and carries the other items' labelings. Its
  worker processes are kept for the next call; ``close_pool()`` stops them.

Two boxes, the right one in front of the left one (it occludes the pixels it touches):

>>> import numpy as np
>>> import crf
>>> instance = np.zeros((4, 8), int)
>>> instance[1:3, 1:4], instance[1:3, 4:7] = 1, 2
>>> sigma = (instance == 0).astype(float)
>>> occ = np.zeros((4, 8, 4), bool)
>>> occ[..., 0] = (instance > 0) & (np.roll(instance, 1, axis=1) < instance)   # occludes its left neighbour
>>> occ[..., 1] = (instance > 0) & (np.roll(instance, -1, axis=1) < instance)  # its right neighbour
>>> occ[..., 2] = (instance > 0) & (np.roll(instance, 1, axis=0) < instance)   # the one above
>>> occ[..., 3] = (instance > 0) & (np.roll(instance, -1, axis=0) < instance)  # the one below
>>> labels = crf.solve(sigma, occ)
>>> labels
array([[0, 0, 0, 0, 0, 0, 0, 0],
       [0, 1, 1, 1, 2, 2, 2, 0],
       [0, 1, 1, 1, 2, 2, 2, 0],
       [0, 0, 0, 0, 0, 0, 0, 0]], dtype=int32)
>>> instance_map, edges = crf.instances(labels)
>>> edges.tolist()  # instance 2 occludes instance 1
[[2, 1]]
>>> bool(crf.energy(labels, sigma, occ) <= crf.energy(crf.jump_moves(sigma, occ), sigma, occ))
True
"""

from crf.numba_cache import keyed_cache

with keyed_cache():  # every module with numba code is imported here, so its cache is keyed by the whole package
    from crf.batch import BatchError, close_pool, solve_many
    from crf.components import instances
    from crf.energy import energy
    from crf.expansion import expansion_moves
    from crf.jump import jump_moves, jump_moves_result
    from crf.maxflow import grid_maxflow
    from crf.result import Result
    from crf.solve import solve, solve_result

__all__ = ["BatchError", "Result", "close_pool", "energy", "expansion_moves", "grid_maxflow", "instances", "jump_moves",
           "jump_moves_result", "solve", "solve_many", "solve_result"]
