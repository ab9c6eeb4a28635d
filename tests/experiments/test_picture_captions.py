"""The experiments' panels say what their colours mean (keys of depth, boundary and error colours)."""

from types import SimpleNamespace

import numpy as np
import pytest

from data import synthetic, targets
from experiments import boundary_errors, demo, render_scenes
from oosis_jax import visualize
from oosis_jax.inference import boundary_errors as errors


@pytest.fixture
def panels(monkeypatch):
    """The arguments of every `visualize.save_panel` call (nothing written)."""
    calls = []

    def save(path, images, titles, **kwargs):
        calls.append(SimpleNamespace(images=list(images), titles=list(titles), **kwargs))
        return str(path)

    monkeypatch.setattr(visualize, "save_panel", save)
    return calls


def test_scene_panels_carry_the_depth_and_boundary_keys(tmp_path, panels):
    scene = synthetic.make_scene(5, 48, 64)
    b, e = targets.boundary_targets(scene["instance_map"], scene["edges"])
    pred = SimpleNamespace(instance_map=scene["instance_map"], edges=scene["edges"], classes=scene["classes"],
                           b=b.astype(np.float32), e=np.where(b[..., None], e, 0.25).astype(np.float32))
    demo.draw_scene(tmp_path / "demo.png", scene, pred, "shipped model")
    render_scenes.render_scene(5, 48, 64, str(tmp_path / "scene.png"))
    assert len(panels) == 2
    for call in panels:
        assert visualize.DEPTH_KEY in call.caption and visualize.BOUNDARY_KEY in call.caption
    assert [t for t in panels[0].titles if t.startswith("shipped model: ")] == [
        f"shipped model: relative depth ({len(scene['classes'])} inst.)", "shipped model: oriented boundaries (NMS)",
        "shipped model: instances"]
    predicted_depth, true_depth = panels[0].images[1:3]
    np.testing.assert_array_equal(predicted_depth, true_depth)  # the same order: the same colours
    # a prediction without edges is one layer: at the ground truth's scale the lowest layer's colour, not the top's
    flat = SimpleNamespace(**{**vars(pred), "edges": np.zeros((0, 2), np.int32)})
    demo.draw_scene(tmp_path / "flat.png", scene, flat, "x")
    inside = (scene["instance_map"] > 0) & ~visualize.instance_contours(scene["instance_map"])  # outlines are white
    layers = targets.order_labels(scene["instance_map"], scene["edges"])
    lowest = true_depth[inside & (layers == 1)][0]
    assert layers.max() > 1
    assert (panels[-1].images[1][inside] == lowest).all()


def test_boundary_error_picture_names_its_colours(tmp_path, panels):
    truth = np.zeros((20, 30), bool)
    truth[5, 2:28] = truth[10:18, 15] = True
    predicted = np.zeros_like(truth)
    predicted[5, 2:10] = predicted[6, 10:28] = True  # exact, then one row off; the vertical line missed
    predicted[15, 2:8] = True  # spurious
    scene = {"image": np.zeros((20, 30, 3), np.uint8)}
    boundary_errors.picture([scene], [predicted], [(truth, None)], tmp_path / "errors.png")
    (call,) = panels
    title, canvas = call.titles[1], call.images[1]
    reference = {"green": (0, 160, 0), "orange": (255, 165, 0), "red": (255, 0, 0), "blue": (0, 0, 255)}
    for category, mask in errors.pixel_categories(predicted, truth).items():
        assert mask.any(), category
        colour = canvas[mask][0].astype(float)
        name = min(reference, key=lambda n: np.linalg.norm(colour - reference[n]))
        assert f"{name} {category.replace('_', ' ')}" in title


def test_render_scenes_can_write_the_plain_images_to_predict_on(tmp_path):
    from PIL import Image

    render_scenes.main(["--num", "2", "--first-seed", "3", "--height", "40", "--width", "48",
                        "--out", str(tmp_path / "panels"), "--images", str(tmp_path / "images")])
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["scene_0003.png", "scene_0004.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "images" / "scene_0004.png")),
                                  synthetic.make_scene(4, 40, 48)["image"])
    assert (tmp_path / "panels" / "scene_0004.png").exists()
    render_scenes.main(["--num", "1", "--out", str(tmp_path / "panels"), "--images", str(tmp_path / "default")])
    # by default the shipped model's scene size, so that predict --images shows what the demo shows
    assert np.asarray(Image.open(tmp_path / "default" / "scene_0001.png")).shape == (120, 160, 3)


def test_render_scenes_refuses_images_into_its_panel_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        render_scenes.main(["--num", "1", "--out", str(tmp_path), "--images", str(tmp_path)])
    assert "must be another folder than --out" in capsys.readouterr().err
