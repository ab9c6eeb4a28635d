"""CRF inputs (Eq. 5, 7) from heads and from ground truth."""

import numpy as np
import pytest

from data.synthetic import make_scene
from oosis_jax.inference import crf_inputs
from data import targets


@pytest.mark.parametrize("seed", [1, 2, 4, 7])
def test_gt_boundaries_reproduce_the_gt_occlusion_map(seed):
    scene = make_scene(seed, 64, 96)
    b, e = targets.boundary_targets(scene["instance_map"], scene["edges"])
    expected = targets.occlusion_map(scene["instance_map"], scene["edges"])
    assert expected[..., :2].any() and expected[..., 2:].any()
    np.testing.assert_array_equal(crf_inputs.occlusion_set(b, e), expected)
    # Through the prediction path too: B as probabilities survives NMS and the 0.1 threshold.
    s = np.stack([1.0 - (scene["instance_map"] > 0), (scene["instance_map"] > 0) * 1.0], -1)
    sigma, occ = crf_inputs.predicted_crf_inputs(s, b.astype(np.float32), e)
    gt_sigma, gt_occ = crf_inputs.gt_crf_inputs(scene["instance_map"], scene["edges"])
    np.testing.assert_array_equal(gt_occ, expected)
    np.testing.assert_array_equal(sigma, gt_sigma)
    assert (occ == expected).mean() > 0.99  # NMS may thin a few pixels where two boundaries touch


def test_direction_rule_on_soft_orientations():
    boundary = np.ones((3, 3), bool)
    e = np.zeros((3, 3, 4))
    e[1, 1] = [0.45, 0.05, 0.3, 0.2]  # left and top (>= 0.225) occluded, right and bottom not
    e[0, 0] = [0.7, 0.1, 0.1, 0.1]  # left only, but it points outside the image
    occ = crf_inputs.occlusion_set(boundary, e)
    assert occ[1, 1].tolist() == [True, False, True, False]
    assert not occ[0, 0].any()
    assert not crf_inputs.occlusion_set(np.zeros((3, 3), bool), e).any()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="NaN"):
        crf_inputs.predicted_crf_inputs(np.full((4, 4, 3), np.nan), np.zeros((4, 4)), np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="differ"):
        crf_inputs.predicted_crf_inputs(np.full((4, 4, 3), 0.5), np.zeros((4, 5)), np.zeros((4, 5, 4)))
    s = np.full((4, 4, 3), 0.5)
    s[2, 1, 2] = np.nan  # a foreground class: its instance's score would be NaN
    with pytest.raises(ValueError, match="every class's probability.*NaN"):
        crf_inputs.sigma_from_semantic(s)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        crf_inputs.sigma_from_semantic(np.where(np.isnan(s), 7.0, s))
    with pytest.raises(ValueError, match="e must be"):
        crf_inputs.occlusion_set(np.zeros((4, 4), bool), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="bool"):
        crf_inputs.occlusion_set(np.zeros((4, 4)), np.zeros((4, 4, 4)))
