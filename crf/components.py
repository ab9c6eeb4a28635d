"""Instances and their occlusion graph from an occlusion-order labeling (paper Sec. 3.2)."""

import numpy as np
from numba import njit

from crf.inputs import check_labels


@njit(cache=True)
def _components(labels, background):
    """4-connected components of equal labels as ``int32 (H, W)`` ids in raster order of their first pixel:
    with ``background`` False those of non-zero labels numbered 1.. (label 0 pixels get 0), with ``background``
    True those of every label numbered 0.. (label 0 included)."""
    height, width = labels.shape
    comp = np.full((height, width), -1, dtype=np.int32)
    stack = np.empty((height * width, 2), dtype=np.int32)  # each pixel pushed at most once
    count = 0 if background else 1
    for y0 in range(height):
        for x0 in range(width):
            if comp[y0, x0] >= 0:
                continue
            value = labels[y0, x0]
            if value == 0 and not background:
                comp[y0, x0] = 0
                continue
            comp[y0, x0] = count
            stack[0, 0], stack[0, 1] = y0, x0
            top = 1
            while top > 0:
                top -= 1
                y, x = stack[top, 0], stack[top, 1]
                for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
                    v, u = y + dy, x + dx
                    if 0 <= v < height and 0 <= u < width and comp[v, u] < 0 and labels[v, u] == value:
                        comp[v, u] = count
                        stack[top, 0], stack[top, 1] = v, u
                        top += 1
            count += 1
    return comp


def _touching_pairs(comp, labels, a_slice, b_slice):
    a, b = comp[a_slice], comp[b_slice]
    la, lb = labels[a_slice], labels[b_slice]
    touching = (a != 0) & (b != 0) & (la != lb)
    a, b, la, lb = a[touching], b[touching], la[touching], lb[touching]
    upper = la > lb
    return np.stack([np.where(upper, a, b), np.where(upper, b, a)], axis=1)


def instances(labels):
    """Instances and occlusion edges of a labeling.

    Args:
      labels: ``int (H, W)`` occlusion-order labels, >= 0 (0 = background).

    Returns:
      ``(instance_map, edges)``: ``instance_map`` is ``int32 (H, W)``, 0 on background and 1..N on the
      4-connected components of equal non-zero labels (numbered in raster order of their first pixel);
      ``edges`` is ``int32 (M, 2)``, sorted unique rows ``(a, b)`` for touching instances where a's label
      is larger (a occludes b). Edges always point from a larger to a smaller label, so the graph is acyclic.
    """
    labels = check_labels(labels)
    comp = _components(labels, False)
    pairs = np.concatenate([
        _touching_pairs(comp, labels, (slice(None), slice(1, None)), (slice(None), slice(None, -1))),
        _touching_pairs(comp, labels, (slice(1, None), slice(None)), (slice(None, -1), slice(None))),
    ])
    edges = np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), dtype=np.int32)
    return comp, edges.astype(np.int32)
