"""The one result type of the minimisers' ``*_result`` variants: the labeling and what it took."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Result:
    """``labels``: ``int32 (H, W)`` occlusion-order labels; ``graph_cuts``: max-flow problems solved (the last
    one changes nothing; 0 when the input needs none, ``crf.inputs.all_background_is_optimal``);
    ``region_moves``: region moves applied and ``region_visits`` the regions their proposals visited
    (``crf.solve`` only, else 0)."""

    labels: np.ndarray
    graph_cuts: int
    region_moves: int = 0
    region_visits: int = 0
