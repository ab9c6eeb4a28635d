"""Pictures: relative depth map (Fig. 1), the boundary colour scheme (Fig. 4), overlays and panels."""

import numpy as np
import pytest
from PIL import Image

from data.synthetic import make_scene
from oosis_jax import visualize
from data import targets

RING = np.array([[1, 1, 1, 3],
                 [1, 2, 1, 3],
                 [1, 1, 1, 3],
                 [0, 0, 0, 0]], np.int32)
RING_EDGES = np.array([[2, 1], [1, 3]])


def test_relative_depth_map_hand_scene():
    depth = visualize.relative_depth_map(RING, RING_EDGES)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth[1], [2 / 3, 1, 2 / 3, 1 / 3])
    assert (depth[3] == 0).all()
    assert (visualize.relative_depth_map(np.zeros((3, 4), np.int32), []) == 0).all()


def test_relative_depth_map_orders_synthetic_scene():
    scene = make_scene(4, 96, 160)
    depth = visualize.relative_depth_map(scene["instance_map"], scene["edges"])
    value = {k: depth[scene["instance_map"] == k][0] for k in range(1, len(scene["classes"]) + 1)}
    assert all(value[a] > value[b] for a, b in scene["edges"])
    assert depth.min() == 0 and depth.max() == 1
    rgb = visualize.depth_map_rgb(depth)
    assert rgb.dtype == np.uint8 and rgb.shape == (96, 160, 3)
    assert (rgb[scene["instance_map"] == 0] == 0).all() and (rgb[scene["instance_map"] > 0].max(-1) > 0).all()


def test_cyclic_edges_raise():
    with pytest.raises(ValueError, match="cycle"):
        visualize.relative_depth_map(RING, [[1, 2], [2, 1]])


def test_oriented_boundary_colour_scheme():
    b = np.array([[1.0, 1.0, 1.0, 1.0, 0.0, 0.5, 1.0]])
    e = np.zeros((1, 7, 4))
    e[0, 0, 0] = e[0, 1, 2] = e[0, 2, 1] = e[0, 3, 3] = e[0, 5, 0] = 1  # left, top, right, bottom, -, half left
    e[0, 6, [0, 2]] = 0.5  # occludes left and top (supplement Sec. 1.3 example)
    rgb = visualize.oriented_boundary_rgb(b, e)
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, :5], [[0, 255, 255], [255, 255, 0], [255, 0, 255], [0, 0, 0],
                                               [255, 255, 255]])
    np.testing.assert_allclose(rgb[0, 5], [128, 255, 255], atol=1)
    np.testing.assert_allclose(rgb[0, 6], [128, 255, 128], atol=1)


def test_oriented_boundary_of_targets():
    b, e = targets.boundary_targets(RING, RING_EDGES)
    rgb = visualize.oriented_boundary_rgb(b, e)
    assert (rgb[~b] == 255).all()
    np.testing.assert_array_equal(rgb[0, 2], [255, 0, 255])  # ring occludes 3 on its right: magenta
    np.testing.assert_array_equal(rgb[2, 0], [0, 0, 0])  # ring occludes background below: black


@pytest.mark.parametrize("b, e, message", [
    (np.ones((2, 2)), np.ones((2, 3, 4)) / 4, r"\(H, W, 4\)"),
    (np.full((2, 2), 1.5), np.ones((2, 2, 4)) / 4, r"\[0, 1\]"),
    (np.full((2, 2), np.nan), np.ones((2, 2, 4)) / 4, "finite"),
    (np.ones((2, 2)), np.zeros((2, 2, 4)), "summing to 1"),
    (np.ones((2, 2)), np.ones((2, 2, 4)) / 4 - [0.5, 0, 0, 0.5], "summing to 1|>= 0"),
])
def test_oriented_boundary_bad_input(b, e, message):
    with pytest.raises(ValueError, match=message):
        visualize.oriented_boundary_rgb(b, e)


def test_instance_overlay():
    image = np.full((4, 4, 3), 100, np.uint8)
    out = visualize.instance_overlay(image, RING, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[3, :2], image[3, :2])  # background away from the instances
    assert (out[1, 1] != 100).any() and (out[0, 2] == 255).all()  # colour inside, white contour
    colours = visualize.instance_colours(3)
    assert len({tuple(c) for c in colours}) == 4
    with pytest.raises(ValueError, match="uint8"):
        visualize.instance_overlay(image.astype(np.float32), RING)
    with pytest.raises(ValueError, match="shape"):
        visualize.instance_overlay(image, RING[:3])


def _tiles_at(png, tile) -> list[tuple[int, int]]:
    """(row, column) offsets where the uint8 (h, w, 3) ``tile`` appears pixel for pixel in the PNG array."""
    h, w = tile.shape[:2]
    ys, xs = np.nonzero((png[:png.shape[0] - h + 1, :png.shape[1] - w + 1] == tile[0, 0]).all(-1))
    return [(y, x) for y, x in zip(ys, xs) if (png[y:y + h, x:x + w] == tile).all()]


def test_save_panel_draws_every_image_pixel_once(tmp_path):
    # tight_layout shrank each tile by 1-3 pixels: a 120x160 checkerboard came out 118x158, 1-pixel lines gone
    yy, xx = np.mgrid[:120, :160]
    checker = ((yy + xx) % 2).astype(np.float64)  # a map, shown in grey
    lines = np.full((120, 160, 3), 255, np.uint8)
    lines[::7], lines[:, ::5] = 0, (255, 0, 0)
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    titles = ["checkerboard", "one-pixel lines with a title too long for its tile, wrapped to it", "noise"]
    out = visualize.save_panel(tmp_path / "p.png", [checker, lines, noise], titles, ncols=2)
    png = np.asarray(Image.open(out).convert("RGB"))
    grey = np.repeat((checker * 255).astype(np.uint8)[..., None], 3, -1)
    first, second, third = (_tiles_at(png, tile) for tile in (grey, lines, noise))
    assert len(second) == 1 and len(third) == 1 and second[0][1] > first[0][1] + 160  # found where they belong
    assert third[0][0] > first[0][0] + 120 and third[0][1] == first[0][1]
    # the long title wrapped: nothing drawn in the middle of the gap between the columns, nor on the borders
    middle = (first[0][1] + 160 + second[0][1]) // 2
    assert (png[:, middle] == 255).all() and (png[[0, -1]] == 255).all() and (png[:, [0, -1]] == 255).all()


def test_save_panel_sizes(tmp_path):
    path = tmp_path / "sub" / "panel.png"
    images = [np.zeros((20, 40, 3), np.uint8), np.linspace(0, 1, 800).reshape(20, 40)]
    with Image.open(visualize.save_panel(path, images, ["rgb", "map"])) as im:
        assert im.format == "PNG" and im.size[0] == 2 * (40 + 20)  # native: 40 px per tile + 20 px apart
        plain = np.asarray(im.convert("RGB"))
    with Image.open(visualize.save_panel(path, images, ["rgb", "map"], caption="a key\nof two lines")) as im:
        captioned = np.asarray(im.convert("RGB"))
    assert (captioned[:len(plain)] == plain).all() and (captioned[len(plain):] < 128).any()  # written below
    rgb = np.random.default_rng(1).integers(0, 256, (20, 40, 3), dtype=np.uint8)
    with Image.open(visualize.save_panel(path, [rgb, rgb], ["a", "b"], ncols=1, tile_inches=2.0)) as im:
        png = np.asarray(im.convert("RGB"))
    assert png.shape[1] == 220  # one column of 2-inch tiles at 100 dpi
    enlarged = np.asarray(Image.fromarray(rgb).resize((200, 100), Image.Resampling.NEAREST))
    assert len(_tiles_at(png, enlarged)) == 2
    with pytest.raises(ValueError, match="one title per image"):
        visualize.save_panel(path, images, ["only one"])


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 8, 4), np.uint8), r"the image 'bad' must be \(H, W\) or \(H, W, 3\), got shape \(8, 8, 4\)"),
    (np.zeros((0, 8, 3), np.uint8), "the image 'bad' is empty"),
    (np.zeros((8, 8, 3), np.int16), r"the image 'bad' must be uint8 or float in \[0, 1\], got int16"),
    (np.full((8, 8, 3), 1.5), r"the image 'bad' must be float in \[0, 1\]"),
    (np.full((8, 8), np.nan), "the map 'bad' has non-finite values"),
    (np.zeros((8, 8), bool), r"the map 'bad' must be float in \[0, 1\], got bool"),
])
def test_save_panel_names_a_bad_image(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        visualize.save_panel(tmp_path / "p.png", [np.zeros((8, 8, 3), np.uint8), bad], ["ok", "bad"])
    assert not (tmp_path / "p.png").exists()


def test_images_of_several_sizes_each_sit_on_a_tile_of_the_largest(tmp_path):
    """A dataset's photos differ in size (COCOA: 640x480 next to 480x640): each is drawn once, at its own
    size, at the top left of a white tile as high and wide as the largest."""
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((12, 20, 3), (20, 12, 3), (8, 8, 3))]
    png = np.asarray(Image.open(visualize.save_panel(tmp_path / "p.png", images, ["a", "b", "c"])).convert("RGB"))
    spots = [_tiles_at(png, image) for image in images]
    assert [len(s) for s in spots] == [1, 1, 1]
    (ya, xa), (yb, xb), (yc, xc) = (s[0] for s in spots)
    assert ya == yb == yc and xb - xa == xc - xb == 20 + 20  # tiles 20 px wide, 20 px apart
    assert (png[ya + 12:ya + 20, xa:xa + 20] == 255).all()  # under the wide image: its tile's white


def test_float_pictures_are_drawn_as_their_uint8(tmp_path):
    rgb = np.random.default_rng(2).random((10, 12, 3))
    png = np.asarray(Image.open(visualize.save_panel(tmp_path / "p.png", [rgb], ["x"])).convert("RGB"))
    assert len(_tiles_at(png, np.round(rgb * 255).astype(np.uint8))) == 1


def test_picture_functions_refuse_empty_images_and_label_maps():
    with pytest.raises(ValueError, match="empty"):  # an IndexError from np.unique's empty result before
        visualize.instance_overlay(np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.int32))
    for labels in (np.ones((3, 3), np.int32), np.ones((3, 3), bool)):  # in [0, 1], but not a depth map
        with pytest.raises(ValueError, match="float relative depth map"):
            visualize.depth_map_rgb(labels)


def test_save_panel_returns_the_file_written_and_refuses_maps_it_would_clip(tmp_path):
    rgb = np.zeros((40, 40, 3), np.uint8)
    out = visualize.save_panel(tmp_path / "no_suffix", [rgb], ["x"])  # matplotlib adds .png
    assert out.endswith("no_suffix.png") and Image.open(out).format == "PNG"
    for bad in (np.full((40, 40), 200, np.uint8), np.linspace(-1, 2, 1600).reshape(40, 40)):
        with pytest.raises(ValueError, match="the map 'depth' must be float in \\[0, 1\\]"):
            visualize.save_panel(tmp_path / "p.png", [rgb, bad], ["x", "depth"])


def test_instance_outlines_are_drawn_on_every_side():
    # the outline used to be drawn only where the next pixel to the right or below differed: right and bottom
    inst = np.zeros((7, 7), np.int32)
    inst[2:5, 2:5] = 1
    out = visualize.instance_overlay(np.full((7, 7, 3), 100, np.uint8), inst)
    white = (out == 255).all(-1)
    ring = (inst > 0) & ~np.pad(np.ones((1, 1), bool), 3)  # the object's pixels but its centre
    np.testing.assert_array_equal(white, ring)


def test_instance_colours_are_far_apart_and_sparse_ids_cost_no_memory():
    from scipy.spatial.distance import pdist

    colours = visualize.instance_colours(510).astype(float)
    assert (colours[0] == 0).all()
    # golden-ratio hues at one saturation gave two of 256 instances colours 2 apart (ids 2 and 235)
    assert pdist(colours[1:]).min() >= 36 and pdist(colours[1:21]).min() >= 100
    for others, apart in ((colours[1:], 36), (colours[1:21], 100)):  # from black background and white outlines
        assert np.linalg.norm(others, axis=1).min() >= apart and np.linalg.norm(others - 255, axis=1).min() >= apart
    inst = np.array([[0, 4_000_000], [7, 7]], np.int64)  # a table of the largest id took 484 MB here
    np.testing.assert_array_equal(visualize.instance_overlay(np.zeros((2, 2, 3), np.uint8), inst),
                                  visualize.instance_overlay(np.zeros((2, 2, 3), np.uint8), np.array([[0, 2], [1, 1]])))
    np.testing.assert_array_equal(visualize.relative_depth_map(inst, [[4_000_000, 7]]), [[0, 1], [0.5, 0.5]])


def test_an_instance_too_thin_for_an_outline_keeps_its_colour():
    inst = np.zeros((6, 6), np.int32)
    inst[1:5, 2:4] = 1  # 2 pixels wide: every pixel touches the background
    inst[0, 0] = 2
    out = visualize.instance_overlay(np.full((6, 6, 3), 100, np.uint8), inst)
    assert not (out == 255).all(-1).any() and (out[inst > 0] != 100).any(-1).all()
