"""Minimum-cost maximum bipartite matchings of every prefix of a row sequence, in one pass (numba, host arrays).

The oriented-boundary metric (`boundaries`) matches the predicted boundary pixels kept at each of 99 thresholds
to the ground-truth ones. The pixels kept at a higher threshold are a subset of those kept at a lower one, so
with the predicted pixels as rows in decreasing order of confidence, every threshold's problem is a *prefix* of
the rows. The shortest augmenting path algorithm of Jonker and Volgenant, in the row-by-row form of Crouse
("On implementing 2D rectangular assignment algorithms", IEEE TAES 2016; scipy's ``linear_sum_assignment``),
adds one row per augmentation, and after each one the assignment is optimal for the rows added so far, with the
column duals of the free columns at 0. So one run over the rows in that order yields the optimal matching of
every prefix: the whole sweep costs about one matching of the lowest threshold, instead of one per threshold.

The problem of a prefix of n rows: each row is assigned to one of its candidate columns (edges
``(row, cols[k])`` at cost ``costs[k] >= 0``, CSR by row) or to an *outlier* column of its own at cost
``outlier_cost``, each column to at most one row; minimise the total cost. With ``outlier_cost`` above any
total of real costs (`boundaries` uses BSDS's ``correspondPixels`` rule), the optimum has the most real pairs
and, among those, the least total cost. Columns are left unmatched at no cost, so rows and columns may differ
in number. Each augmentation is a Dijkstra search on reduced costs over the edges (a binary heap: the graph is
sparse), so one that meets a free column near its row stops there.

Ties between equally cheap matchings are broken by the search order; every returned matching is optimal.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _heap_push(keys, values, size, key, value):
    i = size
    keys[i], values[i] = key, value
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        values[parent], values[i] = values[i], values[parent]
        i = parent
    return size + 1


@njit(cache=True)
def _heap_pop(keys, values, size):
    key, value = keys[0], values[0]
    size -= 1
    keys[0], values[0] = keys[size], values[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and keys[child + 1] < keys[child]:
            child += 1
        if keys[i] <= keys[child]:
            break
        keys[child], keys[i] = keys[i], keys[child]
        values[child], values[i] = values[i], values[child]
        i = child
    return key, value, size


@njit(cache=True)
def _sweep(indptr, cols, costs, n_cols, outlier_cost, prefix_sizes, flags):
    n_rows = len(indptr) - 1
    n_all = n_cols + n_rows  # column n_cols + r is row r's outlier
    u, v = np.zeros(n_rows), np.zeros(n_all)
    row_of_col = np.full(n_all, -1, np.int64)
    col_of_row = np.full(n_rows, -1, np.int64)
    edge_of_row = np.full(n_rows, -1, np.int64)  # -1: the outlier (or not yet added)
    dist = np.full(n_all, np.inf)
    done = np.zeros(n_all, np.bool_)
    via_row = np.full(n_all, -1, np.int64)
    via_edge = np.full(n_all, -1, np.int64)
    touched = np.empty(n_all, np.int64)
    scanned_cols = np.empty(n_all, np.int64)
    scanned_rows = np.empty(n_rows, np.int64)
    heap_keys = np.empty(len(cols) + 2 * n_rows + 1)
    heap_values = np.empty(len(cols) + 2 * n_rows + 1, np.int64)
    matched_counts = np.zeros(len(prefix_sizes), np.int64)
    flagged_counts = np.zeros(len(prefix_sizes), np.int64)
    matched = flagged = added = 0
    for t in range(len(prefix_sizes)):
        while added < prefix_sizes[t]:
            start = added
            added += 1
            n_touched = n_scanned_cols = n_scanned_rows = heap_size = 0
            row, row_dist, sink, sink_dist = start, 0.0, -1, 0.0
            while sink < 0:
                for k in range(indptr[row], indptr[row + 1] + 1):
                    if k < indptr[row + 1]:
                        col, cost, edge = cols[k], costs[k], k
                    else:
                        col, cost, edge = n_cols + row, outlier_cost, -1
                    if done[col]:
                        continue
                    reduced = row_dist + cost - u[row] - v[col]
                    if reduced < dist[col]:
                        if dist[col] == np.inf:
                            touched[n_touched] = col
                            n_touched += 1
                        dist[col], via_row[col], via_edge[col] = reduced, row, edge
                        heap_size = _heap_push(heap_keys, heap_values, heap_size, reduced, col)
                while True:  # the closest column not yet scanned (stale heap entries skipped)
                    key, col, heap_size = _heap_pop(heap_keys, heap_values, heap_size)
                    if not done[col] and key == dist[col]:
                        break
                done[col] = True
                scanned_cols[n_scanned_cols] = col
                n_scanned_cols += 1
                if row_of_col[col] < 0:
                    sink, sink_dist = col, dist[col]
                else:
                    row, row_dist = row_of_col[col], dist[col]
                    scanned_rows[n_scanned_rows] = row
                    n_scanned_rows += 1
            u[start] += sink_dist
            for q in range(n_scanned_rows):
                r = scanned_rows[q]
                u[r] += sink_dist - dist[col_of_row[r]]
            for q in range(n_scanned_cols):
                c = scanned_cols[q]
                v[c] -= sink_dist - dist[c]
            col = sink
            while True:  # flip the path; keep the counts of real and flagged pairs
                r, edge = via_row[col], via_edge[col]
                old_col, old_edge = col_of_row[r], edge_of_row[r]
                if old_edge >= 0:
                    matched -= 1
                    flagged -= flags[old_edge]
                if edge >= 0:
                    matched += 1
                    flagged += flags[edge]
                row_of_col[col], col_of_row[r], edge_of_row[r] = r, col, edge
                if r == start:
                    break
                col = old_col
            for q in range(n_touched):
                dist[touched[q]], done[touched[q]] = np.inf, False
        matched_counts[t], flagged_counts[t] = matched, flagged
    return matched_counts, flagged_counts, edge_of_row


def nested_matchings(indptr, cols, costs, n_cols: int, outlier_cost: float, prefix_sizes,
                     flags=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal matchings of the first ``prefix_sizes[t]`` rows, for every t (module docstring).

    ``indptr``: int (R + 1,) CSR row pointers; ``cols``: int (E,) column of each edge in [0, ``n_cols``);
    ``costs``: float (E,) finite, >= 0; ``outlier_cost``: float, the cost of leaving a row unmatched;
    ``prefix_sizes``: int (T,) non-decreasing, each in [0, R]; ``flags``: bool or 0/1 (E,) or None (all 0).
    Returns ``(matched, flagged, edge_of_row)``: int64 (T,) number of rows on real edges in prefix t's
    matching, int64 (T,) how many of those edges are flagged, and int64 (R,) the edge of each row in the
    matching of the last prefix (-1: its outlier, or a row beyond that prefix).
    """
    indptr = np.ascontiguousarray(indptr, np.int64)
    cols = np.ascontiguousarray(cols, np.int64)
    costs = np.ascontiguousarray(costs, np.float64)
    sizes = np.ascontiguousarray(prefix_sizes, np.int64)
    n_rows, n_edges = len(indptr) - 1, len(cols)
    if isinstance(n_cols, bool) or not isinstance(n_cols, (int, np.integer)) or n_cols < 0:
        raise ValueError(f"n_cols must be an int >= 0, got {n_cols!r}")
    if n_rows < 0 or indptr[0] != 0 or indptr[-1] != n_edges or np.any(np.diff(indptr) < 0):
        raise ValueError(f"indptr must be non-decreasing CSR pointers from 0 to {n_edges} edges")
    if len(costs) != n_edges or (n_edges and (cols.min() < 0 or cols.max() >= n_cols)):
        raise ValueError(f"need {n_edges} costs and columns in [0, {n_cols}), got {len(costs)} costs")
    if n_edges and (not np.all(np.isfinite(costs)) or costs.min() < 0):
        raise ValueError("costs must be finite and >= 0")
    if not np.isfinite(outlier_cost) or outlier_cost < 0:
        raise ValueError(f"outlier_cost must be finite and >= 0, got {outlier_cost}")
    if len(sizes) and (np.any(np.diff(sizes) < 0) or sizes[0] < 0 or sizes[-1] > n_rows):
        raise ValueError(f"prefix_sizes must be non-decreasing in [0, {n_rows}]")
    flags = np.zeros(n_edges, np.int64) if flags is None else np.ascontiguousarray(flags, np.int64)
    if len(flags) != n_edges or (n_edges and (flags.min() < 0 or flags.max() > 1)):
        raise ValueError(f"need {n_edges} flags of 0 or 1, got {len(flags)}")
    return _sweep(indptr, cols, costs, int(n_cols), float(outlier_cost), sizes, flags)
