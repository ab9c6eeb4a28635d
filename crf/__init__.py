"""Occlusion-order CRF (paper Sec. 3.2-3.3, supplement Sec. 2): standalone, numpy and numba only.

Public API (CONTRACTS.md): ``grid_maxflow``, ``energy``, ``jump_moves``, ``expansion_moves``, ``instances``,
plus ``solve_many`` for labelling many images on all cores.
"""

from crf.batch import BatchError, solve_many
from crf.components import instances
from crf.energy import energy
from crf.expansion import expansion_moves
from crf.jump import jump_moves
from crf.maxflow import grid_maxflow
from crf.solve import solve

__all__ = ["grid_maxflow", "energy", "jump_moves", "expansion_moves", "instances", "solve_many", "BatchError", "solve"]
