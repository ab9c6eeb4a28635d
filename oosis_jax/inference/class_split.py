"""Splitting instances where the semantic class changes (beyond the paper; ``Robustness.class_split``).

Where the predicted occlusion boundary between two touching objects has a gap, the CRF gives both the same
label and `crf.instances` makes them one instance: issue 14's failure analysis found about 29 % of the true
instances merged into a neighbour this way. When the two objects are of different classes, the semantic
head still tells them apart. `split_by_class` cuts every instance into the 4-connected pieces of one
foreground argmax class, lets pieces smaller than ``min_piece`` pixels join the piece of the same instance
they share the most border with, and orders the pieces of an instance by the oriented boundary evidence
between them (`oosis_jax.inference.votes.occlusion_votes`). It returns a refined labelling, so instances
and occlusion edges keep coming from `crf.instances` alone.
"""

from __future__ import annotations

import heapq

import numpy as np

import crf
from oosis_jax.inference.votes import occlusion_votes


def pieces_of(instance_map: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """int32 (H, W): the 4-connected pieces (1..P, 0 = background) of constant (instance, ``cut``) over the
    instances of ``instance_map`` (int (H, W), 0 = background); ``cut``: int (H, W) >= 0, e.g. a class map."""
    key = np.where(instance_map > 0, instance_map.astype(np.int64) * (int(cut.max(initial=0)) + 1) + cut, 0)
    return crf.instances(key)[0]


def _sibling_contacts(pieces: np.ndarray, parent: np.ndarray) -> list[dict]:
    """For each piece, {sibling piece: number of 4-neighbour pixel pairs they share} (same instance only)."""
    pairs = [np.stack([pieces[:, :-1].ravel(), pieces[:, 1:].ravel()]),
             np.stack([pieces[:-1].ravel(), pieces[1:].ravel()])]
    a, b = np.concatenate(pairs, axis=1)
    keep = (a != b) & (a > 0) & (b > 0) & (parent[a] == parent[b])
    unique, counts = np.unique(np.sort(np.stack([a[keep], b[keep]], 1), axis=1), axis=0, return_counts=True)
    contacts = [{} for _ in range(len(parent))]
    for (p, q), count in zip(unique.tolist(), counts.tolist()):
        contacts[p][q] = contacts[q][p] = count
    return contacts


def merge_small_pieces(pieces: np.ndarray, parent: np.ndarray, min_piece: int) -> np.ndarray:
    """int (P + 1,): the piece each piece of ``pieces`` (int (H, W), 1..P) ends in after every piece smaller
    than ``min_piece`` pixels joined the sibling (same ``parent[piece]`` instance) it shares the most
    4-neighbour pairs with, smallest first (ties: lower id). A piece without siblings stays."""
    size = np.bincount(pieces.ravel(), minlength=len(parent))
    contacts = _sibling_contacts(pieces, parent)
    into = np.arange(len(parent))
    heap = [(int(size[p]), p) for p in range(1, len(parent)) if size[p] < min_piece and contacts[p]]
    heapq.heapify(heap)
    while heap:
        area, p = heapq.heappop(heap)
        if into[p] != p or area != size[p] or not contacts[p]:
            continue
        q = max(contacts[p], key=lambda r: (contacts[p][r], -r))
        neighbours, contacts[p] = contacts[p], {}
        for r, count in neighbours.items():
            del contacts[r][p]
            if r != q:
                contacts[q][r] = contacts[r][q] = contacts[q].get(r, 0) + count
        into[p], size[q] = q, size[q] + size[p]
        if size[q] < min_piece:
            heapq.heappush(heap, (int(size[q]), q))
    while not np.array_equal(into[into], into):
        into = into[into]
    return into


def split_by_class(labels: np.ndarray, s: np.ndarray, b: np.ndarray, e: np.ndarray, min_piece: int) -> np.ndarray:
    """int64 (H, W): ``labels`` (int (H, W) >= 0, 0 = background) with every instance cut into its pieces of
    one foreground argmax class of ``s`` (float (H, W, C + 1)): `split_instances`."""
    labels = np.asarray(labels, np.int64)
    if s.shape[:2] != labels.shape:
        raise ValueError(f"s must be {labels.shape} + (C + 1,), got {s.shape}")
    return split_instances(labels, np.argmax(s[..., 1:], axis=-1) + 1, b, e, min_piece)


def split_instances(labels: np.ndarray, cut: np.ndarray, b: np.ndarray, e: np.ndarray, min_piece: int) -> np.ndarray:
    """int64 (H, W): ``labels`` (int (H, W) >= 0, 0 = background) with every instance cut into its
    4-connected pieces of constant ``cut`` (int (H, W) >= 0).

    A pixel of label L in the piece of rank r among its instance's pieces gets ``L * K + r``, K the largest
    number of pieces of one instance: labels of different instances keep their order, and the pieces of one
    instance are ordered by their net `occlusion_votes` against each other (the nearest gets the highest r).
    ``b``: float (H, W); ``e``: float (H, W, 4); ``min_piece``: pieces smaller than this many pixels join a
    sibling (>= 1).
    """
    labels = np.asarray(labels, np.int64)
    if cut.shape != labels.shape:
        raise ValueError(f"cut must be {labels.shape}, got {cut.shape}")
    if min_piece < 1:
        raise ValueError(f"min_piece must be >= 1, got {min_piece}")
    instance_map = crf.instances(labels)[0]
    pieces = pieces_of(instance_map, cut)
    parent = np.zeros(int(pieces.max(initial=0)) + 1, np.int64)
    parent[pieces.ravel()] = instance_map.ravel()
    pieces = merge_small_pieces(pieces, parent, min_piece)[pieces]
    alive = np.unique(pieces[pieces > 0])
    compact = np.zeros(len(parent), np.int64)
    compact[alive] = np.arange(1, len(alive) + 1)
    pieces, parent = compact[pieces], np.concatenate([[0], parent[alive]])  # pieces renumbered 1..A
    votes = occlusion_votes(pieces, b, e)
    net = np.where(parent[:, None] == parent[None, :], votes - votes.T, 0.0).sum(axis=1)
    order = np.lexsort((np.arange(len(parent)), net, parent))[1:]  # by instance, then farthest first
    rank = np.zeros(len(parent), np.int64)
    rank[order] = np.arange(len(order)) - np.searchsorted(parent[order], parent[order])
    k = int(rank.max(initial=0)) + 1
    return np.where(labels > 0, labels * k + rank[pieces], 0)
