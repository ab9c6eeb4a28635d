"""The keys of the depth and boundary colours say what the pictures show, and the per-image PNGs carry them."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from data import targets
from oosis_jax import visualize
from oosis_jax.inference import files
from oosis_jax.inference import instances as prediction

NAMED = {"cyan": (0, 255, 255), "magenta": (255, 0, 255), "yellow": (255, 255, 0), "black": (0, 0, 0)}


def test_depth_key_nearer_is_brighter():
    assert "each object is brighter than those it occludes (yellow: the top layer)" in visualize.DEPTH_KEY
    assert "darkest (purple) = occludes nothing, not necessarily far; black = background" in visualize.DEPTH_KEY
    rgb = visualize.depth_map_rgb(np.linspace(0, 1, 11)[None].astype(np.float32)).astype(float)[0]
    luminance = rgb @ [0.2126, 0.7152, 0.0722]
    assert (rgb[0] == 0).all() and (np.diff(luminance[1:]) > 0).all()  # background black, then brighter
    assert rgb[-1, 2] < 100 < rgb[-1, 1] and rgb[1, 2] > rgb[1, 1]  # nearest yellow, farthest purple-blue


def test_depth_maps_drawn_together_share_one_scale():
    """Alone, an object that occludes nothing is darkest and one on top of two layers brightest; drawn beside a
    map of three layers, a map of one layer keeps the lowest layer's value rather than taking the top's."""
    inst = np.array([[1, 2, 3]], np.int32)
    chain, flat = (inst, [[3, 2], [2, 1]]), (inst, np.zeros((0, 2), int))
    np.testing.assert_allclose(visualize.relative_depth_map(*chain), [[1 / 3, 2 / 3, 1]])
    np.testing.assert_allclose(visualize.relative_depth_map(*flat), [[1, 1, 1]])
    together = visualize.relative_depth_maps([chain, flat])
    np.testing.assert_allclose(together[0], [[1 / 3, 2 / 3, 1]])
    np.testing.assert_allclose(together[1], [[1 / 3, 1 / 3, 1 / 3]])
    assert visualize.relative_depth_maps([]) == []
    np.testing.assert_array_equal(visualize.relative_depth_maps([(np.zeros((2, 2), np.int32), [])])[0], 0)


def test_boundary_key_names_the_side_of_the_occluded_object():
    for direction, (dy, dx) in (("left", (0, -1)), ("right", (0, 1)), ("top", (-1, 0)), ("bottom", (1, 0))):
        inst = np.full((3, 3), 3, np.int32)  # 3 occludes everything it touches
        inst[1, 1] = 2  # the pixel under test: it occludes only 1, on one side
        inst[1 + dy, 1 + dx] = 1
        b, e = targets.boundary_targets(inst, [[2, 1], [3, 2], [3, 1]])  # the ground truth's own E
        assert b[1, 1] and np.argmax(e[1, 1]) == ["left", "right", "top", "bottom"].index(direction)
        colour = tuple(visualize.oriented_boundary_rgb(b, e)[1, 1])
        name = next(n for n, c in NAMED.items() if c == colour)
        assert f"{name} {direction}" in visualize.BOUNDARY_KEY
    assert "on the occluding object, coloured by the side of the object it occludes" in visualize.BOUNDARY_KEY


def test_prediction_pngs_carry_their_keys(tmp_path):
    inst = np.zeros((24, 32), np.int32)
    inst[4:18, 3:20], inst[9:22, 14:29] = 1, 2
    pred = prediction.assemble(inst, np.eye(4)[np.zeros((24, 32), int)], np.zeros((24, 32)),
                               np.full((24, 32, 4), 0.25))
    _, depth, boundaries, overlay = files.write_prediction(pred, np.zeros((24, 32, 3), np.uint8), tmp_path, "img")
    for path, key in ((depth, visualize.DEPTH_KEY), (boundaries, visualize.BOUNDARY_KEY),
                      (overlay, files.OVERLAY_KEY)):
        with Image.open(path) as im:
            assert im.size == (32, 24) and im.text["Description"] == key  # pixel for pixel with the image


def test_depth_pictures_outline_touching_instances_of_one_layer():
    """Two touching instances of one layer had one colour and no line between them (a row of cars drew as one
    band); with their instance map the depth picture outlines each in white, as the overlay does."""
    inst = np.zeros((6, 8), np.int32)
    inst[1:5, 1:4], inst[1:5, 4:7] = 1, 2
    depth = visualize.relative_depth_map(inst, np.zeros((0, 2), int))
    plain, outlined = visualize.depth_map_rgb(depth), visualize.depth_map_rgb(depth, instance_map=inst)
    assert len({tuple(c) for c in plain[inst > 0]}) == 1
    assert (outlined[:, 3] == 255).all(axis=-1)[1:5].all() and (outlined[:, 4] == 255).all(axis=-1)[1:5].all()
    assert (outlined[2:4, 2] == plain[2:4, 2]).all() and (outlined[inst == 0] == 0).all()
    image = np.full((6, 8, 3), 100, np.uint8)
    np.testing.assert_array_equal(visualize.instance_overlay(image, inst)[..., 0] == 255,
                                  visualize.instance_contours(inst))
    assert not visualize.instance_contours(np.zeros((0, 3), np.int32)).size


def test_labels_sit_on_their_instances_and_only_where_asked():
    inst = np.zeros((40, 90), np.int32)
    inst[2:38, 2:44], inst[2:38, 46:88], inst[0, 89] = 1, 2, 4  # id 3 has no pixel
    rgb = np.full((40, 90, 3), 100, np.uint8)
    before = rgb.copy()
    out = visualize.label_instances(rgb, inst, ["1 car", "", "x", ""])
    np.testing.assert_array_equal(rgb, before)  # not drawn in place
    changed = (out != rgb).any(-1)
    assert changed[inst == 1].any() and not changed[inst == 2].any()  # an empty text: no label
    ys, xs = np.nonzero(changed & (inst == 1))
    assert abs(ys.mean() - 19.5) < 4 and abs(xs.mean() - 22.5) < 6  # centred on the innermost pixel
    assert (out[changed] > 200).all(-1).any() and (out[changed] == 0).all(-1).any()  # white (anti-aliased) on black
    corner = visualize.label_instances(np.zeros((40, 90, 3), np.uint8), inst, ["", "", "", "4"])
    assert (corner != 0).any(-1)[:, 60:].any()  # a one-pixel instance in the corner: its label moved inside
    assert visualize.label_instances(np.zeros((1, 1, 3), np.uint8), np.ones((1, 1), int), ["long text"]).shape \
        == (1, 1, 3)
    # two labels at one place: the first in order is drawn there, the other moves by its height or is left out
    two = np.zeros((40, 90), np.int32)
    two[10:30, 5:85], two[12:28, 40:50] = 1, 2  # 2's innermost pixel lies under 1's label
    both = visualize.label_instances(np.zeros((40, 90, 3), np.uint8), two, ["label one", "label two"], order=[2, 1])
    rows = np.nonzero((both != 0).any(-1).any(1))[0]
    assert rows.max() - rows.min() + 1 > 14  # two boxes one above the other, not one covering the other
    crowded = np.zeros((12, 90), np.int32)
    crowded[:, :45], crowded[:, 45:] = 1, 2  # no room for a second label in 12 rows
    alone = visualize.label_instances(np.zeros((12, 90, 3), np.uint8), crowded, ["first label", "second label"])
    only = visualize.label_instances(np.zeros((12, 90, 3), np.uint8), crowded, ["first label", ""])
    np.testing.assert_array_equal(alone, only)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 3\]"):
        visualize.label_instances(rgb, inst, ["a", "b", "c"])
    with pytest.raises(ValueError, match="rgb must be uint8"):
        visualize.label_instances(rgb.astype(float), inst, ["a"] * 4)


def test_the_overlay_labels_the_confident_instances_by_json_id_class_and_score(tmp_path):
    inst = np.zeros((60, 200), np.int32)
    inst[5:55, 5:95], inst[5:55, 105:195] = 1, 2
    pred = prediction.assemble(inst, np.eye(4)[np.zeros((60, 200), int)], np.zeros((60, 200)),
                               np.full((60, 200, 4), 0.25))
    pred = dataclasses.replace(pred, classes=np.array([2, 3], np.int32), scores=np.array([0.93, 0.2]))
    assert files.overlay_labels(pred, ("car", "person", "star")) == ["1 person 0.93", ""]
    assert files.overlay_labels(pred) == ["1 2 0.93", ""]
    image = np.full((60, 200, 3), 90, np.uint8)
    *_, overlay = files.write_prediction(pred, image, tmp_path, "img", ("car", "person", "star"))
    labelled = np.asarray(Image.open(overlay)) != visualize.instance_overlay(image, inst)
    assert labelled.any(-1)[inst == 1].any() and not labelled.any(-1)[inst == 2].any()
    assert "scoring at least 0.5 labelled with their id in the JSON, class and score" in files.OVERLAY_KEY
