"""Oriented and plain boundary ODS / OIS / AP (P2ORM protocol) on hand-made predictions."""

import numpy as np
import pytest

from oosis_jax.evaluation import boundaries as boundary_eval
from data import targets

RADIUS = 0.03  # x diagonal of a 48x48 image = 2.04 px


def ground_truth():
    """Two overlapping rectangles (2 occludes 1) on background: B and E of supplement Sec. 1.3."""
    inst = np.zeros((48, 48), np.int32)
    inst[10:30, 12:36] = 1
    inst[20:40, 26:44] = 2
    return targets.boundary_targets(inst, np.array([[2, 1]]))


def evaluate(b, e, gt_b, gt_e, oriented=True):
    counts = boundary_eval.image_counts(b, e, gt_b, gt_e, max_dist=RADIUS)
    return boundary_eval.summarize([counts], oriented=oriented)


def test_orientation_angles_follow_the_left_rule():
    bins = np.eye(4)[None]  # occluding left, right, top, bottom
    np.testing.assert_allclose(boundary_eval.orientation_angles(bins)[0], [np.pi / 2, -np.pi / 2, np.pi, 0])
    # Supplement Sec. 1.4 example o_p = [0.5, 0.1, 0.4, 0]: left (0.5) and top (0.4) win.
    angle = boundary_eval.orientation_angles(np.array([[[0.5, 0.1, 0.4, 0.0]]]))[0, 0]
    assert angle == pytest.approx(np.arctan2(-0.4, -0.5) + 3 * np.pi / 2)
    # ties between opposite bins pick right and bottom (the docstring's rule)
    np.testing.assert_allclose(boundary_eval.orientation_angles(np.array([[[0.5, 0.5, 0.0, 0.0]]]))[0, 0], -np.pi / 2)
    np.testing.assert_allclose(boundary_eval.orientation_angles(np.array([[[0.0, 0.0, 0.5, 0.5]]]))[0, 0], 0.0)


def test_perfect_prediction_scores_ods_and_ois_one():
    gt_b, gt_e = ground_truth()
    result = evaluate(gt_b.astype(float), gt_e, gt_b, gt_e)
    assert (result["ODS"], result["OIS"]) == (1.0, 1.0)
    assert result["AP"] == 0.0  # BSDS / P2ORM: a binary map's curve is one point, which has no AP


def test_ap_of_a_graded_perfect_map_is_the_recall_levels_it_reaches():
    """Boundary pixels at confidences 0.01..1 in turn, all correct: precision 1 at every threshold, recall from
    about 0.01 (threshold 0.99) up (NMS thins a few); the levels outside the recalls reached count 0 (P2ORM)."""
    gt_b, gt_e = ground_truth()
    pixels = np.argwhere(gt_b)
    b = np.zeros(gt_b.shape)
    b[pixels[:, 0], pixels[:, 1]] = (np.arange(len(pixels)) % 100 + 1) / 100
    result = evaluate(b, gt_e, gt_b, gt_e)
    smallest, largest = min(result["recall"]), max(result["recall"])
    assert np.allclose(result["precision"], 1.0) and smallest < 0.05 and largest > 0.9
    levels = np.linspace(0, 1, 101)
    assert result["AP"] == pytest.approx(np.sum((levels >= smallest) & (levels <= largest)) / 100)


def test_ap_follows_the_matlab_protocol_on_a_hand_made_curve():
    """Counts (matched GT, GT, matched, oriented, predicted) of two images at three thresholds; the expected
    values are P2ORM's ``collect_eval_bdry_v2.m`` steps done by hand (unique recall, interp1, NaN -> 0, sum
    / 100); ODS and OIS are checked by the next test."""
    first = np.array([[8, 10, 8, 6, 20], [6, 10, 6, 5, 10], [2, 10, 2, 2, 2]])
    second = np.array([[4, 4, 4, 4, 8], [3, 4, 3, 3, 4], [0, 4, 0, 0, 0]])
    result = boundary_eval.summarize([first, second])
    recall, precision = np.array([12, 9, 2]) / 14, np.array([10 / 28, 8 / 14, 1.0])
    np.testing.assert_allclose(result["recall"], recall)
    np.testing.assert_allclose(result["precision"], precision)
    levels = np.linspace(0, 1, 101)
    inside = (levels >= recall.min()) & (levels <= recall.max())
    expected = np.interp(levels, recall[::-1], precision[::-1])[inside].sum() / 100
    assert result["AP"] == pytest.approx(expected) and result["AP"] == pytest.approx(0.48944, abs=1e-5)
    assert boundary_eval.summarize([second, first])["AP"] == result["AP"]


def test_ods_interpolates_ois_picks_each_image_s_threshold_and_plain_ignores_orientation():
    """Two images at two thresholds where the interpolated best F lies far between the curve's points, each
    image is best at another threshold, and the plain and oriented matches differ; expected values by hand."""
    first = np.array([[10, 10, 10, 5, 50], [3, 10, 3, 3, 3]])  # best alone at its higher threshold
    second = np.array([[8, 10, 8, 8, 10], [1, 10, 1, 1, 1]])  # best alone at its lower one
    recall = np.array([18, 4]) / 20

    def dense_best_f(precision):  # the straight segment between the two points, 10**5 samples
        s = np.linspace(0, 1, 100_001)
        r, p = recall[0] * (1 - s) + recall[1] * s, precision[0] * (1 - s) + precision[1] * s
        return (2 * r * p / (r + p)).max()

    oriented, plain = (boundary_eval.summarize([first, second], oriented=o) for o in (True, False))
    np.testing.assert_allclose(oriented["precision"], [13 / 60, 1.0])
    np.testing.assert_allclose(plain["precision"], [18 / 60, 1.0])
    assert oriented["ODS"] == pytest.approx(dense_best_f([13 / 60, 1.0]), abs=1e-3)  # about 0.58
    assert plain["ODS"] == pytest.approx(dense_best_f([18 / 60, 1.0]), abs=1e-3)  # about 0.60
    assert oriented["ODS"] > 0.55  # the curve's own points reach F 0.35 and 0.33 only
    ois = 2 * (11 / 20) * (11 / 13) / (11 / 20 + 11 / 13)  # first at row 1 + second at row 0: 11 of 20, 11 of 13
    assert oriented["OIS"] == pytest.approx(ois) and plain["OIS"] == pytest.approx(ois)


def test_ap_keeps_the_first_of_equal_recalls_and_matlabs_levels():
    """MATLAB's ``unique`` keeps the first (lowest threshold) point of equal recalls, and its 0:0.01:1 levels
    include 0.69 = 69/100 exactly where np.linspace's 0.6900000000000001 would leave it outside the curve."""
    recall, precision = np.array([0.8, 0.8, 0.4]), np.array([0.4, 0.8, 1.0])
    levels = np.round(np.arange(40, 81)) / 100  # the levels 0.40..0.80 the curve spans
    expected = np.interp(levels, [0.4, 0.8], [1.0, 0.4]).sum() / 100
    assert boundary_eval.average_precision(recall, precision) == pytest.approx(expected)
    # recall 0.69 (69 of 100 pixels) at precision 1, then 0.10: levels 0.10..0.69, 60 of them, all at 1
    assert boundary_eval.average_precision(np.array([69 / 100, 10 / 100]), np.ones(2)) == pytest.approx(0.60)


def test_shift_within_and_beyond_the_radius():
    gt_b, gt_e = ground_truth()
    near = evaluate(np.roll(gt_b, 1, axis=1).astype(float), np.roll(gt_e, 1, axis=1), gt_b, gt_e)
    assert near["ODS"] == pytest.approx(1.0) and near["OIS"] == pytest.approx(1.0)
    # A straight vertical boundary (an instance filling columns >= 24) shifted by 2 px (inside the 2.04 px
    # radius) still matches everywhere, by 3 px nowhere.
    inst = np.zeros((48, 48), np.int32)
    inst[:, 24:] = 1
    line_b, line_e = targets.boundary_targets(inst, np.zeros((0, 2), int))
    for shift, expected in ((2, 1.0), (3, 0.0)):
        moved = evaluate(np.roll(line_b, shift, axis=1).astype(float), np.roll(line_e, shift, axis=1), line_b, line_e)
        assert (moved["ODS"], moved["OIS"]) == (expected, expected)


def test_wrong_orientation():
    gt_b, gt_e = ground_truth()
    flipped = gt_e[..., [1, 0, 3, 2]]  # every normal reversed
    wrong = evaluate(gt_b.astype(float), flipped, gt_b, gt_e)
    assert wrong["ODS"] == 0.0 and wrong["AP"] == 0.0
    plain = evaluate(gt_b.astype(float), None, gt_b, None, oriented=False)
    assert plain["ODS"] == 1.0 and plain["OIS"] == 1.0
    # Half the boundary pixels (by count) reversed: recall 1, precision 1/2, F = 2/3.
    half = gt_e.copy()
    pixels = np.argwhere(gt_b)[: gt_b.sum() // 2]
    half[pixels[:, 0], pixels[:, 1]] = flipped[pixels[:, 0], pixels[:, 1]]
    result = evaluate(gt_b.astype(float), half, gt_b, gt_e)
    precision = 1 - (gt_b.sum() // 2) / gt_b.sum()
    assert result["ODS"] == pytest.approx(2 * precision / (1 + precision))


def test_thresholds_rank_predictions_and_ois_at_least_ods():
    gt_b, gt_e = ground_truth()
    noisy = np.where(gt_b, 0.8, 0.0)
    noisy[2, 2:40] = 0.3  # a false boundary, removed above 0.3
    weak = evaluate(noisy, gt_e, gt_b, gt_e)
    assert weak["ODS"] == pytest.approx(1.0)  # the best threshold drops the false line
    other = boundary_eval.image_counts(gt_b * 0.5, gt_e, gt_b, gt_e, max_dist=RADIUS)
    both = boundary_eval.summarize([boundary_eval.image_counts(noisy, gt_e, gt_b, gt_e, max_dist=RADIUS), other])
    assert both["OIS"] >= both["ODS"] - 1e-12 and len(both["recall"]) == 99


def test_correspond_pixels_is_one_to_one_within_radius():
    pred = np.zeros((20, 20), bool)
    gt = np.zeros((20, 20), bool)
    pred[5, 5:10] = True
    gt[6, 5:15] = True
    pred_match, gt_match = boundary_eval.correspond_pixels(pred, gt, max_dist=1.5 / np.hypot(20, 20))
    assert (pred_match >= 0).sum() == 5 == (gt_match >= 0).sum()
    rows, cols = np.unravel_index(pred_match[pred], gt.shape)
    assert np.all(rows == 6) and np.array_equal(cols, np.arange(5, 10))  # minimum total distance: straight down


@pytest.mark.parametrize("seed", range(6))
def test_correspond_pixels_is_a_maximum_matching_of_minimum_total_distance(seed):
    """Against a dense assignment over all pixel pairs, pairs beyond the radius costing more than any total."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(8, 30)), int(rng.integers(8, 30)))
    pred, gt = rng.random(shape) < rng.uniform(0.05, 0.4), rng.random(shape) < rng.uniform(0.05, 0.4)
    max_dist = rng.uniform(1.0, 3.5) / np.hypot(*shape)
    pred_match, gt_match = boundary_eval.correspond_pixels(pred, gt, max_dist=max_dist)
    p, g = np.argwhere(pred), np.argwhere(gt)
    dist = np.hypot(*(p[:, None, :] - g[None, :, :]).transpose(2, 0, 1))
    radius = max_dist * np.hypot(*shape)
    far = radius * (min(len(p), len(g)) + 1) + 1.0
    r, c = linear_sum_assignment(np.where(dist <= radius, dist, far))
    best = dist[r, c][dist[r, c] <= radius]
    matched = np.flatnonzero(pred_match.ravel() >= 0)
    assert len(matched) == len(best) == (gt_match >= 0).sum()
    partners = pred_match.ravel()[matched]
    assert np.array_equal(np.sort(gt_match.ravel()[partners]), matched)  # one to one, both ways
    gaps = np.hypot(*np.subtract(np.unravel_index(matched, shape), np.unravel_index(partners, shape)))
    assert np.all(gaps <= radius + 1e-9) and gaps.sum() == pytest.approx(best.sum())


def test_bad_inputs_raise():
    gt_b, gt_e = ground_truth()
    with pytest.raises(ValueError, match=r"b is \(48, 48\) but gt_boundary is \(47, 48\)"):
        boundary_eval.image_counts(gt_b.astype(float), gt_e, gt_b[1:], gt_e)
    with pytest.raises(ValueError, match="gt_boundary must be a bool"):
        boundary_eval.image_counts(gt_b.astype(float), gt_e, gt_b.astype(float), gt_e)
    row = boundary_eval.image_counts(gt_b[10:11].astype(float), None, gt_b[10:11], None)  # one row is an image
    assert row[0, 1] == gt_b[10].sum() and row[0, 0] > 0
    with pytest.raises(ValueError, match="max_dist must be a finite number > 0"):
        boundary_eval.image_counts(gt_b.astype(float), gt_e, gt_b, gt_e, max_dist=-1)
    with pytest.raises(ValueError, match="thresholds must be a 1-D array of finite numbers"):
        boundary_eval.image_counts(gt_b.astype(float), gt_e, gt_b, gt_e, thresholds=[0.5, np.nan])
    with pytest.raises(ValueError, match="NaN"):
        boundary_eval.image_counts(np.full(gt_b.shape, np.nan), gt_e, gt_b, gt_e)
    with pytest.raises(ValueError, match="both e and gt_e"):
        boundary_eval.image_counts(gt_b.astype(float), gt_e, gt_b, None)
    with pytest.raises(ValueError, match="must have shape"):
        boundary_eval.image_counts(gt_b.astype(float), gt_e[..., :3], gt_b, gt_e)
