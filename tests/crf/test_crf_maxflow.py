"""crf.grid_maxflow against PyMaxflow (test-only oracle, GPL) and brute force over every cut."""

import faulthandler
import itertools

import numpy as np
import pytest

from crf import grid_maxflow
from crf.boykov_kolmogorov import Workspace
from crf.hybrid import finish_with_push_relabel
from crf.maxflow import _residual_graph, cut_value, solve_grid
from helpers.crf_problems import random_grid
from helpers.pymaxflow import pymaxflow_grid


def pymaxflow(tedges, right, down):
    """Max-flow and sink side computed by PyMaxflow's Boykov-Kolmogorov solver."""
    graph, ids = pymaxflow_grid(tedges, right, down)
    return graph.maxflow(), graph.get_grid_segments(ids)


def brute_force_cut(tedges, right, down):
    """Minimum cut value and the intersection of all minimum sink sides, by enumerating every cut."""
    height, width, _ = tedges.shape
    best, best_sides = np.inf, []
    for bits in itertools.product([False, True], repeat=height * width):
        sink = np.array(bits).reshape(height, width)
        value = _cut_loop(tedges, right, down, sink)
        if value < best - 1e-9:
            best, best_sides = value, [sink]
        elif abs(value - best) <= 1e-9:
            best_sides.append(sink)
    return best, np.logical_and.reduce(best_sides)


def _cut_loop(tedges, right, down, sink):
    height, width, _ = tedges.shape
    total = 0.0
    for y in range(height):
        for x in range(width):
            total += tedges[y, x, 0] if sink[y, x] else tedges[y, x, 1]
            for (v, u), arcs in (((y, x + 1), right), ((y + 1, x), down)):
                if v < height and u < width and sink[y, x] != sink[v, u]:
                    total += arcs[y, x, 0] if sink[v, u] else arcs[y, x, 1]
    return total


def _finite_oracle(tedges, right, down):
    """PyMaxflow on the graph with infinite arcs replaced by a capacity above every finite cut."""
    big = 1.0 + sum(np.where(np.isinf(a), 0, a).sum() for a in (tedges, right, down))
    return pymaxflow(*(np.where(np.isinf(a), big, a) for a in (tedges, right, down))), big


SIZES = [(1, 1), (1, 2), (2, 1), (1, 17), (17, 1), (2, 2), (3, 5), (5, 3), (6, 6), (4, 11), (9, 7), (13, 13)]
SCALES = [1e-3, 1.0, 20.0, 1e4]


METHODS = ["auto", "boykov_kolmogorov", "push_relabel"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", SIZES)
def test_random_grids_match_pymaxflow(size, method):
    """12 sizes x 4 scales x 25 grids = 1,200 random grids per method; flow equal, cut value equal to it."""
    rng = np.random.default_rng(size[0] * 1000 + size[1])
    for scale in SCALES:
        for k in range(25):
            caps = random_grid(rng, *size, scale, zero_fraction=rng.choice([0.0, 0.3, 0.8]))
            flow, sink = grid_maxflow(*caps, method=method)
            expected, _ = pymaxflow(*caps)
            assert flow == pytest.approx(expected, rel=1e-9, abs=1e-12 * scale)
            assert cut_value(*caps, sink) == pytest.approx(flow, rel=1e-12, abs=1e-12 * scale)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [(1, 9), (9, 1), (5, 5), (8, 12), (30, 40)])
def test_infinite_arcs_match_pymaxflow(size, method):
    """Infinite neighbour arcs (hard constraints) with a finite cut guaranteed by the t-links."""
    rng = np.random.default_rng(size[0] * 100 + size[1])
    for k in range(40):
        tedges, right, down = random_grid(rng, *size, 10.0, inf_fraction=0.3)
        flow, sink = grid_maxflow(tedges, right, down, method=method)
        (expected, _), big = _finite_oracle(tedges, right, down)
        assert expected < big  # all-source cut sum(tedges[..., 1]) is finite
        assert flow == pytest.approx(expected, rel=1e-9)
        assert cut_value(tedges, right, down, sink) == pytest.approx(flow, rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_infinite_terminal_links(method):
    """inf t-links force a side; the flow is infinite exactly when every cut is infinite."""
    rng = np.random.default_rng(7)
    for k in range(50):
        tedges, right, down = random_grid(rng, 4, 5, 3.0)
        tedges[rng.random((4, 5)) < 0.2, 0] = np.inf
        flow, sink = grid_maxflow(tedges, right, down, method=method)
        (expected, _), big = _finite_oracle(tedges, right, down)
        assert flow == pytest.approx(expected, rel=1e-9)
        assert not sink[np.isinf(tedges[..., 0])].any()
    tedges = np.zeros((1, 2, 2))
    tedges[0, 0, 0] = np.inf
    tedges[0, 1, 1] = np.inf
    right = np.zeros((1, 2, 2))
    right[0, 0, 0] = np.inf
    flow, sink = grid_maxflow(tedges, right, np.zeros((1, 2, 2)), method=method)
    assert flow == np.inf


def test_solve_grid_pins_pixels_with_infinite_source_links():
    """Boykov-Kolmogorov in ``solve_grid`` takes inf source links (used to freeze pixels of a move)."""
    rng = np.random.default_rng(8)
    for k in range(30):
        tedges, right, down = random_grid(rng, 7, 9, 5.0, inf_fraction=0.1)
        tedges[rng.random((7, 9)) < 0.3, 0] = np.inf
        flow, sink = solve_grid(tedges, right, down)
        expected, expected_sink = grid_maxflow(tedges, right, down)
        assert flow == pytest.approx(expected, rel=1e-9)
        np.testing.assert_array_equal(sink, expected_sink)


@pytest.mark.parametrize("method", METHODS)
def test_brute_force_on_tiny_graphs(method):
    """Minimum over all 2^n cuts equals the flow; the sink side is the smallest minimum-cut sink side."""
    rng = np.random.default_rng(3)
    for size in [(1, 1), (1, 4), (4, 1), (2, 3), (3, 3), (2, 5)]:
        for k in range(12):
            caps = random_grid(rng, *size, 5.0, zero_fraction=0.4)
            caps = [np.round(c) for c in caps]  # integer capacities make ties (several minimum cuts) common
            flow, sink = grid_maxflow(*caps, method=method)
            best, smallest = brute_force_cut(*caps)
            assert flow == pytest.approx(best, abs=1e-9)
            np.testing.assert_array_equal(sink, smallest)


def test_integer_and_bool_inputs_are_cast():
    tedges = np.array([[[3, 0], [0, 2]]])
    right = np.array([[[1, 0], [0, 0]]])
    flow, sink = grid_maxflow(tedges, right, np.zeros((1, 2, 2), dtype=bool))
    assert flow == 1.0
    np.testing.assert_array_equal(sink, [[False, True]])


def test_ignored_border_entries():
    """Column W-1 of right and row H-1 of down are ignored, even when they hold garbage."""
    rng = np.random.default_rng(11)
    tedges, right, down = random_grid(rng, 3, 4, 1.0)
    expected, _ = grid_maxflow(tedges, right, down)
    right[:, -1] = -5.0
    down[-1] = np.nan
    assert grid_maxflow(tedges, right, down)[0] == pytest.approx(expected)


@pytest.mark.parametrize("change, message", [
    (lambda t, r, d: (t[..., :1], r, d), "shape"),
    (lambda t, r, d: (t, r[:, :2], d), "shape"),
    (lambda t, r, d: (t, r, d[None]), "shape"),
    (lambda t, r, d: (t[:0], r[:0], d[:0]), "shape"),
    (lambda t, r, d: (t.astype(str), r, d), "dtype"),
    (lambda t, r, d: (np.where(t > 0.5, np.nan, t), r, d), "NaN"),
    (lambda t, r, d: (t, -r, d), "negative"),
    (lambda t, r, d: (t, r, np.full_like(d, np.nan)), "NaN"),
])
def test_bad_inputs_raise(change, message):
    rng = np.random.default_rng(0)
    caps = random_grid(rng, 3, 3, 1.0, zero_fraction=0.0)
    with pytest.raises(ValueError, match=message):
        grid_maxflow(*change(*caps))


@pytest.mark.parametrize("method", ["auto", "push_relabel", "boykov_kolmogorov"])
def test_capacities_that_sum_beyond_float64_are_refused(method):
    tedges = np.zeros((3, 4, 2))
    tedges[0, 0, 0], tedges[-1, -1, 1] = np.inf, 5.0
    huge = np.full((3, 4, 2), 1e308)  # push-relabel used to run forever on them
    with pytest.raises(ValueError, match="add up beyond float64"):
        grid_maxflow(tedges, huge, huge, method=method)


def _pinned_grid(c):
    """A 2x4 grid: (0, 3), (1, 2) and (1, 3) pinned to the source by infinite t-links, infinite arcs from the
    first two into (1, 2), which passes ``c`` on to (1, 1); three unit sink links. Its maximum flow is 2."""
    tedges, right, down = np.zeros((2, 4, 2)), np.zeros((2, 4, 2)), np.zeros((2, 4, 2))
    tedges[0, 3, 0] = tedges[1, 2, 0] = tedges[1, 3, 0] = np.inf
    tedges[0, 2, 1] = tedges[1, 0, 1] = tedges[1, 1, 1] = 1.0
    down[0, 3, 0] = right[1, 2, 1] = down[0, 2, 1] = np.inf  # (0,3)->(1,3), (1,3)->(1,2), (1,2)->(0,2)
    right[1, 1, 1] = c  # (1, 2) -> (1, 1)
    down[0, 1, 0] = 1.0  # (0, 1) -> (1, 1)
    return tedges, right, down


@pytest.fixture
def no_hang():
    """Ends the test process (exit status 1; pytest-xdist reports the test as crashed) if the test runs for
    120 s: a numba solver that never returns, what these tests guard against, cannot be interrupted otherwise."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.mark.parametrize("method", METHODS)
def test_flows_that_could_overflow_float64_are_refused_and_finite_sums_within_it_solved(method, no_hang):
    """Each infinite t-link is solved as 2 * total + 1: on ``_pinned_grid(3e307)`` three of them flowing into
    one node made push-relabel's excess inf, then NaN, and it never returned; ``(k + 1) * big + total`` beyond
    float64 is refused now, and 1e307 solved. With nothing infinite, finite capacities adding up to 1e308 fit
    float64 and are solved (they used to be refused)."""
    flow, sink = grid_maxflow(*_pinned_grid(1e307), method=method)
    assert flow == 2.0 and sink.tolist() == [[False] * 4, [True, False, False, False]]
    with pytest.raises(ValueError, match=r"add up to 3e\+307: with 3 infinite t-links.*beyond float64"):
        grid_maxflow(*_pinned_grid(3e307), method=method)
    tedges, right = np.zeros((1, 2, 2)), np.zeros((1, 2, 2))
    tedges[0, 0, 0], tedges[0, 1, 1], right[0, 0, 0] = 1e308, 5.0, 1.0
    flow, sink = grid_maxflow(tedges, right, np.zeros((1, 2, 2)), method=method)
    assert flow == 1.0 and sink.tolist() == [[False, True]]


def test_the_hybrids_push_relabel_refuses_infinite_terminal_links_whose_flows_could_overflow(no_hang):
    """``crf.hybrid.finish_with_push_relabel`` solves infinite terminal links as its own 2 * finite + 1: the
    same bound, on the residual graph of ``_pinned_grid`` (whose three pinned pixels have infinite terminals)."""
    for c in (1e307, 3e307):
        res, tcap, excess, direct = _residual_graph(*_pinned_grid(c), False)
        terminal, tree = excess - tcap, Workspace(8).arrays(8)[0]
        assert np.isinf(terminal).sum() == 3
        if c == 1e307:
            assert direct + finish_with_push_relabel(res, terminal, 4, tree) == 2.0
        else:
            with pytest.raises(ValueError, match="the flows could add up beyond float64"):
                finish_with_push_relabel(res, terminal, 4, tree)


@pytest.mark.skipif(np.finfo(np.longdouble).max <= np.finfo(np.float64).max, reason="long double is float64 here")
def test_finite_capacities_beyond_float64_are_refused_not_made_hard_constraints():
    """A long double 1e400 is finite, but inf once cast to float64: refused instead of solved as a hard
    constraint; in an ignored border entry it is ignored."""
    tedges, right = np.zeros((1, 2, 2), np.longdouble), np.zeros((1, 2, 2), np.longdouble)
    tedges[0, 0, 0], tedges[0, 1, 1], right[0, 0, 0] = np.longdouble("1e400"), 5.0, 1.0
    with pytest.raises(ValueError, match=r"tedges contains finite capacities beyond float64 \(e.g. 1e\+400"):
        grid_maxflow(tedges, right, np.zeros((1, 2, 2)))
    tedges[0, 0, 0], right[0, 1, 0] = 7.0, np.longdouble("1e400")  # column W-1 of right is ignored
    assert grid_maxflow(tedges, right, np.zeros((1, 2, 2)))[0] == 1.0


def test_integer_capacities_float64_cannot_hold_are_refused():
    """An int64 2**53 + 1 would be solved as 2**53 (the solvers work in float64): refused; 2**53 itself and an
    ignored border entry are not."""
    tedges, zeros = np.array([[[2**53 + 1, 2**53 + 1]]], np.int64), np.zeros((1, 1, 2), np.int64)
    with pytest.raises(ValueError, match=r"tedges contains integer capacities above 2\*\*53 \(max 9007199254740993"):
        grid_maxflow(tedges, zeros, zeros)
    assert grid_maxflow(tedges - 1, zeros, zeros)[0] == 2**53
    right = np.array([[[5, 5], [2**60, 0]]], np.uint64)  # column W-1 of right is ignored
    assert grid_maxflow(np.array([[[3, 0], [0, 4]]]), right, np.zeros((1, 2, 2)))[0] == 3.0


def test_unknown_method_raises():
    with pytest.raises(ValueError, match="method"):
        grid_maxflow(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), method="dinic")


def test_large_grid_both_methods_agree_with_pymaxflow():
    """A 120x200 grid with CRF-like capacities (long augmenting paths, many orphans in BK)."""
    rng = np.random.default_rng(5)
    tedges = np.where(rng.random((120, 200, 2)) < 0.5, rng.random((120, 200, 2)), 0.0)
    right = np.full((120, 200, 2), 20.0) * (rng.random((120, 200, 2)) < 0.95)
    down = np.full((120, 200, 2), 20.0) * (rng.random((120, 200, 2)) < 0.95)
    expected, segments = pymaxflow(tedges, right, down)
    for method in METHODS:
        flow, sink = grid_maxflow(tedges, right, down, method=method)
        assert flow == pytest.approx(expected, rel=1e-9)
