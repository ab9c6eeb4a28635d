"""Ordering baselines for given instances (oosis_jax.evaluation.baselines)."""

import numpy as np
import pytest

from data.synthetic import make_scene
from oosis_jax.evaluation import baselines
from oosis_jax.evaluation import metrics
from data import targets


def two_boxes():
    """Instance 1: rows 0-3 (small, ends higher); instance 2: rows 2-7 (large, ends lower); they touch."""
    inst = np.zeros((8, 8), np.int32)
    inst[0:4, 0:3] = 1
    inst[2:8, 3:8] = 2
    return inst


def test_bottom_y_lower_bottom_is_nearer():
    np.testing.assert_array_equal(baselines.bottom_y_edges(two_boxes()), [[2, 1]])


def test_area_larger_is_nearer_and_ties_give_no_edge():
    np.testing.assert_array_equal(baselines.area_edges(two_boxes()), [[2, 1]])
    tie = np.array([[1, 1, 2, 2]], np.int32)
    assert baselines.area_edges(tie).shape == (0, 2)
    assert baselines.bottom_y_edges(tie).shape == (0, 2)


def test_only_touching_pairs_are_ordered():
    inst = np.array([[1, 0, 2]], np.int32)
    assert baselines.area_edges(inst).shape == (0, 2)
    assert baselines.depth_edges(inst, [1.0, 2.0]).shape == (0, 2)


def test_depth_edges_nearer_occludes_and_validates():
    np.testing.assert_array_equal(baselines.depth_edges(two_boxes(), [1.0, 5.0]), [[1, 2]])
    np.testing.assert_array_equal(baselines.depth_edges(two_boxes(), [5.0, 1.0]), [[2, 1]])
    with pytest.raises(ValueError, match="depths"):
        baselines.depth_edges(two_boxes(), [1.0])
    with pytest.raises(ValueError, match=r"depths of instances \[2\] are NaN"):
        baselines.depth_edges(two_boxes(), [1.0, np.nan])
    with pytest.raises(ValueError, match="-inf"):
        baselines.depth_edges(two_boxes(), [-np.inf, 1.0])


def test_instance_depths_chain_into_depth_edges():
    """An instance without depth (+inf from `instance_depths`) is farthest; an id absent from the map is
    never read, whatever its depth."""
    inst = np.array([[1, 1, 3, 3]], np.int32)  # id 2 absent
    depths = baselines.instance_depths(inst, np.array([[4.0, 4.0, np.nan, np.nan]]))
    np.testing.assert_array_equal(depths, [4.0, np.inf, np.inf])
    np.testing.assert_array_equal(baselines.depth_edges(inst, depths), [[1, 3]])
    np.testing.assert_array_equal(baselines.depth_edges(inst, [np.inf, np.nan, np.inf]), np.zeros((0, 2)))


def test_exact_depth_reproduces_the_synthetic_ground_truth():
    for seed in range(5):
        scene = make_scene(seed, 60, 80)
        edges = baselines.depth_edges(scene["instance_map"], scene["depths"])
        assert sorted(map(tuple, edges.tolist())) == sorted(map(tuple, scene["edges"].tolist()))


def test_instance_depths_mean_and_unknown():
    inst = np.array([[1, 1, 1, 2]], np.int32)
    depth = np.array([[1.0, 2.0, 9.0, np.nan]])
    np.testing.assert_array_equal(baselines.instance_depths(inst, depth), [4.0, np.inf])
    with pytest.raises(ValueError, match="shape"):
        baselines.instance_depths(inst, depth[:, :2])


def test_instance_depths_are_each_instance_s_own_numpy_mean_bit_for_bit():
    """Random maps with absent ids, unknown depths and many exact ties: every mean equals numpy's mean of
    ``depth[inst == k]`` (the published Tab. 1 rows rely on ties staying ties)."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        h, w, n = *rng.integers(1, 30, 2), int(rng.integers(0, 25))
        inst = rng.integers(0, n + 1, (h, w)).astype((np.int32, np.int64, np.uint16)[trial % 3])
        depth = rng.random((h, w)) * 10
        depth = np.round(depth) if trial % 2 else depth
        depth[rng.random((h, w)) < 0.2] = np.nan
        expected = [depth[(inst == k) & np.isfinite(depth)] for k in range(1, int(inst.max(initial=0)) + 1)]
        np.testing.assert_array_equal(baselines.instance_depths(inst, depth),
                                      [v.mean() if v.size else np.inf for v in expected])


def test_noisy_depths_error_grows_with_distance():
    depths = np.array([1.0, 100.0] * 2000)
    noisy = baselines.noisy_instance_depths(depths, 0.2, seed=3)
    error = np.abs(noisy - depths)
    assert error[1::2].mean() > 50 * error[0::2].mean()
    np.testing.assert_array_equal(baselines.noisy_instance_depths(depths, 0.0), depths)
    np.testing.assert_array_equal(noisy, baselines.noisy_instance_depths(depths, 0.2, seed=3))
    with pytest.raises(ValueError, match="positive"):
        baselines.noisy_instance_depths([-1.0], 0.1)
    with pytest.raises(ValueError, match="relative_noise"):
        baselines.noisy_instance_depths([1.0], -0.1)


def test_pairwise_vote_on_ground_truth_heads_recovers_the_edges():
    for seed in range(3):
        scene = make_scene(seed, 60, 80)
        b, e = targets.boundary_targets(scene["instance_map"], scene["edges"])
        edges = baselines.pairwise_vote_edges(scene["instance_map"], b, e)
        assert sorted(map(tuple, edges.tolist())) == sorted(map(tuple, scene["edges"].tolist()))


def test_pairwise_vote_can_form_a_cycle():
    # 1 top-left, 2 top-right, 3 the bottom half; each pair decided alone: 1 > 2, 2 > 3, 3 > 1.
    inst = np.zeros((4, 4), np.int32)
    inst[:2, :2], inst[:2, 2:], inst[2:] = 1, 2, 3
    e = np.zeros((4, 4, 4))
    e[inst == 1, 1] = 1  # right: 1 occludes 2
    e[inst == 2, 3] = 1  # bottom: 2 occludes 3
    e[2:, :2, 2] = 1  # 3 under 1 points up: 3 occludes 1
    e[2:, 2:, 0] = 1  # 3 under 2 points left (inside 3): no vote
    edges = baselines.pairwise_vote_edges(inst, np.ones((4, 4)), e)
    assert sorted(map(tuple, edges.tolist())) == [(1, 2), (2, 3), (3, 1)]
    assert metrics.cycle_fraction(3, edges) == 1.0


def test_pairwise_vote_validates_heads():
    with pytest.raises(ValueError, match="b must be"):
        baselines.pairwise_vote_edges(two_boxes(), np.ones((2, 2)), np.ones((8, 8, 4)))
    with pytest.raises(ValueError, match="finite"):
        baselines.pairwise_vote_edges(two_boxes(), np.full((8, 8), np.nan), np.ones((8, 8, 4)))


def test_bad_instance_map_raises():
    with pytest.raises(ValueError, match="instance_map"):
        baselines.bottom_y_edges(np.ones((3, 3), np.float32))
