"""crf.solve: never above the paper's jump moves, global optimum on tiny problems, recovery of the known
local minima of Sec. 3.3 (bands and chains), input validation."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers.crf_problems import noisy_scene, random_occ, rectangles

import crf
from crf.region_moves import RegionGraph, region_descent


def _random_problem(rng, shape, occ_density):
    sigma = rng.choice([0.0, 0.1, 0.5, 0.9, 1.0], size=shape) if rng.random() < 0.5 else rng.random(shape)
    occ = random_occ(rng, np.zeros(shape, int), density=occ_density, feasible=False)
    return sigma, occ


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), height=st.integers(1, 9), width=st.integers(1, 9),
       density=st.sampled_from([0.05, 0.2, 0.5]), lam=st.sampled_from([0.0, 1.0, 20.0]),
       mu=st.sampled_from([1.0, 5.0, 100.0]), steps=st.sampled_from([(1,), (1, 2), (2, 3)]))
def test_never_above_jump_moves_on_random_inputs(seed, height, width, density, lam, mu, steps):
    sigma, occ = _random_problem(np.random.default_rng(seed), (height, width), density)
    labels = crf.solve(sigma, occ, lam, mu, steps=steps)
    assert labels.dtype == np.int32 and labels.shape == (height, width) and labels.min() >= 0
    jump = crf.energy(crf.jump_moves(sigma, occ, lam, mu), sigma, occ, lam, mu)
    assert np.isfinite(jump)
    assert crf.energy(labels, sigma, occ, lam, mu) <= jump + 1e-9 * max(1.0, abs(jump))


def _is_fixed_point(labels, sigma, occ, lam=20.0, mu=100.0, steps=(1, 2)):
    """No whole-image merge-bound move of any step lowers the energy of ``labels``, nor any region move."""
    from crf.inputs import check_sigma_occ
    from crf.move_graph import BOUNDS
    from crf.move_solver import MoveSolver

    sigma, occ = check_sigma_occ(sigma, occ)
    solver = MoveSolver(sigma, occ, lam, mu)
    whole = (0, labels.shape[0], 0, labels.shape[1])
    moves = [solver.move(labels, 1, step, BOUNDS["merge"], whole).any() for step in steps]
    return not any(moves) and region_descent(labels, sigma, occ, lam, mu, 10**9)[1] == 0


def test_the_windowed_cuts_do_not_stop_short_of_the_fixed_point():
    """A change can make a move worthwhile beyond the box of what changed (its frame held still): here one
    jump of rows 0-3 by 1 lowers the energy from -315 to -335, which the windowed cuts alone missed."""
    sigma = np.array([[0, 0, 1], [1, 0, 1], [1, 0, 1], [0, 0, 0], [0, 0, 0]], float)
    occ = np.zeros((5, 3, 4), bool)
    for y, x, d in [(0, 2, 0), (1, 0, 3), (2, 2, 0), (2, 2, 3), (4, 1, 1)]:
        occ[y, x, d] = True
    labels = crf.solve(sigma, occ)
    assert crf.energy(labels, sigma, occ) == -335.0 and _is_fixed_point(labels, sigma, occ)
    rng = np.random.default_rng(7)
    for _ in range(40):
        sigma, occ = (noisy_scene(int(rng.integers(1000)), (40, 56), rng, 0.2, 0.3) if rng.random() < 0.5
                      else _random_problem(rng, (8, 10), 0.2))
        assert _is_fixed_point(crf.solve(sigma, occ, region_work=None), sigma, occ)


@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_never_above_jump_moves_on_synthetic_scenes(noise):
    """Ground-truth inputs of small synthetic scenes, exact or with sigma perturbed by N(0, noise) and a
    fraction 2 * noise of the occlusion pairs dropped: never above the jump moves, strictly below on some."""
    lower = 0
    rng = np.random.default_rng(0)
    for seed in range(1, 7):
        sigma, occ = noisy_scene(seed, (40, 56), rng, noise, 2 * noise)
        run = crf.solve_result(sigma, occ)
        labels = run.labels
        np.testing.assert_array_equal(labels, crf.solve(sigma, occ))
        jump = crf.energy(crf.jump_moves(sigma, occ), sigma, occ)
        assert crf.energy(labels, sigma, occ) <= jump
        lower += crf.energy(labels, sigma, occ) < jump
        assert run.graph_cuts >= crf.jump_moves_result(sigma, occ).graph_cuts + 2  # one full cut per step at least
    assert lower >= 1


def _all_energies(sigma, occ, lam=20.0, mu=100.0):
    """Eq. (8) of every labeling of a tiny grid with labels 0..H*W (enough: only the order of labels and
    whether they are 0 matter). Returns ``(labelings (N, H, W), energies (N,))``."""
    height, width = sigma.shape
    n = height * width
    labels = np.array(list(itertools.product(range(n + 1), repeat=n))).reshape(-1, height, width)
    total = np.where(labels == 0, 1.0 - sigma, sigma).sum(axis=(1, 2))
    total += lam * ((labels[:, :, 1:] != labels[:, :, :-1]).sum(axis=(1, 2))
                    + (labels[:, 1:] != labels[:, :-1]).sum(axis=(1, 2)))
    pairs = ((np.s_[:, 1:], np.s_[:, :-1], 0), (np.s_[:, :-1], np.s_[:, 1:], 1),
             (np.s_[1:, :], np.s_[:-1, :], 2), (np.s_[:-1, :], np.s_[1:, :], 3))
    for p, q, d in pairs:
        xp, xq, mask = labels[(slice(None),) + p], labels[(slice(None),) + q], occ[p + (d,)]
        total = np.where(((xp < xq) & mask).any(axis=(1, 2)), np.inf, total)
        total -= mu * ((xp > xq) & mask).sum(axis=(1, 2))
    return labels, total


def test_global_optimum_on_tiny_problems():
    """On 2x3 grids (7^6 labelings, enumerated) solve reaches the global minimum at least as often as the
    jump moves, and on most problems; the brute force itself is checked against crf.energy."""
    rng = np.random.default_rng(7)
    found = {"solve": 0, "jump": 0}
    problems = 30
    for _ in range(problems):
        sigma, occ = _random_problem(rng, (2, 3), 0.3)
        labelings, energies = _all_energies(sigma, occ)
        for k in rng.choice(len(energies), 3):
            assert energies[k] == pytest.approx(crf.energy(labelings[k], sigma, occ))
        best = energies.min()
        for name, solver in (("solve", crf.solve), ("jump", crf.jump_moves)):
            value = crf.energy(solver(sigma, occ), sigma, occ)
            assert value >= best - 1e-9
            found[name] += value <= best + 1e-9
    print(f"global optimum found: solve {found['solve']}/{problems}, jump_moves {found['jump']}/{problems}")
    assert found["solve"] >= found["jump"]
    assert found["solve"] >= 0.8 * problems


def test_recovers_the_band_that_jump_moves_keep():
    """Three occluding boxes (test_crf_moves): jumps leave the middle box's column next to the front box at
    label 1 (Sec. 3.3); solve finds the ground-truth layering, whose energy is lower."""
    sigma, occ, inst = rectangles([(2, 12, 2, 12), (3, 11, 9, 20), (4, 10, 17, 28)])
    jump = crf.jump_moves(sigma, occ)
    assert not np.array_equal(jump, inst)
    labels = crf.solve(sigma, occ)
    np.testing.assert_array_equal(labels, inst)
    np.testing.assert_array_equal(crf.instances(labels)[1], [[2, 1], [3, 2]])


def test_recovers_a_chain_and_nested_boxes():
    """A chain of three side-by-side boxes (3 over 2 over 1) and two boxes inside a third, where the jump
    moves end with a one-pixel column at a lower label; solve returns the exact layering."""
    chain = np.zeros((6, 12), np.int64)
    chain[1:5, 1:5], chain[1:5, 5:8], chain[1:5, 8:11] = 1, 2, 3
    nested = np.zeros((8, 14), np.int64)
    nested[1:7, 1:13] = 1
    nested[2:6, 3:7] = 2
    nested[2:6, 7:11] = 3
    for inst in (chain, nested):
        sigma = (inst == 0).astype(float)
        occ = np.zeros(inst.shape + (4,), bool)  # an instance occludes every neighbour with a smaller id
        occ[:, 1:, 0] = inst[:, 1:] > inst[:, :-1]
        occ[:, :-1, 1] = inst[:, :-1] > inst[:, 1:]
        occ[1:, :, 2] = inst[1:] > inst[:-1]
        occ[:-1, :, 3] = inst[:-1] > inst[1:]
        jump = crf.jump_moves(sigma, occ)
        assert crf.energy(inst, sigma, occ) < crf.energy(jump, sigma, occ)
        np.testing.assert_array_equal(crf.solve(sigma, occ), inst)


def test_region_graph_energy_is_exact_and_descent_strictly_lowers_it():
    """The region graph's terms add up to Eq. (8), and region_descent returns a strictly lower energy
    whenever it reports moves."""
    rng = np.random.default_rng(3)
    lowered = 0
    for _ in range(20):
        sigma, occ = _random_problem(rng, (7, 9), 0.2)
        labels = crf.jump_moves(sigma, occ).astype(np.int64)
        graph = RegionGraph(labels, sigma, occ)
        np.testing.assert_array_equal(graph.label[graph.comp], labels)
        unary = np.where(graph.label == 0, graph.unary_bg, graph.unary_fg).sum()
        src = np.repeat(np.arange(len(graph.label)), np.diff(graph.indptr))
        la, lb = graph.label[src], graph.label[graph.neighbour]
        pairwise = 0.5 * 20.0 * (graph.length * (la != lb)).sum() - 100.0 * (graph.occludes * (la > lb)).sum()
        assert unary + pairwise == pytest.approx(crf.energy(labels, sigma, occ))
        new, moves, _ = region_descent(labels, sigma, occ, 20.0, 100.0)
        if moves:
            assert crf.energy(new, sigma, occ) < crf.energy(labels, sigma, occ)
            lowered += 1
        else:
            np.testing.assert_array_equal(new, labels)
    assert lowered > 0


@pytest.mark.parametrize("sigma, occ, kwargs, message", [
    (np.full((3, 3), np.nan), np.zeros((3, 3, 4), bool), {}, "NaN"),
    (np.zeros((3, 3)), np.zeros((3, 4, 4), bool), {},
     r"^sigma has shape \(3, 3\) \(H, W\) but occ has \(3, 4, 4\) \(H, W, 4\): they must share H and W$"),
    (np.zeros((120, 4)), np.zeros((120, 5, 4), bool), {}, r"sigma has shape \(120, 4\) .* but occ has \(120, 5, 4\)"),
    (np.zeros((3, 3)), np.zeros((3, 3, 2), bool), {}, r"occ must have shape \(3, 3, 4\) \(H, W, 4\), got \(3, 3, 2\)"),
    (np.zeros((3, 3)), np.zeros((3, 3), bool), {}, r"occ must have shape \(3, 3, 4\) \(H, W, 4\), got \(3, 3\)"),
    (np.zeros((3, 3)), np.zeros((3, 3, 4), np.uint8), {}, "bool"),
    (np.zeros((0, 3)), np.zeros((0, 3, 4), bool), {}, "sigma must have shape"),
    (np.full((3, 3), 1.5), np.zeros((3, 3, 4), bool), {}, r"\[0, 1\]"),
    (np.zeros((3, 3)), np.ones((3, 3, 4), bool), {}, r"outside the image: 3 in occ\[:, 0, 0\] \(left of the first "
     r"column\), 3 in occ\[:, -1, 1\].*3 in occ\[-1, :, 3\] \(below the last row\); they must be False"),
    (np.zeros((3, 3)), np.arange(36).reshape(3, 3, 4) == 6,  # only occ[0, 1, 2]: up from row 0
     {}, r"outside the image: 1 in occ\[0, :, 2\] \(above the first row\); "),
    (np.zeros((3, 3)), np.zeros((3, 3, 4), bool), {"lam": -1.0}, "lam and mu"),
    (np.zeros((3, 3)), np.zeros((3, 3, 4), bool), {"mu": np.inf}, "lam and mu"),
    (np.zeros((3, 3)), np.zeros((3, 3, 4), bool), {"steps": ()}, "steps"),
    (np.zeros((3, 3)), np.zeros((3, 3, 4), bool), {"steps": (1, 0)}, "steps"),
    (np.zeros((3, 3)), np.zeros((3, 3, 4), bool), {"steps": (1.5,)}, "steps"),
])
def test_bad_inputs_raise(sigma, occ, kwargs, message):
    with pytest.raises(ValueError, match=message):
        crf.solve(sigma, occ, **kwargs)


@pytest.mark.parametrize("sigma_value", [0.5, 0.8, 1.0])
def test_all_background_inputs_skip_every_cut_with_the_same_result(sigma_value):
    """No pixel prefers a label > 0 and O is empty: all zeros without a cut, which is what the moves return
    (checked by running one jump move) and a global minimum (checked against every 2x2 labeling)."""
    from crf.jump import jump_move

    rng = np.random.default_rng(5)
    sigma = np.where(rng.random((6, 7)) < 0.5, sigma_value, rng.uniform(0.5, 1.0, (6, 7)))
    occ = np.zeros((6, 7, 4), bool)
    for run in (crf.jump_moves_result(sigma, occ), crf.solve_result(sigma, occ)):
        assert run.graph_cuts == 0 and run.region_moves == 0
        np.testing.assert_array_equal(run.labels, np.zeros((6, 7), np.int32))
    assert not jump_move(np.zeros((6, 7), int), sigma, occ).any()
    _, energies = _all_energies(sigma[:2, :2], occ[:2, :2])
    assert energies.min() == pytest.approx(crf.energy(np.zeros((2, 2), int), sigma[:2, :2], occ[:2, :2]))
    occ[2, 3, 1] = True  # one occlusion pair: the moves run again
    assert crf.jump_moves_result(sigma, occ).graph_cuts >= 1


def _random_scene(seed, size):
    """Random sigma and occlusion pairs at half density: thousands of tiny regions tied by O (the adversarial
    input of issue 15, where uncapped region moves push most of the region graph)."""
    rng = np.random.default_rng(seed)
    return rng.random((size, size)), random_occ(rng, np.zeros((size, size), int), density=0.5, feasible=False)


def test_region_work_caps_the_region_moves():
    sigma, occ = _random_scene(0, 30)
    jump = crf.energy(crf.jump_moves(sigma, occ), sigma, occ)
    runs = {work: crf.solve_result(sigma, occ, region_work=work) for work in (None, 0, 1, 4)}
    assert runs[0].region_moves == 0 and runs[0].region_visits == 0
    assert 0 < runs[1].region_visits < runs[4].region_visits < runs[None].region_visits
    assert runs[4].region_visits <= 4 * sigma.size + runs[None].region_visits // 2  # stops soon after the cap
    for run in runs.values():
        assert crf.energy(run.labels, sigma, occ) <= jump


def test_default_region_work_does_not_bind_on_scenes():
    """On synthetic scenes, exact or noisy, the default cap changes nothing (they use under 1 visit per pixel)."""
    rng = np.random.default_rng(1)
    for seed in range(1, 5):
        sigma, occ = noisy_scene(seed, (48, 64), rng, 0.2, 0.2)
        capped, free = crf.solve_result(sigma, occ), crf.solve_result(sigma, occ, region_work=None)
        np.testing.assert_array_equal(capped.labels, free.labels)
        assert capped.region_visits == free.region_visits < sigma.size


def test_max_cuts_stops_after_that_many_moves():
    from crf.jump import jump_move

    sigma, occ = _random_scene(2, 12)
    labels = np.zeros((12, 12), np.int64)
    for cuts in (1, 2, 3):
        labels = labels + jump_move(labels, sigma, occ)
        run = crf.jump_moves_result(sigma, occ, max_cuts=cuts)
        assert run.graph_cuts == cuts and run.labels.max() <= cuts
        np.testing.assert_array_equal(run.labels, labels)
    full = crf.solve_result(sigma, occ)
    for cuts in (1, 5, full.graph_cuts - 1):
        run = crf.solve_result(sigma, occ, max_cuts=cuts)
        assert run.graph_cuts == cuts
        assert crf.energy(run.labels, sigma, occ) <= crf.energy(crf.jump_moves(sigma, occ, max_cuts=cuts), sigma, occ)
    np.testing.assert_array_equal(crf.solve(sigma, occ, max_cuts=full.graph_cuts), full.labels)


@pytest.mark.parametrize("kwargs, message", [
    ({"region_work": -1}, "region_work"), ({"region_work": "a"}, "region_work"), ({"max_cuts": 0}, "max_cuts"),
    ({"region_work": np.inf}, "region_work must be None \\(no cap\\) or a finite"),
    ({"max_cuts": 2.5}, "max_cuts"), ({"max_cuts": True}, "max_cuts"),
])
def test_bad_work_caps_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        crf.solve(np.zeros((3, 3)), np.zeros((3, 3, 4), bool), **kwargs)


def test_a_region_work_beyond_int64_is_no_cap():
    sigma, occ = _random_scene(0, 30)
    huge, free = crf.solve_result(sigma, occ, region_work=1e30), crf.solve_result(sigma, occ, region_work=None)
    np.testing.assert_array_equal(huge.labels, free.labels)
    assert huge.region_visits == free.region_visits > 0


def test_contracted_region_graph_is_the_fresh_one():
    """After region moves, contracting the region graph gives the graph a fresh build of the new labeling
    finds: the same regions in the same order, the same adjacency and counts, the same sums up to rounding."""
    from crf.region_moves import _sweep

    contracted = 0
    for seed in range(12):
        sigma, occ = _random_scene(seed, 14)
        labels = crf.jump_moves(sigma, occ)
        graph = RegionGraph(labels, sigma, occ)
        if _sweep(*graph.arrays(), 20.0, 100.0, 10**9)[0] == 0:
            continue
        contracted += graph.contract()
        regions = graph.region_of[graph.comp]
        fresh = RegionGraph(graph.to_labels(), sigma, occ)
        np.testing.assert_array_equal(regions, fresh.comp)
        for name in ("label", "indptr", "neighbour", "length", "occludes", "occluded"):
            np.testing.assert_array_equal(getattr(graph, name), getattr(fresh, name))
        np.testing.assert_allclose(graph.unary_bg, fresh.unary_bg, rtol=1e-12)
        np.testing.assert_allclose(graph.unary_fg, fresh.unary_fg, rtol=1e-12)
    assert contracted >= 3


def test_no_move_raises_a_label_past_int32():
    """Steps up to 2**31 - 1 are accepted, but a merge-bound jump by one from a label >= 1, or a region move
    pushing an occluder above a label of 2**31 - 1, would wrap the int32 labels negative: neither is taken."""
    sigma = np.array([[1.0, 0.2, 0.0, 1.0, 0.0], [0.8, 0.8, 0.8, 0.5, 0.0], [0.5, 0.2, 1.0, 0.0, 0.2]])
    occ = np.zeros((3, 5, 4), bool)
    for y, x, d in [(0, 0, 1), (0, 0, 3), (0, 2, 0), (0, 3, 1), (0, 3, 3), (0, 4, 0), (1, 0, 2), (1, 1, 1), (1, 1, 3),
                    (1, 2, 3), (2, 0, 1), (2, 0, 2), (2, 1, 2), (2, 2, 2), (2, 3, 1)]:
        occ[y, x, d] = True
    labels = crf.solve(sigma, occ, 5.0, 20.0, steps=(1, 2**31 - 1))  # the jump by 2**31 - 1 used to wrap
    assert labels.dtype == np.int32 and labels.min() >= 0
    assert crf.energy(labels, sigma, occ, 5.0, 20.0) <= crf.energy(crf.jump_moves(sigma, occ, 5.0, 20.0), sigma, occ,
                                                                   5.0, 20.0)
    top = np.iinfo(np.int32).max
    occ = np.zeros((1, 3, 4), bool)
    occ[0, 0, 1] = True  # (0, 0) occludes (0, 1): raising (0, 1) to its right neighbour's top label pushes (0, 0)
    labels, moves, _ = region_descent(np.array([[top, top - 2, top]], np.int32), np.zeros((1, 3)), occ, 20.0, 100.0)
    np.testing.assert_array_equal(labels, [[top, top - 2, top - 2]])  # (0, 2) merges downwards instead
    assert moves == 1
