"""The demo's smoke configuration end to end (CI): the shipped model by default, ``--train`` trains the smoke
preset next to it; experiments that reuse the trained checkpoint."""

import json

import numpy as np
import pytest

from experiments import crf_on_gt, demo, instance_quality
from oosis_jax.inference import heads as heads_lib
from helpers.tables import assert_percentages, table_rows


@pytest.fixture(scope="module")
def smoke_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, demo.main(["--config", "smoke", "--train", "--out", str(out)])


def test_demo_smoke_writes_tables_plots_and_panels(smoke_demo):
    out, summary = smoke_demo
    rows = table_rows(out / "results.md")
    assert [r[0] for r in rows] == [demo.SHIPPED_ROW, demo.TRAINED_ROW, demo.MIXED_ROW, demo.GT_ROW,
                                    demo.SHIPPED_ROW, demo.TRAINED_ROW]
    for row in rows:
        assert_percentages(row[1:])
    for name in ("oair_iou.png", "oair_confidence.png", "boundary_pr.png", "scene_00.png", "scene_01.png"):
        assert (out / name).stat().st_size > 1000, name
    assert list((out / "tfds").rglob("*train.array_record*")), "--train trains from a tfds build"
    saved = json.loads((out / "results.json").read_text())
    assert saved["steps"] == 6 and saved["results"]["num_images"] == 3
    assert summary["gt_results"]["weighted_coverage"] > 0.5  # the CRF on ground truth is near exact
    assert summary["results"]["cycle_percent"] == 0.0  # CRF orders are acyclic
    # The shipped model has learnt something; the 6-step network's boundaries are noise.
    assert summary["results"]["boundaries"]["plain"]["AP"] > summary["trained_results"]["boundaries"]["plain"]["AP"]
    # True boundaries on the shipped model's own segmentation give better instances.
    assert summary["mixed_results"]["weighted_coverage"] > summary["results"]["weighted_coverage"]
    assert "evaluated with robustness options min_area=30, ad-hoc scores" in (out / "results.md").read_text()


def test_demo_without_train_uses_only_the_shipped_model_and_resumes_training(smoke_demo, tmp_path):
    summary = demo.main(["--config", "smoke", "--out", str(tmp_path)])
    assert summary["steps"] is None and summary["trained_results"] is None
    assert [r[0] for r in table_rows(tmp_path / "results.md")][:2] == [demo.SHIPPED_ROW, demo.MIXED_ROW]
    assert not (tmp_path / "tfds").exists()
    out, first = smoke_demo
    assert summary["results"]["weighted_coverage"] == first["results"]["weighted_coverage"]
    again = demo.main(["--config", "smoke", "--train", "--out", str(out)])
    assert again["steps"] == 6 and again["train_seconds"] < again["total_seconds"]


def test_demo_configs():
    assert demo.get_config("smoke").train == "smoke"
    assert demo.get_config("cpu").train_config().model.decoder == "unet"
    full = demo.get_config("full").train_config()
    assert full.model.stage_blocks == (3, 4, 6, 3) and full.model.width == 64
    assert full.optimizer == "sgd" and full.augment.crop_size == (225, 225) and full.model.output_stride == 8
    cpu = demo.get_config("cpu").train_config("/tmp/demo_tfds")
    assert cpu.data_dir == "/tmp/demo_tfds" and cpu.eval_split == "validation"
    assert dict(cpu.dataset_config)["num_train"] == cpu.synthetic_scenes
    assert demo.get_config("cpu").train_minutes is not None
    assert (cpu.loss.boundary_loss, cpu.loss.orientation_band) == ("dice++", 1)  # the shipped model's losses
    assert demo.get_config("cpu").train_robustness == "high=0.4,min_segment=5,min_area=30"
    with pytest.raises(ValueError, match="unknown demo config"):
        demo.get_config("huge")


def test_instance_quality_on_the_demo_checkpoint(smoke_demo, tmp_path):
    out, _ = smoke_demo
    rows = instance_quality.main(["--smoke", "--checkpoint", str(out / "train_smoke"), "--out", str(tmp_path)])
    assert [r[0] for r in rows] == ["Joint-Labeling (same score)", "Joint-Labeling (ad-hoc score, Sec. 5.4)"]
    assert rows[0][4] == rows[1][4]  # weighted coverage does not depend on scores
    assert_percentages([c for r in table_rows(tmp_path / "results.md") for c in r[1:]])


def test_instance_quality_adds_the_learned_score_of_the_shipped_model(tmp_path):
    rows = instance_quality.main(["--smoke", "--checkpoint", "synthetic", "--out", str(tmp_path)])
    assert [r[0] for r in rows] == ["Joint-Labeling (same score)", "Joint-Labeling (ad-hoc score, Sec. 5.4)",
                                    "Joint-Labeling (learned score, beyond the paper)"]
    assert rows[0][4] == rows[1][4] == rows[2][4]


def test_crf_on_gt_with_predicted_and_mixed_rows(smoke_demo, tmp_path):
    out, _ = smoke_demo
    results = crf_on_gt.main(["--smoke", "--checkpoint", str(out / "train_smoke"), "--out", str(tmp_path)])
    assert list(results) == [crf_on_gt.PREDICTED_ROW, *crf_on_gt.MIXED_ROWS, crf_on_gt.GT_ROW]
    assert [r[0] for r in table_rows(tmp_path / "results.md")] == list(results)
    wc = {name: r["weighted_coverage"] for name, r in results.items()}
    # A 6-step network's boundaries are noise: ground-truth boundaries and orientations fix most instances.
    assert wc[crf_on_gt.GT_ROW] >= wc[crf_on_gt.PREDICTED_ROW]
    assert wc["Joint-Labeling (predicted segm, GT bndry and orientation)"] > wc[crf_on_gt.PREDICTED_ROW]


def test_mixed_heads_take_only_the_named_heads_from_the_ground_truth():
    predicted = {k: np.full(2, 0.0) for k in "sbe"}
    truth = {k: np.full(2, 1.0) for k in "sbe"}
    mixed = heads_lib.mixed_heads(predicted, truth, ("b", "e"))
    assert mixed["s"] is predicted["s"] and mixed["b"] is truth["b"] and mixed["e"] is truth["e"]
    with pytest.raises(ValueError, match="unknown heads"):
        heads_lib.mixed_heads(predicted, truth, ("o",))
