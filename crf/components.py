"""Instances and their occlusion graph from an occlusion-order labeling (paper Sec. 3.2)."""

import numpy as np
from numba import njit

from crf.inputs import check_labels


@njit(cache=True, nogil=True)
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


def _offsets(gap, height, width):
    """The pixel offsets ``(dy, dx)`` within Euclidean distance ``gap + 1``, each pair of opposite offsets once
    (``dy > 0``, or ``dy == 0 < dx``), that fit inside an ``(height, width)`` image; ``gap = 0`` gives the
    4-neighbour offsets (0, 1) and (1, 0)."""
    reach = gap + 1
    rows, cols = min(reach, height - 1), min(reach, width - 1)  # longer offsets pair no pixels of the image
    return [(dy, dx) for dy in range(rows + 1) for dx in range(-cols, cols + 1)
            if (dy > 0 or dx > 0) and dy * dy + dx * dx <= reach * reach]


@njit(cache=True, nogil=True)
def _pairs_within(comp, labels, offsets):
    """``(a, b)`` rows, unique, for every two instances with pixels ``p``, ``p + offset`` (``offsets`` int64
    (K, 2)) whose labels differ, the one of larger label first. Only border pixels (a 4-neighbour in another
    component or the background) are visited: the nearest two pixels of two instances lie on their borders
    (from any other pixel a 4-neighbour is nearer), so the pairs are those of every pixel, at the cost of the
    borders times the offsets rather than the image times the offsets."""
    height, width = comp.shape
    border_y, border_x = [], []
    is_border = np.zeros((height, width), np.bool_)
    for y in range(height):
        for x in range(width):
            c = comp[y, x]
            if c != 0 and ((y > 0 and comp[y - 1, x] != c) or (y + 1 < height and comp[y + 1, x] != c)
                           or (x > 0 and comp[y, x - 1] != c) or (x + 1 < width and comp[y, x + 1] != c)):
                is_border[y, x] = True
                border_y.append(y)
                border_x.append(x)
    stride = np.int64(comp.max()) + 1
    seen = {np.int64(0)}
    seen.clear()
    for i in range(len(border_y)):
        y, x = border_y[i], border_x[i]
        for k in range(offsets.shape[0]):
            v, u = y + offsets[k, 0], x + offsets[k, 1]
            if 0 <= v < height and 0 <= u < width and is_border[v, u]:
                a, b = np.int64(comp[y, x]), np.int64(comp[v, u])
                if a != b and labels[y, x] != labels[v, u]:
                    seen.add(a * stride + b if labels[y, x] > labels[v, u] else b * stride + a)
    keys = np.sort(np.array(list(seen), dtype=np.int64)) if len(seen) else np.zeros(0, np.int64)
    out = np.empty((len(keys), 2), np.int32)
    for i in range(len(keys)):
        out[i, 0], out[i, 1] = keys[i] // stride, keys[i] % stride
    return out


def instances(labels, gap=0):
    """Instances and occlusion edges of a labeling.

    Args:
      labels: ``int (H, W)`` occlusion-order labels, >= 0 (0 = background).
      gap: ``int >= 0``. 0 (Sec. 3.2) joins 4-neighbouring instances in the graph. ``gap = k`` (beyond the
        paper) also joins instances whose nearest pixels are at most ``k + 1`` px apart (Euclidean), i.e.
        separated by a seam of at most k pixels.

    Returns:
      ``(instance_map, edges)``: ``instance_map`` is ``int32 (H, W)``, 0 on background and 1..N on the
      4-connected components of equal non-zero labels (numbered in raster order of their first pixel);
      ``edges`` is ``int32 (M, 2)``, sorted unique rows ``(a, b)`` for instances within reach whose labels
      differ, a's label the larger (a occludes b). Edges always point from a larger to a smaller label, so
      the graph is acyclic.
    """
    labels = check_labels(labels)
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 0:
        raise ValueError(f"gap must be an integer >= 0, got {gap!r}")
    comp = _components(labels, False)
    offsets = np.array(_offsets(int(gap), *labels.shape), np.int64).reshape(-1, 2)  # (0, 2) for a 1x1 image
    return comp, _pairs_within(comp, labels, offsets)
