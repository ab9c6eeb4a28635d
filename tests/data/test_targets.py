"""Ground-truth targets: hand-built scenes with known O, B, E and order labels, properties, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from data import targets

L, R, T, BOT = 0, 1, 2, 3


def test_single_object_touching_border():
    # Instance 1 fills the left two columns of the top two rows; it touches the top and left border.
    inst = np.array([[1, 1, 0],
                     [1, 1, 0],
                     [0, 0, 0]], np.int32)
    occ = targets.occlusion_map(inst, np.zeros((0, 2), int))
    expected = np.zeros((3, 3, 4), bool)
    expected[0, 1, R] = expected[1, 1, R] = True  # right neighbours are background
    expected[1, 0, BOT] = expected[1, 1, BOT] = True  # bottom neighbours are background
    np.testing.assert_array_equal(occ, expected)  # nothing points outside the image
    b, e = targets.boundary_targets(inst, [])
    np.testing.assert_array_equal(b, expected.any(-1))
    np.testing.assert_allclose(e[1, 1], [0, 0.5, 0, 0.5])  # the corner pixel occludes two directions
    np.testing.assert_allclose(e[0, 1], [0, 1, 0, 0])
    assert e.dtype == np.float32 and not e[0, 0].any()
    np.testing.assert_array_equal(targets.order_labels(inst, []), (inst > 0).astype(np.int32))


def test_enclosing_object_and_pixel_occluding_two_directions():
    # Instance 2 sits inside the hole of ring 1 and is nearer: (2, 1). Instance 3 lies behind the ring: (1, 3).
    inst = np.array([[1, 1, 1, 3],
                     [1, 2, 1, 3],
                     [1, 1, 1, 3]], np.int32)
    edges = np.array([[2, 1], [1, 3]])
    occ = targets.occlusion_map(inst, edges)
    np.testing.assert_array_equal(occ[1, 1], [True, True, True, True])  # enclosed pixel occludes all around
    np.testing.assert_array_equal(occ[0, 1], [False, False, False, False])  # ring pixel next to 2 and border
    np.testing.assert_array_equal(occ[0, 2], [False, True, False, False])  # ring occludes 3 on its right
    np.testing.assert_array_equal(occ[:, 3].any(-1), [False, False, False])  # 3 occludes nothing
    b, e = targets.boundary_targets(inst, edges)
    np.testing.assert_array_equal(b, [[0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0]])
    np.testing.assert_allclose(e[1, 1], [0.25] * 4)
    labels = targets.order_labels(inst, edges)
    np.testing.assert_array_equal(labels, [[2, 2, 2, 1], [2, 3, 2, 1], [2, 2, 2, 1]])


def test_enclosed_object_behind_the_ring():
    inst = np.array([[1, 1, 1],
                     [1, 2, 1],
                     [1, 1, 1]], np.int32)
    occ = targets.occlusion_map(inst, [[1, 2]])
    expected = np.zeros((3, 3, 4), bool)
    expected[1, 0, R] = expected[1, 2, L] = expected[0, 1, BOT] = expected[2, 1, T] = True
    np.testing.assert_array_equal(occ, expected)
    b, e = targets.boundary_targets(inst, [[1, 2]])
    assert b.sum() == 4 and not b[1, 1]
    np.testing.assert_array_equal(targets.order_labels(inst, [[1, 2]]), np.where(inst == 1, 2, 1))


def test_pixel_occluding_left_and_top():
    # Instance 1 (nearest) at the bottom right; 2 to its left, 3 above it; both occluded by 1.
    inst = np.array([[3, 3],
                     [2, 1]], np.int32)
    b, e = targets.boundary_targets(inst, [[1, 2], [1, 3], [3, 2]])
    np.testing.assert_allclose(e[1, 1], [0.5, 0, 0.5, 0])  # the supplement's example
    np.testing.assert_allclose(e[0, 0], [0, 0, 0, 1])  # 3 occludes 2 below it
    assert not b[1, 0]
    np.testing.assert_array_equal(targets.order_labels(inst, [[1, 2], [1, 3], [3, 2]]), [[2, 2], [1, 3]])


def test_order_labels_follow_non_adjacent_chain():
    # 1 -> 2 -> 3 -> 4 plus a shortcut 1 -> 4: the longest chain sets the labels.
    inst = np.array([[1, 2, 3, 4, 0]], np.int32)
    labels = targets.order_labels(inst, [[1, 2], [2, 3], [3, 4], [1, 4]])
    np.testing.assert_array_equal(labels, [[4, 3, 2, 1, 0]])
    assert labels.dtype == np.int32


def test_cycle_names_its_instances():
    inst = np.array([[1, 2, 3, 4, 5]], np.int32)
    edges = [[1, 2], [2, 3], [3, 1], [4, 1], [5, 4]]  # 4 and 5 only lead into the cycle
    with pytest.raises(ValueError, match=r"cycle through instances \[1, 2, 3\]"):
        targets.order_labels(inst, edges)
    targets.occlusion_map(inst, edges)  # O itself is well defined with a cycle


def test_semantic_map_and_touching_pairs():
    inst = np.array([[0, 1, 2], [3, 3, 2]], np.int32)
    sem = targets.semantic_map(inst, [4, 1, 4])
    np.testing.assert_array_equal(sem, [[0, 4, 1], [4, 4, 1]])
    assert sem.dtype == np.int32
    np.testing.assert_array_equal(targets.touching_pairs(inst), [[1, 2], [1, 3], [2, 3]])
    assert targets.touching_pairs(np.zeros((2, 2), np.int32)).shape == (0, 2)


@pytest.mark.parametrize("inst, edges, message", [
    (np.zeros((2, 2), np.float32), [], "integer"),
    (np.zeros((2, 2), bool), [], "integer"),
    (np.zeros((2, 2, 1), np.int32), [], "2-D"),
    (np.zeros((0, 3), np.int32), [], "empty"),
    (np.array([[-1, 1]]), [], "negative"),
    (np.array([[1, 2]]), [[1, 3]], r"instances \[3\]"),
    (np.array([[1, 2]]), [[0, 2]], r"ids \[0\]"),
    (np.array([[1, 2]]), [[1, -2]], r"ids \[-2\]"),
    (np.array([[1, 2]]), [[1, 2, 3]], r"\(M, 2\)"),
    (np.array([[1, 2]]), [[1.0, 2.0]], "integer"),
    (np.array([[1, 2]]), [[2, 2]], "self-occlusion"),
    (np.array([[1, 2**63 + 5]], np.uint64), [], r"above 2\*\*63"),
])
def test_bad_input_raises(inst, edges, message):
    for fn in (targets.occlusion_map, targets.boundary_targets, targets.order_labels):
        with pytest.raises(ValueError, match=message):
            fn(inst, edges)


def test_semantic_map_bad_classes():
    inst = np.array([[1, 2]])
    with pytest.raises(ValueError, match="only 1 entries"):
        targets.semantic_map(inst, [1])
    with pytest.raises(ValueError, match=">= 1"):
        targets.semantic_map(inst, [1, 0])
    with pytest.raises(ValueError, match="integer"):
        targets.semantic_map(inst, [1.0, 2.0])


# ----------------------------------------------------------------------------- properties (hypothesis)

@st.composite
def scenes(draw, acyclic=False):
    """A small random instance map with random edges among its (touching or not) instances."""
    h = draw(st.integers(1, 7))
    w = draw(st.integers(1, 7))
    inst = draw(arrays(np.int32, (h, w), elements=st.integers(0, 5)))
    ids = np.unique(inst[inst > 0]).tolist()
    pairs = [(a, b) for a in ids for b in ids if a != b and (not acyclic or a < b)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True) if pairs else st.just([]))
    return inst, np.array(edges, np.int64).reshape(-1, 2)


def _brute_force_occ(inst, edges):
    h, w = inst.shape
    edge_set = {tuple(e) for e in edges.tolist()}
    occ = np.zeros((h, w, 4), bool)
    for y in range(h):
        for x in range(w):
            for d, (dy, dx) in enumerate(targets.OFFSETS):
                qy, qx = y + dy, x + dx
                if 0 <= qy < h and 0 <= qx < w:
                    a, b = int(inst[y, x]), int(inst[qy, qx])
                    occ[y, x, d] = a > 0 and a != b and (b == 0 or (a, b) in edge_set)
    return occ


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_occlusion_map_matches_definition(scene):
    inst, edges = scene
    np.testing.assert_array_equal(targets.occlusion_map(inst, edges), _brute_force_occ(inst, edges))


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_boundary_targets_properties(scene):
    inst, edges = scene
    occ = _brute_force_occ(inst, edges)
    b, e = targets.boundary_targets(inst, edges)
    np.testing.assert_array_equal(b, occ.any(-1))  # B = occludes any neighbour
    np.testing.assert_allclose(e.sum(-1), b.astype(np.float32), atol=1e-6)  # rows sum to 1 on B, 0 elsewhere
    np.testing.assert_array_equal(e > 0, occ)  # E is supported exactly on the occluded directions


@settings(max_examples=150, deadline=None)
@given(scenes(acyclic=True))
def test_order_labels_properties(scene):
    inst, edges = scene
    labels = targets.order_labels(inst, edges)
    assert (labels[inst == 0] == 0).all()
    for k in np.unique(inst[inst > 0]):
        values = np.unique(labels[inst == k])
        assert len(values) == 1  # constant on an instance
        occludees = edges[edges[:, 0] == k, 1]
        below = [labels[inst == j][0] for j in occludees]
        assert values[0] == 1 + max(below, default=0)  # Sec. 5.1 exactly
    occ = targets.occlusion_map(inst, edges)
    for d, (dy, dx) in enumerate(targets.OFFSETS):  # every occluding pixel pair has x_p > x_q (Eq. 7)
        ys, xs = np.nonzero(occ[..., d])
        assert (labels[ys, xs] > labels[ys + dy, xs + dx]).all()


def test_touching_pairs_refuse_ids_their_int32_rows_cannot_hold():
    np.testing.assert_array_equal(targets.touching_pairs(np.array([[2**31 - 2, 2**31 - 1]])),
                                  [[2**31 - 2, 2**31 - 1]])
    with pytest.raises(ValueError, match="int32"):
        targets.touching_pairs(np.array([[2**40, 2**40 + 1]]))


def test_sparse_large_ids():
    inst = np.array([[90210, 7, 0], [90210, 7, 3]], np.int64)
    edges = [[7, 90210], [3, 7]]
    occ = targets.occlusion_map(inst, edges)
    dense = targets.occlusion_map(np.array([[3, 2, 0], [3, 2, 1]]), [[2, 3], [1, 2]])
    np.testing.assert_array_equal(occ, dense)
    labels = targets.order_labels(inst, edges)
    np.testing.assert_array_equal(labels, [[1, 2, 0], [1, 2, 3]])


def test_order_labels_of_sparse_ids_use_tables_of_the_instances_and_name_the_ids():
    inst = np.array([[0, 90_210, 90_210], [7, 7, 2**40]])  # a table of the largest id: 1 TiB
    np.testing.assert_array_equal(targets.order_labels(inst, [[90_210, 7], [2**40, 90_210]]),
                                  [[0, 2, 2], [1, 1, 3]])
    assert targets.occlusion_map(inst, [[2**40, 90_210]])[1, 2, 2]  # 2**40 occludes the pixel above it
    with pytest.raises(ValueError, match=r"cycle through instances \[7, 90210\]"):
        targets.order_labels(inst, [[90_210, 7], [7, 90_210]])


def test_timedelta_maps_are_refused():
    with pytest.raises(ValueError):
        targets.occlusion_map(np.zeros((3, 3), "m8[s]"), np.zeros((0, 2), int))
