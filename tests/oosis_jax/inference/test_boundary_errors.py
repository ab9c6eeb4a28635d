"""The diagnosis of predicted boundaries against the ground truth, and its oracle CRF inputs."""

import json

import numpy as np
import pytest

from data import targets
from data.examples import synthetic_scenes
from experiments import boundary_errors as experiment
from oosis_jax.inference import boundary_errors as errors
from oosis_jax.inference.crf_inputs import occlusion_set


def _case():
    gt_boundary = np.zeros((8, 10), bool)
    gt_boundary[4, :] = True
    gt_e = np.zeros((8, 10, 4), np.float32)
    gt_e[4, :, 3] = 1.0  # row 4 occludes the row below
    boundary = np.zeros((8, 10), bool)
    boundary[4, :3] = True  # exact
    boundary[5, 3] = True  # one pixel off
    boundary[0, 0] = True  # spurious
    e = np.zeros((8, 10, 4), np.float32)
    e[4, 0, 3] = e[4, 1, 2] = e[4, 2, 3] = 1.0  # one wrong direction among the exact pixels
    e[5, 3, 3] = e[0, 0, 1] = 1.0
    return boundary, e, gt_boundary, gt_e


def test_pixel_categories_by_distance_to_the_ground_truth():
    boundary, _, gt_boundary, _ = _case()
    masks = errors.pixel_categories(boundary, gt_boundary)
    assert np.argwhere(masks["exact"]).tolist() == [[4, 0], [4, 1], [4, 2]]
    assert np.argwhere(masks["off_by_one"]).tolist() == [[5, 3]]
    assert np.argwhere(masks["spurious"]).tolist() == [[0, 0]]
    assert np.argwhere(masks["missed"]).tolist() == [[4, c] for c in range(5, 10)]


def test_pixel_errors_count_orientation_hits_against_the_nearest_ground_truth_pixel():
    boundary, e, gt_boundary, gt_e = _case()
    b = np.where(boundary, 0.9, 0.0)
    out = errors.pixel_errors(boundary, b, e, gt_boundary, gt_e)
    assert (out["exact"], out["off_by_one"], out["spurious"], out["missed"], out["gt"]) == (3, 1, 1, 5, 10)
    assert out["hits_exact"] == 2 and out["hits_off_by_one"] == 1
    np.testing.assert_allclose(out["b_spurious"], [0.9])


def test_oracle_repairs():
    boundary, e, gt_boundary, gt_e = _case()
    none = errors.oracle_inputs(boundary, e, gt_boundary, gt_e, "none")
    np.testing.assert_array_equal(none, occlusion_set(boundary, e))
    spurious = errors.oracle_inputs(boundary, e, gt_boundary, gt_e, "spurious")
    assert not spurious[0, 0].any() and spurious[4, 0, 3]
    oriented = errors.oracle_inputs(boundary, e, gt_boundary, gt_e, "orientation")
    assert oriented[4, 1, 3] and not oriented[4, 1, 2] and oriented[0, 0, 1]  # spurious pixel kept as it was
    exact = errors.oracle_inputs(boundary, e, gt_boundary, gt_e, "locations+orientation")
    np.testing.assert_array_equal(exact, occlusion_set(gt_boundary, gt_e))
    filled = errors.oracle_inputs(boundary, e, gt_boundary, gt_e, "missed")
    missed = errors.pixel_categories(boundary, gt_boundary)["missed"]
    assert missed.sum() == 5
    np.testing.assert_array_equal(filled, occlusion_set(boundary | missed, np.where(missed[..., None], gt_e, e)))
    assert filled.any(-1)[missed].all()  # every missed pixel now occludes a neighbour


def test_oracle_of_a_real_scene_with_true_locations_and_orientation_is_the_ground_truth_set():
    scene = synthetic_scenes("test", 1, (60, 80))[0]
    gt_boundary, gt_e = targets.boundary_targets(scene["instance_map"], scene["edges"])
    rng = np.random.default_rng(0)
    e = rng.random(gt_e.shape).astype(np.float32)
    occ = errors.oracle_inputs(np.zeros_like(gt_boundary), e, gt_boundary, gt_e, "locations+orientation")
    np.testing.assert_array_equal(occ, targets.occlusion_map(scene["instance_map"], scene["edges"]))


def test_bad_inputs_are_named():
    boundary, e, gt_boundary, gt_e = _case()
    with pytest.raises(ValueError, match="unknown repair"):
        errors.oracle_inputs(boundary, e, gt_boundary, gt_e, "everything")
    with pytest.raises(ValueError, match="shapes differ"):
        errors.pixel_errors(boundary, boundary, e[:, :5], gt_boundary, gt_e)
    with pytest.raises(ValueError, match="bool"):
        errors.oracle_inputs(boundary.astype(np.uint8), e, gt_boundary, gt_e, "none")


def test_experiment_writes_both_tables_and_the_picture(tmp_path):
    experiment.main(["--scenes", "2", "--processes", "1", "--out", str(tmp_path)])
    text = (tmp_path / "table.md").read_text()
    assert "| spurious |" in text and "| locations+orientation |" in text
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert set(rows["oracle"]) == set(errors.REPAIRS)
    assert [r["pixels"] for r in rows["pixels"]] == [*errors.CATEGORIES, "missed"]  # named columns
    assert all(v is None or isinstance(v, (int, float)) for r in rows["pixels"] for k, v in r.items() if k != "pixels")
    assert (tmp_path / "boundaries.png").stat().st_size > 0


def test_experiment_refuses_a_bad_out_split_or_model_before_any_work(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    for argv, message in ((["--out", str(tmp_path / "afile")], "is a file"),
                          (["--out", str(tmp_path / "afile" / "sub")], "is a file"),
                          (["--split", "bogus", "--out", str(tmp_path / "o")], "invalid choice: 'bogus'"),
                          (["--checkpoint", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")],
                           "cannot load --checkpoint")):
        with pytest.raises(SystemExit) as stop:
            experiment.main(["--scenes", "1", *argv])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()  # no folder left by a refused run
