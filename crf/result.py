"""The one result type of the minimisers' ``*_result`` variants: the labeling and what it took."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Result:
    """``labels``: ``int32 (H, W)`` occlusion-order labels; ``graph_cuts``: max-flow problems solved (the last
    one changes nothing unless ``max_cuts`` stopped the run; 0 when the input needs none,
    ``crf.inputs.all_background_is_optimal``);
    ``region_moves``: region moves applied and ``region_visits`` the regions their proposals visited
    (``crf.solve`` only, else 0)."""

    labels: np.ndarray
    graph_cuts: int
    region_moves: int = 0
    region_visits: int = 0

    def __eq__(self, other):
        if not isinstance(other, Result):
            return NotImplemented
        return (np.array_equal(self.labels, other.labels) and (self.graph_cuts, self.region_moves,
                self.region_visits) == (other.graph_cuts, other.region_moves, other.region_visits))

    __hash__ = None  # the labels are a mutable array
