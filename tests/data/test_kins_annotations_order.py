"""The order/painting rules shared by the KINS and COCOA readers (``data.annotations_order``)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.annotation_files import box_mask

from data import annotations_order as order

SHAPE = (6, 9)


def test_mask_relations_follow_visible_amodal_overlap():
    visible = [box_mask(SHAPE, 0, 6, 0, 3), box_mask(SHAPE, 0, 6, 3, 6), box_mask(SHAPE, 0, 6, 6, 9)]
    amodal = [box_mask(SHAPE, 0, 6, 0, 5), visible[1], visible[2]]  # 0 extends behind 1; 1 and 2 just touch
    assert order.mask_relations(visible, amodal) == {(1, 0): (order.DERIVED, 12)}
    assert order.touching_masks(visible) == [(0, 1), (1, 2)]


def test_unrelated_overlap_keeps_the_smaller_object_visible():
    big, small = box_mask(SHAPE, 0, 6, 0, 9), box_mask(SHAPE, 2, 4, 2, 4)
    for masks, small_id in (([big, small], 2), ([small, big], 1)):
        instance_map, kept, edges = order.compose(SHAPE, masks, {}, ["a", "b"], image_id=1)
        assert (instance_map[2:4, 2:4] == small_id).all() and kept.tolist() == [0, 1] and edges.shape == (0, 2)


def test_equal_strength_cycle_drops_the_smallest_pair_and_reports_it():
    relations = {(0, 1): (order.ANNOTATED, 0), (1, 2): (order.ANNOTATED, 0), (2, 0): (order.ANNOTATED, 0)}
    with pytest.warns(order.OcclusionCycleWarning, match="image 5: occlusion cycle a -> b -> c -> a; dropping the "
                      r"weakest relation a occludes b \(strength \(1, 0\)\)"):
        kept = order.break_cycles(3, relations, ["a", "b", "c"], image_id=5)
    assert set(kept) == {(1, 2), (2, 0)}


def test_edges_only_between_touching_instances_and_no_transitive_edges():
    visible = [box_mask(SHAPE, 0, 6, 0, 3), box_mask(SHAPE, 0, 6, 3, 6), box_mask(SHAPE, 0, 6, 6, 9)]
    relations = {(0, 1): (order.ANNOTATED, 0), (1, 2): (order.ANNOTATED, 0), (0, 2): (order.ANNOTATED, 0)}
    instance_map, _, edges = order.compose(SHAPE, visible, relations, ["a", "b", "c"], image_id=1)
    assert edges.tolist() == [[1, 2], [2, 3]]  # 0 and 2 do not touch: their relation gives no edge
    assert np.unique(instance_map).tolist() == [1, 2, 3]


def test_compose_rejects_masks_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"image 3: visible masks must be bool \(6, 9\)"):
        order.compose(SHAPE, [np.zeros((6, 8), bool)], {}, ["a"], image_id=3)


def test_empty_and_painted_over_objects_vanish_with_their_relations():
    front, hidden, outside = box_mask(SHAPE, 0, 6, 0, 9), box_mask(SHAPE, 1, 3, 1, 3), np.zeros(SHAPE, bool)
    relations = {(0, 1): (order.DERIVED, 4), (2, 0): (order.DERIVED, 0)}
    with pytest.warns(order.EmptyMaskWarning, match=r"image 1: object\(s\) \['c'\] have an empty visible mask"):
        instance_map, kept, edges = order.compose(SHAPE, [front, hidden, outside], relations, "abc", image_id=1)
    assert kept.tolist() == [0] and (instance_map == 1).all() and edges.shape == (0, 2)


def test_a_cycle_through_an_empty_object_costs_no_relation_between_drawn_ones():
    left, right, outside = box_mask(SHAPE, 0, 6, 0, 4), box_mask(SHAPE, 0, 6, 4, 9), np.zeros(SHAPE, bool)
    relations = {(0, 1): (order.ANNOTATED, 0), (1, 2): (order.ANNOTATED, 0), (2, 0): (order.ANNOTATED, 0)}
    with pytest.warns(order.EmptyMaskWarning):  # and no OcclusionCycleWarning: the cycle went with 'c'
        _, kept, edges = order.compose(SHAPE, [left, right, outside], relations, "abc", image_id=1)
    assert kept.tolist() == [0, 1] and edges.tolist() == [[1, 2]]
