"""crf.move_solver (the fused moves every minimiser uses) against the graph path of crf.move_graph + crf.moves:
the same cut, move by move, whole image or window, jump or expansion, either bound, one reused solver."""

import numpy as np
import pytest
from helpers.crf_problems import noisy_scene, random_occ, rectangles

import crf
from crf.boykov_kolmogorov import Workspace, boykov_kolmogorov
from crf.move_graph import BOUNDS, build_move_graph
from crf.move_solver import MoveSolver, _fill
from crf.moves import best_move


def graph_path_move(labels, keep, offset, sigma, occ, bound, window=None):
    """The move as the minimisers made it before the fused solver: the graph of the window plus a one-pixel
    frame (held at y = 0 by infinite source links), solved by ``best_move``."""
    height, width = labels.shape
    y0, y1, x0, x1 = (0, height, 0, width) if window is None else window
    outer = np.s_[max(y0 - 1, 0):min(y1 + 1, height), max(x0 - 1, 0):min(x1 + 1, width)]
    crop = np.ascontiguousarray(labels[outer])
    graph = build_move_graph(crop, keep * crop + offset, np.ascontiguousarray(sigma[outer]),
                             np.ascontiguousarray(occ[outer]), 20.0, 100.0, BOUNDS[bound])
    inside = np.zeros(labels.shape, bool)
    inside[y0:y1, x0:x1] = True
    graph.tedges[~inside[outer], 0] = np.inf
    move = np.zeros(labels.shape, bool)
    move[outer] = best_move(graph)
    return move


@pytest.mark.parametrize("bound", ["constant", "merge"])
def test_fused_moves_equal_the_graph_path(bound):
    rng = np.random.default_rng(11)
    solvers = {}
    compared = moved = 0
    for _ in range(60):
        shape = (int(rng.integers(1, 12)), int(rng.integers(1, 12)))
        labels = rng.integers(0, 4, shape)
        sigma = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], shape) if rng.random() < 0.5 else rng.random(shape)
        occ = random_occ(rng, labels, density=0.3)
        solver = solvers.setdefault(shape, MoveSolver(sigma, occ, 20.0, 100.0))  # reused across problems
        solver.sigma, solver.occ = sigma, occ
        y0, x0 = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        window = (y0, int(rng.integers(y0 + 1, shape[0] + 1)), x0, int(rng.integers(x0 + 1, shape[1] + 1)))
        for keep, offset in ((1, 1), (1, 2), (0, int(labels.max()) + 1)):
            if keep == 0 and bound == "merge":
                continue
            for win in (None, window):
                got = solver.move(labels, keep, offset, BOUNDS[bound], win)
                np.testing.assert_array_equal(got, graph_path_move(labels, keep, offset, sigma, occ, bound, win))
                compared += 1
                moved += got.any()
    assert moved > compared // 4


def test_jump_moves_and_expansions_equal_the_graph_path_on_scenes():
    rng = np.random.default_rng(2)
    for seed in range(1, 5):
        sigma, occ = noisy_scene(seed, (40, 56), rng, 0.2, 0.1)
        labels = np.zeros((40, 56), np.int64)
        while (move := graph_path_move(labels, 1, 1, sigma, occ, "constant")).any():
            labels += move
        np.testing.assert_array_equal(crf.jump_moves(sigma, occ), labels)
        labels, alpha = np.zeros((40, 56), np.int64), 1
        while (move := graph_path_move(labels, 0, alpha, sigma, occ, "constant")).any():
            labels, alpha = np.where(move, alpha, labels), alpha + 1
        np.testing.assert_array_equal(crf.expansion_moves(sigma, occ), labels)


def test_fused_moves_raise_like_the_graph_path():
    sigma, occ, inst = rectangles([(2, 6, 2, 9)], shape=(8, 12))
    solver = MoveSolver(sigma, occ, 20.0, 100.0)
    with pytest.raises(ValueError, match="violates an occlusion pair"):
        solver.move(np.zeros((8, 12), np.int64) + (inst == 0), 1, 1, BOUNDS["constant"])
    assert not solver.move(inst, 1, 1, BOUNDS["constant"]).any()  # the same solver, after the error


def bk_gives_up(labels, keep, offset, sigma, occ, bound, window):
    """Whether BK, stopping after its first step (``stop=(0, 0)``), gives up on this move's graph."""
    height, width = labels.shape
    y0, y1, x0, x1 = (0, height, 0, width) if window is None else window
    box = (max(y0 - 1, 0), min(y1 + 1, height), max(x0 - 1, 0), min(x1 + 1, width))
    n = (box[1] - box[0]) * (box[3] - box[2])
    res, terminal = np.empty((n, 4)), np.empty(n)
    _fill(labels, keep, offset, sigma, occ, 20.0, 100.0, BOUNDS[bound], box, (y0, y1, x0, x1), res, terminal)
    return not boykov_kolmogorov(res, terminal, box[3] - box[2], *Workspace(n).arrays(n), np.int64(0), 0.0)[1]


@pytest.mark.parametrize("bound", ["constant", "merge"])
def test_moves_handed_over_to_push_relabel_equal_bk_alone(bound):
    """``crf.hybrid`` made to hand every move over as soon as BK has taken a step (``stop=(0, 0)``): jumps by 1
    and 2 and expansions, whole image and windows (pinned frames), the same masks as BK alone (``stop=None``)."""
    rng = np.random.default_rng(5)
    compared = moved = over = 0
    for seed in range(1, 9):
        shape = (int(rng.integers(8, 30)), int(rng.integers(8, 40)))
        sigma, occ = noisy_scene(seed, shape, rng, 0.2, 0.1)
        handed, alone = MoveSolver(sigma, occ, 20.0, 100.0, stop=(0.0, 0.0)), MoveSolver(sigma, occ, 20.0, 100.0,
                                                                                          stop=None)
        labels = np.zeros(shape, np.int64)
        for _ in range(6):
            y0, x0 = int(rng.integers(0, shape[0] - 2)), int(rng.integers(0, shape[1] - 2))
            window = (y0, int(rng.integers(y0 + 2, shape[0] + 1)), x0, int(rng.integers(x0 + 2, shape[1] + 1)))
            for keep, offset in ((1, 1), (1, 2), (0, int(labels.max()) + 1)):
                if keep == 0 and bound == "merge":
                    continue
                for win in (None, window):
                    got = handed.move(labels, keep, offset, BOUNDS[bound], win)
                    np.testing.assert_array_equal(got, alone.move(labels, keep, offset, BOUNDS[bound], win))
                    compared += 1
                    moved += got.any()
                    over += bk_gives_up(labels, keep, offset, sigma, occ, bound, win)
            labels += alone.move(labels, 1, 1, BOUNDS[bound])
    assert compared > 150 and moved >= 20 and over > compared // 2
