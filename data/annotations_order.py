"""From per-instance visible/amodal masks and pairwise occlusion relations to one OOSIS example.

The readers of KINS and COCOA collect, for the objects of one image, their visible (modal) masks and a
set of *relations*: ordered pairs ``(a, b)`` meaning object ``a`` occludes object ``b`` (0-based indices
into the image's objects), each with a *strength* used only to break cycles. This module turns them into
the project's ground truth (``docs/contracts.md``; paper Sec. 3.1 and 5.1: an unambiguous
segmentation, one instance per pixel, and an occlusion graph between touching instances):

1. Cycles in the relations are detected and reported (``OcclusionCycleWarning``, naming the image); the
   weakest relation of each cycle is dropped until none is left, because painting back to front and the
   order labels of ``data.targets.order_labels`` need an acyclic graph. Strengths are tuples compared
   lexicographically (``(1, margin)`` for an annotated relation, ``(0, margin)`` for one derived from
   masks); ties drop the smallest pair ``(a, b)``.
2. Visible masks are painted back to front in a topological order of the relations (an object is painted
   after every object it occludes). Objects with no order between them are painted larger visible area
   first, then in annotation order, so at an unexplained overlap the smaller object stays visible.
3. An object whose every pixel was painted over (or whose visible mask is empty, e.g. a polygon entirely
   outside the image: reported by ``EmptyMaskWarning``) disappears: it gets no instance id and its relations
   are dropped (those of an empty mask before step 1, so that a cycle through it costs no relation between
   drawn objects). The others are numbered ``1..N`` in annotation order.
4. Edges are the relations between instances whose final regions touch (4-neighbours): the occlusion map
   and the metrics need a pixel-level boundary. Relations between instances that do not touch are dropped
   (no transitive edges are added).

Relations derived from masks follow deocclusion / InstaOrder (``docs/datasets_and_metrics.md``):
for objects ``i, j`` whose visible masks touch, ``a = |visible_i ∩ amodal_j|`` and
``b = |visible_j ∩ amodal_i|``; no relation when both are 0, else ``i`` occludes ``j`` when ``a >= b``
(strength ``a - b``).
"""

from __future__ import annotations

import heapq
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from data.targets import touching_pairs

Relations = dict[tuple[int, int], tuple[int, int]]
ANNOTATED, DERIVED = 1, 0


class OcclusionCycleWarning(UserWarning):
    """The relations of an image contain a directed cycle (one relation of it is dropped)."""


class OrderDisagreementWarning(UserWarning):
    """An annotated occlusion relation is contradicted by the visible/amodal masks (the annotation is kept)."""


class EmptyMaskWarning(UserWarning):
    """An object's visible mask in the annotation file is empty (fully occluded, or a polygon outside the image):
    it is left out of the example."""


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _dilate4(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def touching_masks(masks: Sequence[np.ndarray]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of ``bool (H, W)`` masks that overlap or touch (4-neighbours)."""
    boxes = [_bbox(m) for m in masks]
    pairs = []
    for i, box_i in enumerate(boxes):
        for j in range(i + 1, len(masks)):
            box_j = boxes[j]
            if box_i is None or box_j is None:
                continue
            if box_i[0] > box_j[1] or box_j[0] > box_i[1] or box_i[2] > box_j[3] or box_j[2] > box_i[3]:
                continue
            y0, y1 = max(min(box_i[0], box_j[0]) - 1, 0), max(box_i[1], box_j[1]) + 1
            x0, x1 = max(min(box_i[2], box_j[2]) - 1, 0), max(box_i[3], box_j[3]) + 1
            if (_dilate4(masks[i][y0:y1, x0:x1]) & masks[j][y0:y1, x0:x1]).any():
                pairs.append((i, j))
    return pairs


def overlap_evidence(visible: Sequence[np.ndarray], amodal: Sequence[np.ndarray], i: int, j: int) -> tuple[int, int]:
    """``(|visible_i ∩ amodal_j|, |visible_j ∩ amodal_i|)`` in pixels: evidence that i occludes j, and back."""
    return int((visible[i] & amodal[j]).sum()), int((visible[j] & amodal[i]).sum())


def mask_relations(visible: Sequence[np.ndarray], amodal: Sequence[np.ndarray]) -> Relations:
    """Relations derived from masks for every pair of touching visible masks (module docstring)."""
    relations: Relations = {}
    for i, j in touching_masks(visible):
        a, b = overlap_evidence(visible, amodal, i, j)
        if a == 0 and b == 0:
            continue
        relations[(i, j) if a >= b else (j, i)] = (DERIVED, abs(a - b))
    return relations


def annotated_relations(
    pairs: Sequence[tuple[int, int]],
    visible: Sequence[np.ndarray],
    amodal: Sequence[np.ndarray],
    labels: Sequence[object],
    image_id: int,
) -> Relations:
    """Relations given by the annotation (``(a, b)``: a occludes b), cross-checked with the masks.

    A pair whose masks give strictly more evidence for the opposite order (``|visible_b ∩ amodal_a| >
    |visible_a ∩ amodal_b|``) keeps the annotated order and raises an ``OrderDisagreementWarning`` naming
    the image and the objects (``labels``: their annotation ids); its strength is the (negative) margin, so
    it is the first relation dropped if it closes a cycle.
    """
    relations: Relations = {}
    for a, b in pairs:
        forward, backward = overlap_evidence(visible, amodal, a, b)
        if backward > forward:
            warnings.warn(
                f"image {image_id}: the annotation says {labels[a]} occludes {labels[b]}, the masks say the "
                f"opposite ({backward} vs {forward} pixels); keeping the annotated order",
                OrderDisagreementWarning,
                stacklevel=2,
            )
        relations[(a, b)] = (ANNOTATED, forward - backward)
    return relations


def _find_cycle(num: int, relations: Mapping[tuple[int, int], object]) -> list[tuple[int, int]] | None:
    """The relations along one directed cycle, or None when the graph is acyclic (iterative DFS)."""
    successors: list[list[int]] = [[] for _ in range(num)]
    for a, b in sorted(relations):
        successors[a].append(b)
    state = [0] * num  # 0 unvisited, 1 on the DFS stack, 2 done
    for root in range(num):
        if state[root]:
            continue
        path, iters = [root], [iter(successors[root])]
        state[root] = 1
        while path:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif state[nxt] == 1:
                cycle = path[path.index(nxt):] + [nxt]
                return list(zip(cycle[:-1], cycle[1:]))
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(successors[nxt]))
    return None


def break_cycles(num: int, relations: Relations, labels: Sequence[object], image_id: int) -> Relations:
    """A copy of ``relations`` without cycles: each found cycle is reported and loses its weakest relation."""
    relations = dict(relations)
    while (cycle := _find_cycle(num, relations)) is not None:
        weakest = min(cycle, key=lambda pair: (relations[pair], pair))
        names = " -> ".join(str(labels[a]) for a, _ in cycle) + f" -> {labels[cycle[0][0]]}"
        warnings.warn(
            f"image {image_id}: occlusion cycle {names}; dropping the weakest relation "
            f"{labels[weakest[0]]} occludes {labels[weakest[1]]} (strength {relations[weakest]})",
            OcclusionCycleWarning,
            stacklevel=2,
        )
        del relations[weakest]
    return relations


def paint_order(areas: Sequence[int], relations: Mapping[tuple[int, int], object]) -> list[int]:
    """Back-to-front order of the objects: each after all it occludes; ties larger area, then lower index.

    ``relations`` must be acyclic (``break_cycles``).
    """
    num = len(areas)
    occluders: list[list[int]] = [[] for _ in range(num)]
    pending = [0] * num  # number of objects it occludes that are not painted yet
    for a, b in relations:
        occluders[b].append(a)
        pending[a] += 1
    ready = [(-int(areas[k]), k) for k in range(num) if pending[k] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, k = heapq.heappop(ready)
        order.append(k)
        for a in occluders[k]:
            pending[a] -= 1
            if pending[a] == 0:
                heapq.heappush(ready, (-int(areas[a]), a))
    if len(order) != num:
        raise ValueError("paint_order needs acyclic relations; call break_cycles first")
    return order


def compose(
    shape: tuple[int, int],
    visible: Sequence[np.ndarray],
    relations: Relations,
    labels: Sequence[object],
    image_id: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One unambiguous example from the objects' visible masks and their relations (module docstring).

    Args:
      shape: ``(H, W)``, the image size.
      visible: ``N >= 0`` masks ``bool (H, W)`` (none: an image without objects, all background).
      relations: ``(a, b) -> strength``, 0-based object indices, a occludes b.
      labels: ``N`` names of the objects for messages (annotation ids).
      image_id: the image, for messages.

    Returns:
      ``instance_map`` ``int32 (H, W)`` (0 background, ``1..K``), ``kept`` ``int64 (K,)`` (the object index
      of each instance, increasing) and ``edges`` ``int32 (M, 2)`` (instance ids, a occludes b, sorted).
    """
    num = len(visible)
    if any(m.shape != tuple(shape) or m.dtype != bool for m in visible):
        raise ValueError(f"image {image_id}: visible masks must be bool {tuple(shape)}")
    areas = [int(m.sum()) for m in visible]
    empty = [labels[k] for k in range(num) if areas[k] == 0]
    # An object that is not drawn orders nothing: its relations go before the cycles are broken, so that a cycle
    # through it does not cost a true relation between two drawn objects.
    relations = {pair: strength for pair, strength in relations.items() if areas[pair[0]] and areas[pair[1]]}
    relations = break_cycles(num, relations, labels, image_id)
    if empty:
        warnings.warn(f"image {image_id}: object(s) {empty} have an empty visible mask (fully occluded, or a "
                      "polygon outside the image) and are left out", EmptyMaskWarning, stacklevel=2)
    painted = np.zeros(shape, dtype=np.int64)
    for k in paint_order(areas, relations):
        painted[visible[k]] = k + 1
    kept = np.flatnonzero(np.bincount(painted.ravel(), minlength=num + 1)[1:])
    new_id = np.zeros(num + 1, dtype=np.int32)
    new_id[kept + 1] = np.arange(1, kept.size + 1, dtype=np.int32)
    instance_map = new_id[painted]
    touching = {(a, b) for a, b in touching_pairs(instance_map).tolist()}
    edges = []
    for a, b in relations:
        id_a, id_b = int(new_id[a + 1]), int(new_id[b + 1])
        if id_a and id_b and (min(id_a, id_b), max(id_a, id_b)) in touching:
            edges.append((id_a, id_b))
    return instance_map, kept, np.asarray(sorted(edges), dtype=np.int32).reshape(-1, 2)
