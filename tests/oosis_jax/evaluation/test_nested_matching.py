"""One pass of nested_matchings against a dense assignment of every prefix, and its use by the boundary metric."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from oosis_jax.evaluation import boundaries
from oosis_jax.evaluation.nested_matching import nested_matchings


def random_problem(rng):
    """A sparse problem with zero, equal and distinct costs, and some rows without any edge."""
    n_rows, n_cols = int(rng.integers(1, 25)), int(rng.integers(1, 25))
    present = rng.random((n_rows, n_cols)) < rng.uniform(0.05, 0.5)
    costs = np.where(present, rng.choice([0.0, 1.0, np.sqrt(2), 2.0, rng.uniform(0, 3)], (n_rows, n_cols)), np.inf)
    rows, cols = np.nonzero(present)
    indptr = np.concatenate([[0], np.cumsum(present.sum(1))])
    return costs, indptr, cols, costs[rows, cols]


def dense_optimum(costs, n, outlier):
    """Least total cost of the first n rows, each on an edge or on an outlier column of its own."""
    block = np.full((n, n), np.inf)
    np.fill_diagonal(block, outlier)
    full = np.concatenate([costs[:n], block], axis=1)
    r, c = linear_sum_assignment(np.where(np.isfinite(full), full, 1e9))
    return full[r, c].sum(), int(np.sum(c < costs.shape[1]))


@pytest.mark.parametrize("seed", range(12))
def test_every_prefix_is_an_optimal_matching(seed):
    rng = np.random.default_rng(seed)
    costs, indptr, cols, edge_costs = random_problem(rng)
    n_rows = len(indptr) - 1
    outlier = 3.0 * (n_rows + 1) + 1.0
    sizes = np.unique(np.concatenate([[0, n_rows], rng.integers(0, n_rows + 1, 4)]))
    flags = rng.random(len(cols)) < 0.5
    matched, flagged, edge_of_row = nested_matchings(indptr, cols, edge_costs, costs.shape[1], outlier, sizes, flags)
    for t, n in enumerate(sizes):
        best_total, best_matched = dense_optimum(costs, n, outlier)
        assert matched[t] == best_matched
        if n == n_rows:  # the last prefix's matching itself: one to one, on real edges, optimal in total
            real = np.flatnonzero(edge_of_row >= 0)
            assert len(real) == matched[t] and flagged[t] == flags[edge_of_row[real]].sum()
            assert len(set(cols[edge_of_row[real]])) == len(real)
            assert np.all((edge_of_row[real] >= indptr[real]) & (edge_of_row[real] < indptr[real + 1]))
            total = edge_costs[edge_of_row[real]].sum() + outlier * (n_rows - len(real))
            assert total == pytest.approx(best_total)


def test_rows_without_edges_and_empty_prefixes():
    matched, flagged, edge_of_row = nested_matchings([0, 0, 1], [0], [0.5], 1, 10.0, [0, 1, 2], [1])
    assert matched.tolist() == [0, 0, 1] and flagged.tolist() == [0, 0, 1] and edge_of_row.tolist() == [-1, 0]
    matched, _, edge_of_row = nested_matchings([0], [], [], 0, 1.0, [0])
    assert matched.tolist() == [0] and edge_of_row.shape == (0,)


def test_a_later_row_takes_a_column_over_when_that_matches_more():
    """Row 0 prefers column 0; row 1 reaches only column 0, so row 0 moves to its dearer column 1."""
    matched, _, edge_of_row = nested_matchings([0, 2, 3], [0, 1, 0], [0.0, 2.0, 1.0], 2, 100.0, [1, 2])
    assert matched.tolist() == [1, 2] and edge_of_row.tolist() == [1, 2]


@pytest.mark.parametrize("bad, message", [
    (dict(indptr=[0, 2]), "CSR pointers"),
    (dict(cols=[3]), "columns in"),
    (dict(costs=[-1.0]), ">= 0"),
    (dict(costs=[np.nan]), "finite"),
    (dict(prefix_sizes=[1, 0]), "non-decreasing"),
    (dict(prefix_sizes=[2]), "non-decreasing"),
    (dict(flags=[1, 0]), "flags"),
    (dict(outlier_cost=np.inf), "outlier_cost"),
    (dict(n_cols=-1), "n_cols must be an int >= 0"), (dict(flags=[2]), "flags of 0 or 1"),
])
def test_bad_problems_are_refused(bad, message):
    problem = dict(indptr=[0, 1], cols=[0], costs=[1.0], n_cols=1, outlier_cost=5.0, prefix_sizes=[1], flags=None)
    with pytest.raises(ValueError, match=message):
        nested_matchings(**{**problem, **bad})


@pytest.mark.parametrize("seed", range(4))
def test_image_counts_match_each_threshold_solved_alone(seed):
    """The one-pass sweep against a dense assignment at every threshold, on a noisy map with ties."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(10, 24)), int(rng.integers(10, 24)))
    gt = rng.random(shape) < 0.15
    b = np.round(rng.random(shape) * (rng.random(shape) < 0.3), 1)  # few distinct values: many equal ranks
    thresholds = rng.permutation(np.linspace(0.05, 0.95, 7))  # in any order
    max_dist = 2.0 / np.hypot(*shape)
    counts = boundaries.image_counts(b, None, gt, None, thresholds=thresholds, max_dist=max_dist, apply_nms=False)
    radius = max_dist * np.hypot(*shape)
    g = np.argwhere(gt)
    for t, threshold in enumerate(thresholds):
        p = np.argwhere(b >= threshold)
        dist = np.hypot(*(p[:, None, :] - g[None, :, :]).transpose(2, 0, 1))
        far = radius * (len(p) + 1) + 1.0
        r, c = linear_sum_assignment(np.where(dist <= radius, dist, far)) if len(p) and len(g) else ([], [])
        best = int(np.sum(dist[r, c] <= radius)) if len(r) else 0
        assert counts[t].tolist() == [best, gt.sum(), best, best, len(p)]


def test_its_numba_code_caches_in_a_folder_keyed_by_the_evaluation_sources():
    """Cached as crf's code is (`crf.numba_cache`): with the same fallbacks where the package cannot be written
    (numba's own raised at import for a read-only install without a writable home)."""
    from pathlib import Path

    from crf import numba_cache
    from oosis_jax.evaluation import nested_matching

    package = Path(nested_matching.__file__).resolve().parent
    keyed = numba_cache.cache_dir(package)
    paths = {Path(f._cache.cache_path) for f in vars(nested_matching).values() if hasattr(f, "_cache")}
    assert len(paths) == 1 and keyed in set(next(iter(paths)).parents)
    assert keyed.name == "numba-" + numba_cache.source_hash(package)
