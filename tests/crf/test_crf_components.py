"""crf.instances: connected components of equal labels and their (acyclic) occlusion graph."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from crf import instances

labelings = arrays(np.int64, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 3))


def _is_acyclic(num_nodes, edges):
    """Kahn's topological sort succeeds exactly on acyclic graphs."""
    indegree = np.bincount(edges[:, 1], minlength=num_nodes + 1) if len(edges) else np.zeros(num_nodes + 1, int)
    ready = [k for k in range(1, num_nodes + 1) if indegree[k] == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for b in edges[edges[:, 0] == node, 1]:
            indegree[b] -= 1
            if indegree[b] == 0:
                ready.append(b)
    return seen == num_nodes


@settings(max_examples=150, deadline=None)
@given(labelings)
def test_components_and_edges(labels):
    instance_map, edges = instances(labels)
    assert instance_map.dtype == np.int32 and edges.dtype == np.int32 and edges.shape[1:] == (2,)
    np.testing.assert_array_equal(instance_map == 0, labels == 0)
    count = instance_map.max()
    assert set(np.unique(instance_map[instance_map > 0])) == set(range(1, count + 1))
    # Same partition as scipy's 4-connected labelling of each label value.
    expected_count = 0
    for value in np.unique(labels[labels > 0]):
        comps, n = ndimage.label(labels == value)
        expected_count += n
        for k in range(1, n + 1):
            assert len(np.unique(instance_map[comps == k])) == 1
    assert count == expected_count
    # Edges: exactly the touching pairs with a larger label first; unique, sorted, acyclic.
    expected = set()
    for a_map, b_map in ((instance_map[:, 1:], instance_map[:, :-1]), (instance_map[1:], instance_map[:-1])):
        for a, b in zip(a_map.ravel(), b_map.ravel()):
            if a and b and a != b:
                la, lb = labels[instance_map == a][0], labels[instance_map == b][0]
                expected.add((a, b) if la > lb else (b, a))
    assert [tuple(e) for e in edges] == sorted(expected)
    assert _is_acyclic(count, edges)


def test_equal_labels_apart_are_distinct_instances():
    labels = np.array([[2, 0, 2], [1, 1, 1]])
    instance_map, edges = instances(labels)
    np.testing.assert_array_equal(instance_map, [[1, 0, 2], [3, 3, 3]])
    np.testing.assert_array_equal(edges, [[1, 3], [2, 3]])


@pytest.mark.parametrize("labels", [np.zeros((3,), int), np.zeros((0, 3), int), -np.ones((2, 2), int),
                                    np.ones((2, 2), float), np.array([[2**63, 1]], np.uint64)])
def test_bad_labels_raise(labels):
    with pytest.raises(ValueError, match="labels must"):
        instances(labels)


def seam_labels():
    """Objects 3 (left) and 2 (right) apart by a one-pixel seam of label 1 down column 4, on background."""
    labels = np.zeros((6, 9), np.int32)
    labels[1:5, 1:4] = 3
    labels[1:5, 4] = 1
    labels[1:5, 5:8] = 2
    return labels


def test_a_gap_joins_instances_across_a_seam_by_their_labels():
    labels = seam_labels()
    assert instances(labels)[1].tolist() == [[1, 2], [3, 2]]  # ids 1 = left, 2 = seam, 3 = right: no path 1-3
    assert instances(labels, 1)[1].tolist() == [[1, 2], [1, 3], [3, 2]]
    labels[1:5, 5:8] = 3  # the same label on both sides: no order between them, so no edge
    assert instances(labels, 1)[1].tolist() == [[1, 2], [3, 2]]
    wide = np.zeros((6, 10), np.int32)  # the same with a two-pixel seam
    wide[1:5, 1:4], wide[1:5, 4:6], wide[1:5, 6:9] = 3, 1, 2
    assert [1, 3] not in instances(wide, 1)[1].tolist()
    assert [1, 3] in instances(wide, 2)[1].tolist()
    assert instances(wide[1:2, :3], 12)[1].tolist() == []  # a reach wider than the image
    for gap in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="gap"):
            instances(wide, gap)


def test_a_gap_reaches_across_vertical_and_diagonal_seams():
    labels = seam_labels().T.copy()  # the seam now runs along a row
    assert instances(labels, 1)[1].tolist() == [[1, 2], [1, 3], [3, 2]]
    diagonal = np.array([[3, 3, 1, 0],
                         [3, 1, 0, 2],
                         [1, 0, 2, 2]], np.int32)  # 3 and 2 apart by a diagonal band (1 and background)
    instance_map, edges = instances(diagonal)
    left, right = instance_map[0, 0], instance_map[2, 3]
    assert [left, right] not in edges.tolist()
    assert [left, right] not in instances(diagonal, 1)[1].tolist()  # nearest pixels 2.24 px apart
    assert [left, right] in instances(diagonal, 2)[1].tolist()


def test_a_gap_wider_than_the_image_reaches_every_pixel_pair_at_once():
    labels = np.arange(20, dtype=np.int32).reshape(4, 5) % 3
    np.testing.assert_array_equal(instances(labels, 10**6)[1], instances(labels, 6)[1])  # 6 > the diagonal


@pytest.mark.parametrize("gap", [0, 1, 2, 4])
@pytest.mark.parametrize("blocks", [1, 3])
def test_a_gap_joins_exactly_the_instances_within_reach(gap, blocks):
    """Against a brute-force search over all pixel pairs; blocks of 3x3 pixels give instances with inner pixels,
    which the search over borders (gap > 0) skips."""
    rng = np.random.default_rng(gap)
    for _ in range(10):
        coarse = rng.integers(0, 4, (12 // blocks, 14 // blocks))
        labels = np.kron(coarse, np.ones((blocks, blocks), int)).astype(np.int32)
        instance_map, edges = instances(labels, gap)
        np.testing.assert_array_equal(instance_map, instances(labels)[0])
        points = np.argwhere(instance_map > 0)
        want = set()
        for p in points:
            for q in points:
                a, b = instance_map[tuple(p)], instance_map[tuple(q)]
                if a != b and labels[tuple(p)] > labels[tuple(q)] and ((p - q) ** 2).sum() <= (gap + 1) ** 2:
                    want.add((int(a), int(b)))
        assert set(map(tuple, edges.tolist())) == want
