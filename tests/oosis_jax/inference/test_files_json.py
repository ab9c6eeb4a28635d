"""The prediction files (``oosis_jax.inference.files``): a JSON that would read back as another prediction is
refused by name, and a write that fails leaves none of the image's files (earlier ones included)."""

import json

import numpy as np
import pytest

from oosis_jax.inference import files as prediction_io
from oosis_jax.inference import instances as prediction


def two_instances():
    """Instance 2 occludes instance 1 on a 24x32 background (classes 1 and 3)."""
    inst = np.zeros((24, 32), np.int32)
    inst[4:18, 3:20] = 1
    inst[9:22, 14:29] = 2
    return prediction.assemble(inst, np.eye(4)[np.where(inst == 2, 3, inst)], np.zeros((24, 32)),
                               np.full((24, 32, 4), 0.25))


def test_overlapping_masks_are_refused_naming_both_instances(tmp_path):
    content = prediction_io.prediction_json(two_instances(), ["a", "b", "c"])
    content["instances"][1]["segmentation"] = content["instances"][0]["segmentation"]  # 2 would hide 1
    path = tmp_path / "p.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=f"malformed prediction file {path}.*instances 1 and 2 overlap in 184 pixel"):
        prediction_io.read_prediction_json(path)


@pytest.mark.parametrize("class_names, problem", [
    (["a", "b"], r"instance 2 has class 3, beyond the 2 class names \['a', 'b'\]"),
    ("abc", "class_names must be null or a list of strings, got 'abc'")])
def test_classes_beyond_the_class_names_are_refused(tmp_path, class_names, problem):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**prediction_io.prediction_json(two_instances()), "class_names": class_names}))
    with pytest.raises(ValueError, match=f"malformed prediction file {path}.*{problem}"):
        prediction_io.read_prediction_json(path)
    path.write_text(json.dumps(prediction_io.prediction_json(two_instances())))  # null: any class id >= 1
    assert list(prediction_io.read_prediction_json(path)["classes"]) == [1, 3]


def test_a_failed_write_leaves_none_of_the_image_s_files(tmp_path, monkeypatch):
    from oosis_jax import visualize

    image = np.zeros((24, 32, 3), np.uint8)
    paths = prediction_io.write_prediction(two_instances(), image, tmp_path, "img")
    assert paths == prediction_io.prediction_paths(tmp_path, "img") and all(p.is_file() for p in paths)

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(visualize, "instance_overlay", broken)  # the last picture: the others are new by then
    with pytest.raises(OSError, match="disk full"):
        prediction_io.write_prediction(two_instances(), image, tmp_path, "img")
    assert sorted(tmp_path.iterdir()) == []  # not the earlier JSON beside new pictures, nor a partial file
    monkeypatch.undo()
    prediction_io.write_prediction(two_instances(), image, tmp_path, "img")
    (tmp_path / "other.json").write_text("{}")
    prediction_io.remove_prediction(tmp_path, "img")
    assert [p.name for p in tmp_path.iterdir()] == ["other.json"]
