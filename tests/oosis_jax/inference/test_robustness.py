"""CRF-side robustness options (beyond the paper): linking, short pieces, small instances, the graph's reach."""

import numpy as np
import pytest

from oosis_jax.inference.instances import finish
from oosis_jax.inference.robustness import (Robustness, drop_short_segments, hysteresis_boundaries,
                                             merge_small_instances)


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
    assert Robustness() == Robustness(high=None, min_segment=0, min_foreground=0.0, min_support=0.0, min_area=0)
    with pytest.raises(ValueError, match="high"):
        Robustness(high=0.0)
    with pytest.raises(ValueError, match="min_segment"):
        Robustness(min_segment=-1)


def test_unsupported_instances_join_their_neighbour_and_enclosed_ones_stay():
    from oosis_jax.inference.robustness import merge_unsupported_instances

    labels = np.zeros((8, 10), np.int32)
    labels[1:7, 1:5] = 1    # enclosed by O on every side: stays
    labels[1:7, 5:9] = 2    # a texture cut: no O around it, merges
    occ = np.zeros((8, 10, 4), bool)
    occ[1:7, 1, 0] = occ[1:7, 4, 1] = occ[1, 1:5, 2] = occ[6, 1:5, 3] = True  # instance 1 occludes around
    merged = merge_unsupported_instances(labels, occ, min_support=0.5)
    assert set(np.unique(merged[1:7, 1:5])) == {1}
    # Instance 2 shares 6 supported pairs with 1 (O of 1 points into it) but 14 unsupported with background.
    assert not merged[1:7, 5:9].any()
    np.testing.assert_array_equal(merge_unsupported_instances(labels, occ, 0.0), labels)
    assert (merge_unsupported_instances(labels, occ, 0.2) == labels).all()  # 6 of 20 pairs = 30 % >= 20 %


def test_min_foreground_drops_occluders_the_segmentation_calls_background():
    from oosis_jax.inference.crf_inputs import predicted_crf_inputs

    s = np.zeros((6, 8, 2))
    s[..., 0] = 1.0                      # everything background ...
    s[:, :4] = [0.1, 0.9]                # ... but the left half
    b = np.zeros((6, 8))
    b[:, 3] = b[:, 6] = 0.9              # a boundary in the foreground half and one in the background half
    e = np.zeros((6, 8, 4))
    e[..., 1] = 1.0                      # both occlude their right neighbour
    _, occ = predicted_crf_inputs(s, b, e)
    assert occ[:, 3, 1].all() and occ[:, 6, 1].all()
    _, occ = predicted_crf_inputs(s, b, e, robustness=Robustness(min_foreground=0.5))
    assert occ[:, 3, 1].all() and not occ[:, 6].any()


def test_options_parse_from_text():
    assert Robustness.parse("paper") == Robustness()
    assert Robustness.parse("high=0.4,min_segment=5,min_area=30") == Robustness(high=0.4, min_segment=5,
                                                                               min_area=30)
    with pytest.raises(ValueError, match="KEY one of"):
        Robustness.parse("min_size=3")
    with pytest.raises(ValueError, match="min_area=x"):
        Robustness.parse("min_area=x")


def test_low_replaces_the_papers_threshold_plain_or_as_the_weak_one_of_hysteresis():
    from oosis_jax.inference.crf_inputs import predicted_boundary

    b = np.zeros((7, 9))
    b[3, :] = [0.9, 0.5, 0.3, 0.15, 0.5, 0.9, 0.2, 0.35, 0.05]  # one horizontal ridge, NMS keeps it
    b[2, :] = b[4, :] = b[3, :] / 3
    sigma = np.zeros_like(b)
    np.testing.assert_array_equal(predicted_boundary(b, sigma)[3], b[3] >= 0.1)
    np.testing.assert_array_equal(predicted_boundary(b, sigma, robustness=Robustness(low=0.3))[3], b[3] >= 0.3)
    linked = predicted_boundary(b, sigma, robustness=Robustness(low=0.3, high=0.8))[3]
    np.testing.assert_array_equal(linked, [True, True, True, False, True, True, False, False, False])
    assert Robustness.parse("low=0.4,high=0.8") == Robustness(low=0.4, high=0.8)
    with pytest.raises(ValueError, match="low must not exceed high"):
        Robustness(low=0.5, high=0.4)
    with pytest.raises(ValueError, match="low must lie"):
        Robustness(low=0.0)


@pytest.mark.parametrize("options", [Robustness(), Robustness(high=0.4, min_segment=5, min_area=30),
                                     Robustness(low=0.2, high=0.6, min_foreground=0.3, min_support=0.5),
                                     Robustness(min_area=10, class_split=60, link_gap=1)])
def test_to_text_is_the_inverse_of_parse(options):
    assert Robustness.parse(options.to_text()) == options
    assert Robustness().to_text() == "paper"


def test_link_gap_reaches_the_predictions_graph():
    labels = np.zeros((6, 9), np.int32)  # objects 3 and 2 apart by a one-pixel seam of label 1
    labels[1:5, 1:4], labels[1:5, 4], labels[1:5, 5:8] = 3, 1, 2
    heads = {"s": np.full(labels.shape + (3,), 1 / 3, np.float32), "b": np.zeros(labels.shape, np.float32),
             "e": np.full(labels.shape + (4,), 0.25, np.float32)}
    occ = np.zeros(labels.shape + (4,), bool)
    assert finish(labels, occ, heads, Robustness()).edges.tolist() == [[1, 2], [3, 2]]
    assert finish(labels, occ, heads, Robustness(link_gap=1)).edges.tolist() == [[1, 2], [1, 3], [3, 2]]
    with pytest.raises(ValueError, match="link_gap"):
        Robustness(link_gap=-1)


def test_text_forms_round_trip_and_repeated_keys_are_refused():
    from oosis_jax.inference.augment import Augmentation

    # JSON's 10.0 for an int option and a scale with more than 6 digits used to write text parse could not
    # read, or read as another value (the model card's "Reproduce" command)
    for options in (Robustness(min_area=10.0, high=0.4), Robustness(low=0.05, high=0.3, link_gap=2)):
        assert Robustness.parse(options.to_text()) == options
    views = Augmentation(scales=(1.2345678, 2.0), flip=True, shift=1, view_grid=True, max_pixels=307200.0)
    assert views.to_text() == "scales=1.2345678:2,flip,shift=1,view_grid,max_pixels=307200"
    assert Augmentation.parse(views.to_text()) == views
    with pytest.raises(ValueError, match="min_area is given twice"):
        Robustness.parse("min_area=5,min_area=30")
    with pytest.raises(ValueError, match="shift is given twice"):
        Augmentation.parse("scales=2,shift=1,shift=2")


def test_min_area_holds_after_the_labelling_comes_back_from_the_views_grid():
    # resampling from the views' grid (2x per side) to the image's used to leave instances of one image pixel
    # where min_area asked for 8 cells of the views' grid, i.e. 2 image pixels
    from oosis_jax.inference.augment import resample_labels
    from oosis_jax.inference.instances import finish

    labels = np.full((8, 8), 2, np.int32)
    labels[:3, :3] = 1  # 9 cells: kept by min_area=8 on the views' grid; its half-covered pixels go to label 2
    sampled = resample_labels(labels, (4, 4))
    assert (sampled == 1).sum() == 1  # a speck on the image's grid
    heads = {"s": np.full((8, 8, 3), 1 / 3, np.float32), "b": np.zeros((8, 8), np.float32),
             "e": np.full((8, 8, 4), 0.25, np.float32)}
    prediction = finish(labels, np.zeros((8, 8, 4), bool), heads, Robustness(min_area=8), shape=(4, 4))
    assert prediction.instance_map.shape == (4, 4)
    areas = np.bincount(prediction.instance_map.ravel())[1:]
    assert len(areas) == 1 and areas.min() >= 2
