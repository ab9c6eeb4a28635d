"""Region moves: relabel whole connected label regions at once, with exact energies (beyond the paper).

On a labeling that is constant on its 4-connected label regions, the energy of Eq. (8) is an exact
function of the region labels: the unary terms sum per region, and the smoothness and occlusion terms only
depend on, for every pair of touching regions (R, S), the number of neighbour pixel pairs between them and
the number of pairs of O (Eq. 7) with an occluder in R and an occludee in S. This region graph has tens to
hundreds of nodes, so moves that the pixel-level jump moves cannot see (Sec. 3.3: their upper bound misses
the gain of raising a label that sits 1 below a neighbour) are cheap to evaluate exactly here.

A region move sets one region R to a label t taken from a neighbour (or ``l_R +- 1``) and then pushes the
regions that must follow: when raising, every region that occludes a raised one and is not above it any more
goes to 1 above it (so its occlusion pairs stay activated), recursively; when lowering, occluded regions go
to 1 below, recursively (never below 0). Raising the one-pixel band of an occluded instance to the label of
its interior, with the occluders pushed above it, is exactly the move that merges the band.
"""

import numpy as np
from numba import njit

from crf.components import _components

# The largest label of an int32 labeling: a move that would raise a label above it is not taken.
LABEL_MAX = np.iinfo(np.int32).max

# A move is applied only when it lowers the energy by more than this (the energy is a sum of many terms).
_TOLERANCE = 1e-9


@njit(cache=True, nogil=True)
def _region_sums(comp, labels, sigma, count):
    """Label of every region and its unary terms (Eq. 5) summed for label 0 and for a label > 0."""
    label = np.zeros(count, dtype=np.int64)
    unary_bg = np.zeros(count)
    unary_fg = np.zeros(count)
    height, width = comp.shape
    for y in range(height):
        for x in range(width):
            region = comp[y, x]
            label[region] = labels[y, x]
            unary_bg[region] += 1.0 - sigma[y, x]
            unary_fg[region] += sigma[y, x]
    return label, unary_bg, unary_fg


@njit(cache=True, nogil=True)
def _boundary_pairs(comp, occ, count):
    """Every neighbour pixel pair across two regions as ``(key, low_occ_high, high_occ_low)``: ``key`` =
    low * count + high (int64) for its two region ids low < high, and whether the pixel in ``low`` occludes the
    one in ``high`` (and vice versa, bool)."""
    height, width = comp.shape
    n = 0
    for y in range(height):  # count first: the arrays hold only the pairs (10 bytes each)
        for x in range(width):
            n += (x + 1 < width and comp[y, x + 1] != comp[y, x]) + (y + 1 < height and comp[y + 1, x] != comp[y, x])
    key = np.empty(n, dtype=np.int64)
    low_occ_high = np.empty(n, dtype=np.bool_)
    high_occ_low = np.empty(n, dtype=np.bool_)
    n = 0
    for y in range(height):
        for x in range(width):
            a = comp[y, x]
            for dy, dx, forward, backward in ((0, 1, 1, 0), (1, 0, 3, 2)):
                v, u = y + dy, x + dx
                if v >= height or u >= width or comp[v, u] == a:
                    continue
                b = comp[v, u]
                a_occ_b, b_occ_a = occ[y, x, forward], occ[v, u, backward]
                if a < b:
                    key[n], low_occ_high[n], high_occ_low[n] = a * np.int64(count) + b, a_occ_b, b_occ_a
                else:
                    key[n], low_occ_high[n], high_occ_low[n] = b * np.int64(count) + a, b_occ_a, a_occ_b
                n += 1
    return key, low_occ_high, high_occ_low


class RegionGraph:
    """The region graph of a labeling: ``comp`` is ``int32 (H, W)`` region ids 0..K-1 (4-connected equal
    labels, background included, numbered in raster order of their first pixel); per region ``label``
    (int64), ``unary_bg`` and ``unary_fg`` (float64, Eq. 5 summed for label 0 and label > 0); CSR adjacency
    ``indptr`` (K+1,), ``neighbour`` and per directed edge R -> S ``length`` (neighbour pixel pairs),
    ``occludes`` (O pairs with occluder in R, occludee in S) and ``occluded`` (O pairs the other way), all
    int64. After ``contract`` the regions are those of the new labels and ``comp`` maps pixels to the regions
    of the first labeling, ``region_of`` (int64 (K0,)) those to the current ones; ``to_labels`` ends it.
    """

    def __init__(self, labels, sigma, occ):
        comp = _components(labels, True)
        count = int(comp.max()) + 1
        self.comp = comp
        self.region_of = np.arange(count)
        self.label, self.unary_bg, self.unary_fg = _region_sums(comp, labels, sigma, count)
        self._set_edges(count, *_boundary_pairs(comp, occ, count), None)

    def _set_edges(self, count, pair_keys, low_occ_high, high_occ_low, length):
        """Sum the pairs of every touching (low, high) region pair (``pair_keys`` = low * count + high, with
        the given weights; ``length`` None: one pixel pair each) and lay out both directions as CSR rows."""
        keys, inverse = np.unique(pair_keys, return_inverse=True)
        length = np.bincount(inverse, weights=length, minlength=len(keys))
        forward = np.bincount(inverse, weights=low_occ_high, minlength=len(keys))
        backward = np.bincount(inverse, weights=high_occ_low, minlength=len(keys))
        self._keys, self._key_sums = keys, (length, forward, backward)
        # Both directions of every touching pair, sorted by their first region (CSR rows).
        src = np.concatenate([keys // count, keys % count])
        order = np.argsort(src, kind="stable")
        self.neighbour = np.concatenate([keys % count, keys // count])[order]
        self.length = np.concatenate([length, length])[order].astype(np.int64)
        self.occludes = np.concatenate([forward, backward])[order].astype(np.int64)
        self.occluded = np.concatenate([backward, forward])[order].astype(np.int64)
        self.indptr = np.searchsorted(src[order], np.arange(count + 1)).astype(np.int64)

    def contract(self):
        """Merge the touching regions whose (changed) labels are now equal, as a fresh ``RegionGraph`` of the
        new labeling would find them, without reading the pixels: the same regions in the same order, their
        sums added up. Returns False (and changes nothing) when no two touching regions have equal labels."""
        count = len(self.label)
        low, high = self._keys // count, self._keys % count
        same = self.label[low] == self.label[high]
        if not same.any():
            return False
        new_id, new_count = _merged_ids(count, low[same], high[same])
        self.region_of = new_id[self.region_of]
        label = np.zeros(new_count, dtype=np.int64)
        label[new_id] = self.label
        self.label = label
        self.unary_bg = np.bincount(new_id, weights=self.unary_bg, minlength=new_count)
        self.unary_fg = np.bincount(new_id, weights=self.unary_fg, minlength=new_count)
        length, forward, backward = (v[~same] for v in self._key_sums)
        a, b = new_id[low[~same]], new_id[high[~same]]
        swap = a > b
        self._set_edges(new_count, np.where(swap, b, a) * new_count + np.where(swap, a, b),
                        np.where(swap, backward, forward), np.where(swap, forward, backward), length)
        return True

    def to_labels(self):
        """``int32 (H, W)``: the current region labels on the pixels, written over ``comp`` (whose memory it
        reuses: the graph is not usable afterwards)."""
        comp, self.comp = self.comp, None
        _relabel(comp, self.label[self.region_of])
        return comp

    def arrays(self):
        return (self.label, self.unary_bg, self.unary_fg, self.indptr, self.neighbour, self.length,
                self.occludes, self.occluded)


@njit(cache=True, nogil=True)
def _relabel(comp, label):
    """``comp[y, x] = label[comp[y, x]]`` in place."""
    for y in range(comp.shape[0]):
        for x in range(comp.shape[1]):
            comp[y, x] = label[comp[y, x]]


@njit(cache=True, nogil=True)
def _merged_ids(count, low, high):
    """Connected groups of regions 0..count-1 joined by the pairs (low[k], high[k]): ``(group id of every
    region, number of groups)``, groups numbered in the order of their smallest region."""
    root = np.arange(count)
    for k in range(len(low)):
        a, b = low[k], high[k]
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        while root[b] != b:
            root[b] = root[root[b]]
            b = root[b]
        if a != b:
            root[max(a, b)] = min(a, b)
    new_id = np.empty(count, dtype=np.int64)
    groups = 0
    for region in range(count):
        r = region
        while root[r] != r:
            r = root[r]
        if r == region:
            new_id[region] = groups
            groups += 1
        else:
            new_id[region] = new_id[r]
    return new_id, groups


@njit(cache=True, inline="always")
def _pair_cost(la, lb, length, a_occ_b, b_occ_a, lam, mu):
    """Smoothness plus occlusion energy of all pixel pairs between regions labelled la and lb."""
    cost = 0.0
    if la != lb:
        cost += lam * length
    if a_occ_b > 0:
        if la < lb:
            return np.inf
        if la > lb:
            cost -= mu * a_occ_b
    if b_occ_a > 0:
        if lb < la:
            return np.inf
        if lb > la:
            cost -= mu * b_occ_a
    return cost


@njit(cache=True, nogil=True)
def _propose(start, target, label, indptr, neighbour, occludes, occluded, limit, new, moved):
    """Fill ``new`` (equal to ``label`` on entry) with the region move ``start -> target`` and its pushes.

    Returns the number of entries it wrote to ``moved`` (the regions it changed, possibly repeated), negated
    when the push was abandoned: a label above ``limit`` (``LABEL_MAX`` at most, so that int32 labels never
    wrap; a push above the highest label plus the number of regions is only possible if the occlusion pairs
    between regions had a cycle, i.e. the labeling had infinite energy) or ``moved`` full. (``target`` itself
    is at most one above the highest label, and a region at ``LABEL_MAX`` gains nothing by rising further.)
    """
    new[start] = target
    moved[0] = start
    count = 1
    head = 0
    up = target > label[start]
    while head < count:
        region = moved[head]
        head += 1
        for e in range(indptr[region], indptr[region + 1]):
            other = neighbour[e]
            if up and occluded[e] > 0 and new[other] <= new[region]:
                new[other] = new[region] + 1
            elif not up and occludes[e] > 0 and new[other] >= new[region] and new[other] > 0:
                new[other] = max(new[region] - 1, 0)
            else:
                continue
            moved[count] = other
            count += 1
            if new[other] > limit or count == len(moved):
                return -count
    return count


@njit(cache=True, nogil=True)
def _delta(count, label, new, moved, unary_bg, unary_fg, indptr, neighbour, length, occludes, occluded,
           lam, mu, state):
    """Exact energy change of relabelling the regions ``moved[:count]`` from ``label`` to ``new``.

    ``state`` is an all-zero int8 scratch array on entry and on return (1 = moving, 2 = already counted).
    """
    for i in range(count):
        state[moved[i]] = 1
    delta = 0.0
    for i in range(count):
        region = moved[i]
        if state[region] == 2:
            continue  # pushed twice
        state[region] = 2
        delta += (unary_bg[region] if new[region] == 0 else unary_fg[region]) - (
            unary_bg[region] if label[region] == 0 else unary_fg[region])
        for e in range(indptr[region], indptr[region + 1]):
            other = neighbour[e]
            if state[other] == 2:
                continue  # a pair of two moving regions is counted once
            delta += (_pair_cost(new[region], new[other], length[e], occludes[e], occluded[e], lam, mu)
                      - _pair_cost(label[region], label[other], length[e], occludes[e], occluded[e], lam, mu))
    for i in range(count):
        state[moved[i]] = 0
    return delta


@njit(cache=True, nogil=True)
def _targets(region, label, indptr, neighbour, out):
    """Distinct candidate labels of a region move of ``region``: its neighbours' labels and its own +- 1."""
    count = 0
    for option in range(indptr[region], indptr[region + 1] + 2):
        if option < indptr[region + 1]:
            target = label[neighbour[option]]
        else:
            target = label[region] + (1 if option == indptr[region + 1] else -1)
        if target == label[region] or target < 0:
            continue
        for i in range(count):
            if out[i] == target:
                break
        else:
            out[count] = target
            count += 1
    return count


# A region-visit budget that never binds (``region_descent``'s default, ``crf.solve`` without a cap).
UNLIMITED = np.iinfo(np.int64).max


@njit(cache=True, nogil=True)
def _sweep(label, unary_bg, unary_fg, indptr, neighbour, length, occludes, occluded, lam, mu, budget):
    """Apply, region by region, the best strictly improving region move until none is left (in place).

    A region is examined again only after a move changed it or one of its neighbours. Every move is
    evaluated exactly against the current labels, so the energy strictly decreases at every step. The work
    is counted in region visits (a region entered by a proposed move and its pushes); the sweep stops once
    it has used ``budget`` of them. Returns ``(moves applied, visits used)``.
    """
    count = len(label)
    new = label.copy()
    best_new = label.copy()
    moved = np.empty(4 * count + 4, dtype=np.int64)
    best_moved = np.empty_like(moved)
    targets = np.empty(count + 2, dtype=np.int64)
    state = np.zeros(count, dtype=np.int8)
    dirty = np.ones(count, dtype=np.bool_)
    tolerance = _TOLERANCE * max(1.0, lam + mu)
    top = label.max()
    applied = 0
    used = 0
    improved = True
    while improved:
        improved = False
        for region in range(count):
            if used >= budget:
                return applied, used
            if not dirty[region]:
                continue
            dirty[region] = False
            best, best_count = -tolerance, 0
            for k in range(_targets(region, label, indptr, neighbour, targets)):
                n = _propose(region, targets[k], label, indptr, neighbour, occludes, occluded,
                             min(top + count + 2, LABEL_MAX), new, moved)
                used += abs(n)
                if n > 0:
                    delta = _delta(n, label, new, moved, unary_bg, unary_fg, indptr, neighbour, length,
                                   occludes, occluded, lam, mu, state)
                    if delta < best:
                        best, best_count = delta, n
                        best_moved[:n] = moved[:n]
                        for i in range(n):
                            best_new[moved[i]] = new[moved[i]]
                for i in range(abs(n)):
                    new[moved[i]] = label[moved[i]]
            if best_count == 0:
                continue
            for i in range(best_count):
                changed = best_moved[i]
                label[changed] = best_new[changed]
                top = max(top, label[changed])
                new[changed] = label[changed]
                best_new[changed] = label[changed]
                dirty[changed] = True
                for e in range(indptr[changed], indptr[changed + 1]):
                    dirty[neighbour[e]] = True
            applied += 1
            improved = True
    return applied, used


def region_descent(labels, sigma, occ, lam, mu, budget=UNLIMITED):
    """Region moves until none lowers the energy of Eq. (8), contracting the region graph after each sweep.

    Args:
      labels: ``int32 (H, W)`` labeling of finite energy; sigma ``float64 (H, W)``, occ ``bool (H, W, 4)``
        (validated as in ``crf.inputs``); lam, mu: floats.
      budget: region visits allowed (``_sweep``); the descent stops early, keeping the moves applied so far,
        once they are used.
      A move that would raise a label above ``LABEL_MAX`` (the largest int32) is not taken.

    Returns:
      ``(labels, moves, visits)``: a new ``int32 (H, W)`` labeling of strictly lower energy (or the same one
      when ``moves == 0``), the number of region moves applied and the region visits used.
    """
    graph = RegionGraph(labels, sigma, occ)
    total = 0
    used = 0
    while True:
        applied, visits = _sweep(*graph.arrays(), lam, mu, budget - used)
        used += visits
        total += applied
        if applied == 0 or used >= budget:
            return (graph.to_labels() if total else labels), total, used
        graph.contract()
