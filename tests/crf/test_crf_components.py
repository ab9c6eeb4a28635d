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
                                    np.ones((2, 2), float)])
def test_bad_labels_raise(labels):
    with pytest.raises(ValueError):
        instances(labels)
