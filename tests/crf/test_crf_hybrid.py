"""crf.hybrid: Boykov-Kolmogorov handing its residual graph over to push-relabel gives BK's own flow and cut at
whatever point it stops, in both orientations, with infinite arcs and pinned pixels; the switch rule fires
on long augmenting paths and not on short ones."""

import numpy as np
import pytest
from helpers.crf_problems import random_grid

from crf.boykov_kolmogorov import NEVER, SINK_TREE, Workspace, boykov_kolmogorov
from crf.hybrid import STOP_PATH, default_stop_steps, max_flow
from crf.maxflow import _residual_graph, grid_maxflow


def residual(tedges, right, down):
    """``(res, terminal, direct)`` in the layout of ``crf.boykov_kolmogorov``."""
    res, tcap, excess, direct = _residual_graph(tedges, right, down, False)
    return res, excess - tcap, direct


def solve(caps, stop_steps, stop_path):
    """``(flow, sink)`` of ``max_flow`` on a copy of the residual graph of ``caps``."""
    res, terminal, direct = residual(*caps)
    n = terminal.shape[0]
    arrays = Workspace(n).arrays(n)
    flow = max_flow(res, terminal, caps[0].shape[1], *arrays, np.int64(stop_steps), stop_path)
    return direct + flow, arrays[0].reshape(caps[0].shape[:2]) == SINK_TREE


def hand_over_state(caps, stop_steps):
    """``(gave_up, terminal)``: whether BK gives up at ``stop_steps`` (path rule off) on this graph, and its
    terminal residuals then (what ``finish_with_push_relabel`` chooses the orientation from)."""
    res, terminal, _ = residual(*caps)
    n = terminal.shape[0]
    finished = boykov_kolmogorov(res, terminal, caps[0].shape[1], *Workspace(n).arrays(n), np.int64(stop_steps),
                                 0.0)[1]
    return not finished, terminal


@pytest.mark.parametrize("size", [(1, 7), (7, 1), (3, 4), (6, 6), (9, 13), (16, 20)])
def test_handing_over_at_any_step_gives_bks_flow_and_cut(size):
    """Every stopping point of BK, on random grids (some with infinite arcs, some with pixels pinned to the
    source by infinite t-links as the windowed moves do, some with both): push-relabel finishes to BK's flow and
    sink side."""
    rng = np.random.default_rng(size[0] * 100 + size[1])
    handed = {"source-heavy": 0, "sink-heavy": 0}
    for k in range(45):
        caps = random_grid(rng, *size, 10.0, inf_fraction=0.1 if k % 3 != 1 else 0.0)
        if k % 3 != 0:
            caps[0][rng.random(size) < 0.2, 0] = np.inf
        thinned = k % 2  # alternate which side holds more terminal nodes, so both orientations are solved
        caps[0][..., thinned] = np.where(rng.random(size) < 0.3, caps[0][..., thinned], 0.0)
        expected_flow, expected_sink = solve(caps, NEVER, 0.0)
        for stop in range(0, 40, 3):
            gave_up, terminal = hand_over_state(caps, stop)
            if not gave_up:
                break
            handed["source-heavy" if (terminal > 0).sum() > (terminal < 0).sum() else "sink-heavy"] += 1
            flow, sink = solve(caps, stop, 0.0)
            np.testing.assert_array_equal(sink, expected_sink)
            assert flow == pytest.approx(expected_flow, rel=1e-9, abs=1e-9)
    assert min(handed.values()) > 0


def long_path_grid(height, width):
    """Uniform arcs, source links on the left column, sink links on the right one: every augmenting path
    crosses the grid, as on the moves of predicted scenes (one region, terminal links far apart)."""
    tedges = np.zeros((height, width, 2))
    tedges[:, 0, 0] = 5.0
    tedges[:, -1, 1] = 5.0
    arcs = np.ones((height, width, 2))
    return tedges, arcs, arcs.copy()


def test_the_rule_hands_long_paths_over_and_keeps_short_ones():
    n = 40 * 400
    caps = long_path_grid(40, 400)
    res, terminal, _ = residual(*caps)
    assert not boykov_kolmogorov(res, terminal, 400, *Workspace(n).arrays(n), default_stop_steps(n), STOP_PATH)[1]
    flow, sink = grid_maxflow(*caps)
    bk_flow, bk_sink = grid_maxflow(*caps, method="boykov_kolmogorov")
    np.testing.assert_array_equal(sink, bk_sink)
    assert flow == pytest.approx(bk_flow) and flow == pytest.approx(40.0)  # any column of 40 unit arcs
    assert sink[:, -1].all() and not sink[:, :-1].any()  # the smallest sink side of those cuts
    tedges = np.zeros((400, 40, 2))
    tedges[::2, :, 0] = 1.0
    tedges[1::2, :, 1] = 1.0  # rows of sources and sinks interleaved: augmenting paths of one arc
    res, terminal, _ = residual(tedges, np.ones((400, 40, 2)), np.ones((400, 40, 2)))
    assert boykov_kolmogorov(res, terminal, 40, *Workspace(n).arrays(n), default_stop_steps(n), STOP_PATH)[1]
