"""Jump and expansion moves (Sec. 3.2-3.3, supplement Sec. 2) checked by enumerating every binary move."""

import itertools

import numpy as np
import pytest
from helpers.crf_problems import brute_energy, random_occ, rectangles

import crf
from crf.jump import jump_move
from crf.maxflow import cut_value
from crf.move_graph import expansion_move_graph, jump_move_graph, move_graph
from crf.moves import best_move


def all_moves(shape):
    for bits in itertools.product([0, 1], repeat=shape[0] * shape[1]):
        yield np.array(bits, dtype=np.int64).reshape(shape)


def neighbour_pairs(labels):
    """(x_p, x_q, p, q) for every 4-connected pair, q right of or below p."""
    height, width = labels.shape
    for y, x in itertools.product(range(height), range(width)):
        for v, u in ((y, x + 1), (y + 1, x)):
            if v < height and u < width:
                yield labels[y, x], labels[v, u], (y, x), (v, u)


def bounded_jump_energy(labels, y, sigma, occ, lam, mu, bound):
    """Sec. 3.3 upper bound of E(m(x; y)), written from the paper's description, pair by pair.

    ``constant``: the smoothness term of pairs with |x_p - x_q| = 1 is the constant 1. ``merge``: it keeps
    its true value except when the lower pixel stays and the higher one jumps, where it costs 2.
    """
    moved = labels + y
    total = brute_energy(moved, sigma, occ, lam, mu)
    for xp, xq, p, q in neighbour_pairs(labels):
        if abs(xp - xq) != 1:
            continue
        lower, higher = (p, q) if xp < xq else (q, p)
        if bound == "constant":
            total += lam * (moved[p] == moved[q])
        elif y[lower] == 0 and y[higher] == 1:
            total += lam
    return total


def random_problem(rng, shape, max_label=3, sigma_values=None):
    labels = rng.integers(0, max_label + 1, shape)
    sigma = rng.random(shape) if sigma_values is None else rng.choice(sigma_values, shape)
    return labels, sigma, random_occ(rng, labels, density=0.4)


@pytest.mark.parametrize("lam, mu", [(20.0, 100.0), (3.0, 0.0)])
@pytest.mark.parametrize("bound", ["constant", "merge"])
def test_jump_graph_is_the_bounded_binary_energy(bound, lam, mu):
    """constant + cut(y) equals the Sec. 3.3 bound for every y; the bound is >= Eq. (8), equal at y = 0.

    With mu = 0 the occlusion pairs still forbid x_p < x_q (c_inf), as in ``crf.energy``.
    """
    rng = np.random.default_rng(1)
    for shape in [(1, 4), (2, 3), (3, 3)]:
        for k in range(6):
            labels, sigma, occ = random_problem(rng, shape)
            graph = jump_move_graph(labels, sigma, occ, lam, mu, bound)
            for y in all_moves(shape):
                expected = bounded_jump_energy(labels, y, sigma, occ, lam, mu, bound)
                got = graph.constant + cut_value(graph.tedges, graph.right, graph.down, y.astype(bool))
                assert got == pytest.approx(expected, rel=1e-12, abs=1e-9)
                assert expected >= brute_energy(labels + y, sigma, occ, lam, mu)
            at_zero = graph.constant + graph.tedges[..., 1].sum()
            assert at_zero == pytest.approx(brute_energy(labels, sigma, occ, lam, mu))


def test_expansion_graph_is_exact():
    """Expansion on alpha above every label is submodular: constant + cut(y) equals Eq. (8) of the move."""
    rng = np.random.default_rng(2)
    for shape in [(2, 3), (3, 3)]:
        for k in range(6):
            labels, sigma, occ = random_problem(rng, shape, max_label=2)
            alpha = labels.max() + 1
            graph = expansion_move_graph(labels, alpha, sigma, occ)
            for y in all_moves(shape):
                expected = brute_energy(np.where(y == 1, alpha, labels), sigma, occ)
                got = graph.constant + cut_value(graph.tedges, graph.right, graph.down, y.astype(bool))
                assert got == pytest.approx(expected, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("bound", ["constant", "merge"])
def test_each_jump_move_is_optimal_for_the_bound(bound):
    """Along the whole jump-move run, each move minimises the bound over all 2^n moves."""
    rng = np.random.default_rng(3)
    for shape in [(2, 4), (3, 3), (1, 7)]:
        for k in range(5):
            sigma = rng.choice([0.0, 0.1, 0.5, 0.9, 1.0], shape)
            occ = random_occ(rng, np.zeros(shape, int), density=0.3)
            labels = np.zeros(shape, dtype=np.int64)
            while True:
                move = jump_move(labels, sigma, occ, bound=bound).astype(np.int64)
                values = [bounded_jump_energy(labels, y, sigma, occ, 20.0, 100.0, bound) for y in all_moves(shape)]
                assert bounded_jump_energy(labels, move, sigma, occ, 20.0, 100.0, bound) == pytest.approx(min(values))
                if not move.any():
                    assert min(values) == pytest.approx(values[0])  # y = 0 is optimal
                    break
                assert min(values) < values[0]
                labels = labels + move


def test_jump_moves_never_increase_the_energy_and_stop_at_a_fixed_point():
    rng = np.random.default_rng(4)
    for k in range(10):
        shape = (int(rng.integers(3, 9)), int(rng.integers(3, 9)))
        sigma = rng.random(shape)
        occ = random_occ(rng, np.zeros(shape, int), density=0.2)
        labels = np.zeros(shape, dtype=np.int64)
        energies = [brute_energy(labels, sigma, occ)]
        while (move := jump_move(labels, sigma, occ)).any():
            labels = labels + move
            energies.append(brute_energy(labels, sigma, occ))
        assert all(b <= a + 1e-9 for a, b in zip(energies, energies[1:]))
        run = crf.jump_moves_result(sigma, occ)
        result = run.labels
        assert result.dtype == np.int32 and run.graph_cuts == len(energies) and run.region_moves == 0
        np.testing.assert_array_equal(result, labels)
        assert crf.energy(result, sigma, occ) == pytest.approx(energies[-1])


def test_each_expansion_is_optimal():
    rng = np.random.default_rng(5)
    for shape in [(2, 4), (3, 3)]:
        for k in range(5):
            sigma = rng.choice([0.0, 0.2, 0.8, 1.0], shape)
            occ = random_occ(rng, np.zeros(shape, int), density=0.3)
            labels, alpha = np.zeros(shape, dtype=np.int64), 1
            while True:
                move = best_move(expansion_move_graph(labels, alpha, sigma, occ))
                values = [brute_energy(np.where(y == 1, alpha, labels), sigma, occ) for y in all_moves(shape)]
                assert brute_energy(np.where(move, alpha, labels), sigma, occ) == pytest.approx(min(values))
                if not move.any():
                    break
                labels, alpha = np.where(move, alpha, labels), alpha + 1
            np.testing.assert_array_equal(crf.expansion_moves(sigma, occ), labels)


def test_two_overlapping_boxes_jumps_recover_them_expansion_leaves_a_gap():
    """Jumps find the ground truth; the first expansion (alpha = 1) keeps the back box's pixels touching
    the front box at 0 to collect the occlusion reward, and a later expansion cannot lift them."""
    sigma, occ, inst = rectangles([(2, 12, 2, 14), (4, 10, 10, 26)])
    jump = crf.jump_moves(sigma, occ)
    np.testing.assert_array_equal(jump, inst)
    instance_map, edges = crf.instances(jump)
    np.testing.assert_array_equal(instance_map, inst)
    np.testing.assert_array_equal(edges, [[2, 1]])
    expansion = crf.expansion_moves(sigma, occ)
    gap = (inst == 1) & (expansion == 0)
    assert (expansion[inst == 2] == 2).all() and (expansion[(inst == 1) & ~gap] == 1).all()
    assert gap[4:10, 9].all() and gap.sum() == 12  # the column left of the front box and 3 pixels above/below
    assert crf.energy(jump, sigma, occ) < crf.energy(expansion, sigma, occ)


def test_three_boxes_jump_beats_expansion_but_keeps_a_band():
    """Supplement Sec. 2 (Fig. 5): jumps beat one expansion cycle on a chain of three occluding boxes.

    Known behaviour (Sec. 3.3, the move is "blind" to pairs whose labels differ by 1): the jumps stop
    in a local minimum where the column of the middle box touching the front box keeps label 1, so the
    front box ends at 2 instead of 3 and the ground-truth order labels have a lower energy.
    """
    sigma, occ, inst = rectangles([(2, 12, 2, 12), (3, 11, 9, 20), (4, 10, 17, 28)])
    jump = crf.jump_moves(sigma, occ)
    expansion = crf.expansion_moves(sigma, occ)
    assert crf.energy(jump, sigma, occ) < crf.energy(expansion, sigma, occ)
    assert crf.energy(inst, sigma, occ) < crf.energy(jump, sigma, occ)
    np.testing.assert_array_equal(jump == 0, inst == 0)
    assert (jump[inst == 1] == 1).all() and (jump[inst == 3] == 2).all()
    band = (inst == 2) & (np.arange(inst.shape[1]) >= 16)  # the middle box from the front box's left edge on
    assert (jump[band] == 1).all() and (jump[(inst == 2) & ~band] == 2).all()
    # The band is its own instance, occluded by both the middle box and the front box.
    np.testing.assert_array_equal(crf.instances(jump)[1], [[2, 1], [2, 3], [4, 3]])


def test_bad_moves_raise():
    sigma, occ, inst = rectangles([(2, 6, 2, 9)], shape=(8, 12))
    with pytest.raises(ValueError, match="violates an occlusion pair"):
        jump_move_graph(np.zeros((8, 12), int) + (inst == 0), sigma, occ)
    with pytest.raises(ValueError, match="bound"):
        jump_move_graph(np.zeros((8, 12), int), sigma, occ, bound="qpbo")
    with pytest.raises(ValueError, match="lam and mu"):
        crf.jump_moves(sigma, occ, lam=-1.0)
    with pytest.raises(ValueError, match="not submodular"):
        labels = np.zeros((8, 12), int)
        proposal = np.where(inst > 0, 1, 2)  # background above an occluding instance in every move
        move_graph(labels, proposal, sigma, occ)
    with pytest.raises(ValueError, match="shape"):
        crf.expansion_moves(sigma[:, :5], occ)
