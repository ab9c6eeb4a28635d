"""Splitting instances where the semantic class changes (``Robustness.class_split``, beyond the paper)."""

import numpy as np
import pytest

import crf
from helpers.crf_problems import fail_solve_on_width
from oosis_jax.inference.class_split import merge_small_pieces, split_by_class
from oosis_jax.inference.instances import label_heads
from oosis_jax.inference.robustness import Robustness


def one_hot(classes, num_classes=3):
    return np.eye(num_classes + 1, dtype=np.float32)[classes]


def two_touching_objects():
    """One CRF instance (label 1) over a class-1 block (columns 1-3) and a class-2 block (columns 4-6); the
    oriented boundary says the right block occludes the left one."""
    labels = np.zeros((6, 8), np.int64)
    labels[1:5, 1:7] = 1
    classes = np.zeros((6, 8), np.int64)
    classes[1:5, 1:4], classes[1:5, 4:7] = 1, 2
    b, e = np.zeros((6, 8)), np.zeros((6, 8, 4))
    b[1:5, 4], e[1:5, 4, 0] = 1.0, 1.0   # right block's left column occludes its left neighbour
    return labels, one_hot(classes), b, e


def test_touching_objects_of_different_classes_come_apart_ordered_by_the_oriented_boundary():
    labels, s, b, e = two_touching_objects()
    split = split_by_class(labels, s, b, e, min_piece=4)
    instance_map, edges = crf.instances(split)
    assert instance_map.max() == 2
    left, right = instance_map[2, 2], instance_map[2, 5]
    np.testing.assert_array_equal(edges, [[right, left]])
    np.testing.assert_array_equal(split == 0, labels == 0)
    e_flipped = np.zeros_like(e)
    e_flipped[1:5, 3, 1] = 1.0           # now the left block's right column occludes the right block
    instance_map, edges = crf.instances(split_by_class(labels, s, e_flipped.max(-1), e_flipped, 4))
    np.testing.assert_array_equal(edges, [[instance_map[2, 2], instance_map[2, 5]]])


def test_pieces_below_min_piece_join_their_instance_and_one_class_instances_are_untouched():
    labels, s, b, e = two_touching_objects()
    whole = split_by_class(labels, s, b, e, min_piece=13)    # both pieces have 12 pixels: they merge
    np.testing.assert_array_equal(crf.instances(whole)[0], crf.instances(labels)[0])
    one_class = one_hot(np.where(labels > 0, 3, 0))
    np.testing.assert_array_equal(crf.instances(split_by_class(labels, one_class, b, e, 1))[0],
                                  crf.instances(labels)[0])


def test_labels_of_different_instances_keep_their_order():
    labels, s, b, e = two_touching_objects()
    labels[1:5, 7] = 2                   # an instance in front of the right block
    labels[0, 1:7] = 0
    classes = np.argmax(s, -1)
    classes[1:5, 7] = 3
    split = split_by_class(labels, one_hot(classes), b, e, min_piece=4)
    instance_map, edges = crf.instances(split)
    front, right, left = instance_map[2, 7], instance_map[2, 5], instance_map[2, 2]
    assert {tuple(x) for x in edges.tolist()} == {(front, right), (right, left)}


def test_small_pieces_merge_smallest_first_into_the_sibling_with_the_longest_border():
    pieces = np.array([[1, 1, 1, 2],
                       [1, 1, 3, 2],
                       [4, 4, 3, 2]])
    parent = np.array([0, 1, 1, 1, 7])   # piece 4 belongs to another instance: never a target
    into = merge_small_pieces(pieces, parent, min_piece=3)
    # piece 3 (2 px) shares 2 pairs with 1 and 2 with 2: tie -> lower id 1; piece 4 has no sibling and stays.
    np.testing.assert_array_equal(into, [0, 1, 2, 1, 4])
    np.testing.assert_array_equal(merge_small_pieces(pieces, parent, min_piece=1), np.arange(5))


def test_label_heads_applies_the_split_and_rejects_bad_settings():
    labels, s, b, e = two_touching_objects()
    heads = [{"s": s, "b": b.astype(np.float32), "e": e.astype(np.float32)}]
    plain = label_heads(heads, processes=1, progress=False)[0]
    split = label_heads(heads, processes=1, progress=False, robustness=Robustness(class_split=4))[0]
    assert len(plain.classes) == 1 and sorted(split.classes.tolist()) == [1, 2]
    assert len(split.edges) == 1
    assert Robustness.parse("class_split=60").class_split == 60
    with pytest.raises(ValueError, match="class_split"):
        Robustness(class_split=-1)
    with pytest.raises(ValueError, match="min_piece"):
        split_by_class(labels, s, b, e, min_piece=0)
    with pytest.raises(ValueError, match="s must be"):
        split_by_class(labels, s[:3], b, e, min_piece=1)


def test_a_crf_failure_keeps_the_other_images_finished(monkeypatch):
    fail_solve_on_width(monkeypatch, 9)
    labels, s, b, e = two_touching_objects()
    good = {"s": s, "b": b.astype(np.float32), "e": e.astype(np.float32)}
    bad = {k: np.concatenate([v, v[:, :1]], axis=1) for k, v in good.items()}
    with pytest.raises(crf.BatchError, match="1 of 2 items failed") as info:
        label_heads([good, bad], processes=1, progress=False, robustness=Robustness(class_split=4))
    kept, failed = info.value.results
    assert failed is None and sorted(kept.classes.tolist()) == [1, 2]  # the split applied to the kept image
