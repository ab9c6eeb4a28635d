"""CRF-side robustness options (beyond the paper): linking, short pieces, small instances."""

import numpy as np
import pytest

from oosis_jax.inference.robustness import Robustness, drop_short_segments, hysteresis_boundaries, merge_small_instances


def test_hysteresis_keeps_weak_pixels_only_when_linked_to_a_strong_one():
    thinned = np.zeros((6, 8))
    thinned[1, 1:6] = [0.6, 0.2, 0.15, 0.12, 0.05]   # a strong seed and a weak tail, then below low
    thinned[4, 2:5] = [0.2, 0.25, 0.15]             # weak only: dropped
    thinned[3, 6] = 0.7                              # a lone strong pixel: kept
    kept = hysteresis_boundaries(thinned, low=0.1, high=0.5)
    expected = np.zeros_like(kept)
    expected[1, 1:5] = True
    expected[3, 6] = True
    np.testing.assert_array_equal(kept, expected)
    np.testing.assert_array_equal(hysteresis_boundaries(thinned, 0.1, 0.1), thinned >= 0.1)
    with pytest.raises(ValueError, match="low <= high"):
        hysteresis_boundaries(thinned, 0.5, 0.1)


def test_short_segments_are_dropped_with_eight_connectivity():
    boundary = np.zeros((6, 6), bool)
    boundary[0, 0] = True                            # 1 pixel
    boundary[[2, 3, 4], [1, 2, 3]] = True            # a diagonal of 3: one piece under 8-connectivity
    diagonal = boundary.copy()
    diagonal[0, 0] = False
    np.testing.assert_array_equal(drop_short_segments(boundary, 2), diagonal)
    np.testing.assert_array_equal(drop_short_segments(boundary, 3), diagonal)
    np.testing.assert_array_equal(drop_short_segments(boundary, 4), np.zeros_like(boundary))
    np.testing.assert_array_equal(drop_short_segments(boundary, 0), boundary)


def test_small_instances_join_the_neighbour_with_the_longest_shared_border():
    labels = np.zeros((8, 8), np.int32)
    labels[1:7, 1:7] = 2
    labels[3, 3] = 3                                 # a 1-pixel fragment inside instance 2
    labels[6, 7] = 1                                 # a 1-pixel fragment touching background (2 pairs) and 2 (1)
    merged = merge_small_instances(labels, min_area=2)
    expected = labels.copy()
    expected[3, 3] = 2
    expected[6, 7] = 0
    np.testing.assert_array_equal(merged, expected)
    np.testing.assert_array_equal(merge_small_instances(labels, 0), labels)
    # Everything under the limit: the instance joins the background, which has no small component.
    assert not merge_small_instances(labels, min_area=100).any()


def test_options_are_validated_and_default_to_the_paper():
    assert Robustness().is_paper
    assert not Robustness(min_area=5).is_paper
    with pytest.raises(ValueError, match="high"):
        Robustness(high=0.0)
    with pytest.raises(ValueError, match="min_segment"):
        Robustness(min_segment=-1)
