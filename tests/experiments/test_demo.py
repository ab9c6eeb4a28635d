"""The demo's smoke configuration end to end (CI): the shipped model by default, ``--train`` trains the smoke
preset next to it; experiments that reuse the trained checkpoint."""

import dataclasses
import json
import re
import warnings

import numpy as np
import pytest

from data.examples import synthetic_scenes
from data.registry import info
from experiments import common, crf_on_gt, demo, instance_quality
from oosis_jax.inference import heads as heads_lib
from oosis_jax.inference.augment import Augmentation
from oosis_jax.inference.instances import ground_truth_heads_of
from oosis_jax.training import checkpointing
from oosis_jax.training.configs import get_config
from oosis_jax.training.preemption import Preempted
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
    # the trained network is evaluated with the config's CRF options and views
    text = (out / "results.md").read_text()
    smoke = get_config("smoke").augment
    assert (f"scaled {smoke.scale_range[0]:g}-{smoke.scale_range[1]:g}x, "
            f"{smoke.crop_size[0]}x{smoke.crop_size[1]} crops") in text  # what it was trained on
    # ... and its own joins and score are fitted when its pieces allow (what a 6-step network's pieces allow
    # depends on the scenes and the CPU; `fitted_finish`'s words for each case are tested below)
    assert re.search(r"evaluated with lambda 40, robustness options min_area=30, test-time views none, "
                     r"(connected components|joins) and (ad-hoc|learned) scores (fitted on 2 validation scenes|"
                     r"\(nothing could be fitted\))", text)


class _Fitted:
    def __init__(self, join_model, score_model):
        self.join_model, self.score_model = join_model, score_model


class _Trained:
    """A trained predictor whose fits fail as a barely trained network's do (too few pieces and instances):
    like `Predictor.fit_finish` with ``skip_unfittable``, it leaves out (and warns about) what cannot be fitted."""

    def __init__(self, fits: set):
        self.fits, self.calls = fits, []

    def fit_finish(self, scenes, joins=True, scores=True, progress=True, skip_unfittable=False):
        self.calls.append((len(scenes), joins, scores, skip_unfittable))
        for kind in ("join", "score"):
            if kind not in self.fits:
                warnings.warn(f"no {kind} model fitted: too few pieces")
        return _Fitted("join" if "join" in self.fits else None, "score" if "score" in self.fits else None)


@pytest.mark.parametrize("fits, words", [
    ({"join", "score"}, "joins and learned scores fitted on 2 validation scenes"),
    ({"score"}, "connected components and learned scores fitted on 2 validation scenes"),
    ({"join"}, "joins and ad-hoc scores fitted on 2 validation scenes"),
    (set(), "connected components and ad-hoc scores (nothing could be fitted)")])
def test_the_trained_network_gets_what_can_be_fitted(fits, words, capsys):
    trained = _Trained(fits)
    predictor, said = demo.fitted_finish(trained, demo.get_config("smoke"))
    assert said == words
    if fits:
        assert (predictor.join_model, predictor.score_model) == (
            "join" if "join" in fits else None, "score" if "score" in fits else None)
    else:
        assert predictor is trained
    assert trained.calls == [(2, True, True, True)]  # one prediction pass, whatever fails
    printed = capsys.readouterr().out
    assert all((f"no {kind} model fitted" in printed) == (kind not in fits) for kind in ("join", "score"))
    unfitted = dataclasses.replace(demo.get_config("smoke"), train_fit_scenes=0)
    assert demo.fitted_finish(trained, unfitted) == (trained, "connected components and ad-hoc scores")


def test_demo_without_train_uses_only_the_shipped_model_and_resumes_training(smoke_demo, tmp_path):
    (tmp_path / "scene_03.png").write_bytes(b"a panel of an earlier, larger run")
    summary = demo.main(["--config", "smoke", "--out", str(tmp_path)])
    assert summary["steps"] is None and summary["trained_results"] is None
    assert not (tmp_path / "scene_03.png").exists() and (tmp_path / "scene_00.png").exists()  # no stale panel
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
    assert demo.get_config("cpu").train_minutes is not None and demo.get_config("cpu").train_reserve_steps > 0
    assert (cpu.loss.boundary_loss, cpu.loss.orientation_band) == ("dice++", 1)  # the shipped model's losses
    assert demo.get_config("cpu").train_robustness == "high=0.4,min_segment=5,min_area=30"
    views = Augmentation.parse(demo.get_config("cpu").train_augmentation)
    assert views.scales == (1.0,) and views.flip and views.shift == 1 and not views.view_grid
    assert cpu.augment.scale_range == (0.35, 1.0) and cpu.augment.crop_size == (64, 64)
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


def test_mixed_heads_each_checks_every_example_grid_and_count():
    scenes = synthetic_scenes("test", 2, (24, 32))
    truth = ground_truth_heads_of(scenes, info("synthetic").num_classes)
    own = [{k: np.zeros_like(t[k]) for k in "sbe"} for t in truth]
    mixed = heads_lib.mixed_heads_each(own, truth, ("b",))
    assert all(m["b"] is t["b"] and m["s"] is o["s"] and m["e"] is o["e"] for m, t, o in zip(mixed, truth, own))
    assert all(m is o for m, o in zip(heads_lib.mixed_heads_each(own, truth, ()), own))
    assert all(m is o for m, o in zip(heads_lib.mixed_heads_each(own, None, ()), own))  # truth unread
    own[1] = {k: np.zeros((48, 64) + v.shape[2:], v.dtype) for k, v in own[1].items()}  # a view_grid-style grid
    with pytest.raises(ValueError, match="example 1 lie on a \\(48, 64\\) grid"):
        heads_lib.mixed_heads_each(own, truth, ("b",))
    with pytest.raises(ValueError, match="1 predicted heads for 2 ground truths"):
        heads_lib.mixed_heads_each(own[:1], truth, ("b",))


def test_fitted_steps_fill_the_budget_in_whole_checkpoint_intervals():
    assert common.fitted_steps(0.1, 100.0, cap=10_000, every=100, margin=1.0) == 1000
    assert common.fitted_steps(0.1, 109.0, cap=10_000, every=100, margin=1.0) == 1000  # rounded down
    assert common.fitted_steps(0.1, 100.0, cap=10_000, every=100, margin=0.5) == 500
    assert common.fitted_steps(0.1, 1e6, cap=3000, every=100) == 3000  # at most the preset's steps
    assert common.fitted_steps(10.0, 5.0, cap=3000, every=100) == 100  # at least one interval
    for bad in ((0.0, 10.0, 100, 10), (0.1, -1.0, 100, 10), (0.1, 10.0, 5, 10)):
        with pytest.raises(ValueError, match="seconds_per_step"):
            common.fitted_steps(*bad)


def test_demo_fits_its_training_steps_to_the_budget_and_keeps_the_timed_steps(tmp_path, monkeypatch):
    config = get_config("smoke").replace(num_steps=5000, checkpoint_every=4)
    measure = common.seconds_per_step
    calls = []

    def fixed_step_time(c, workdir, **kwargs):  # the real timed steps, then a known step time for the arithmetic
        calls.append(kwargs)
        assert 0.0 < measure(c, workdir, **kwargs) < 60.0
        return 1.0

    monkeypatch.setattr(common, "seconds_per_step", fixed_step_time)
    workdir = tmp_path / "run"
    fitted, left = common.fitted_to_budget(config, workdir, 1000.0, reserve_steps=400, timed_steps=6)
    # 6 timed steps rounded up to the checkpoint interval, kept as the run's start; the rest of the budget, less
    # the reserve's 400 step times (400 s) and the time the timed steps took, filled with whole checkpoint
    # intervals
    assert calls[0]["steps"] == 8 and calls[0]["warmup"] == 1 and checkpointing.latest_step(str(workdir)) == 8
    assert 500.0 < left <= 600.0 and fitted.num_steps == 8 + int(0.92 * left / 1.0) // 4 * 4
    assert fitted.replace(num_steps=5000) == config and checkpointing.read_config(str(workdir)) == fitted
    assert not (tmp_path / "run.timing").exists()
    # a started run is resumed with its own steps, without timing, keeping the time for the work after training
    assert common.fitted_to_budget(config, workdir, 60.0) == (fitted, 60.0) and len(calls) == 1
    assert common.fitted_to_budget(config, workdir, 60.0, reserve_seconds=25.0) == (fitted, 35.0)
    # training resumes after the timed steps and reaches the fitted length
    short = fitted.replace(num_steps=12)
    checkpointing.write_config(str(workdir), short, replace=True)
    assert common.train_model(short, workdir)[2] == 12
    # the cap holds over the timed steps too; a cap leaving no interval after them, or a folder that is not a
    # run, is refused
    capped, _ = common.fitted_to_budget(config.replace(num_steps=16), tmp_path / "capped", 1e6, timed_steps=6)
    assert capped.num_steps == 16
    # a reserve in seconds larger than the reserve's step times is kept instead
    _, left = common.fitted_to_budget(config, tmp_path / "seconds", 1000.0, reserve_steps=400, timed_steps=6,
                                    reserve_seconds=700.0)
    assert 200.0 < left <= 300.0
    with pytest.raises(ValueError, match="leaves no checkpoint interval"):
        common.fitted_to_budget(config.replace(num_steps=10), tmp_path / "short", 60.0, timed_steps=6)
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="holds files but no run config"):
        common.fitted_to_budget(config, tmp_path / "stray", 60.0)


def test_demo_flags_are_checked_before_any_work(tmp_path, capsys):
    # --processes -3 ran (the smoke config replaced it by 1 unread); an --out that is a file failed late
    (tmp_path / "file").write_text("x")
    for args, message in ((["--processes", "-3"], "must be >= 1"), (["--out", str(tmp_path / "file")], "not a folder")):
        with pytest.raises(SystemExit):
            demo.main(["--config", "smoke"] + args)
        assert message in capsys.readouterr().err


def test_an_interrupted_demo_says_so_in_one_line_and_an_unusable_out_is_refused(tmp_path, monkeypatch, capsys):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run", interrupted)
    with pytest.raises(SystemExit) as stop:
        demo.main(["--config", "smoke", "--out", str(tmp_path / "out")])
    assert stop.value.code == 130 and "demo: interrupted; " in capsys.readouterr().err

    def preempted(*args):
        raise Preempted(7, str(tmp_path / "out" / "train_cpu"))

    monkeypatch.setattr(demo, "run", preempted)
    with pytest.raises(SystemExit) as stop:
        demo.main(["--config", "smoke", "--out", str(tmp_path / "out")])
    assert stop.value.code == 143 and "after saving step 7; the same command resumes" in capsys.readouterr().err
    monkeypatch.setattr(demo, "run", lambda *args: (_ for _ in ()).throw(Preempted(7, str(tmp_path / "t.timing"))))
    with pytest.raises(SystemExit) as stop:
        demo.main(["--config", "smoke", "--out", str(tmp_path / "out")])
    assert stop.value.code == 143 and "while timing the training's first steps" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit) as stop:
        demo.main(["--config", "smoke", "--out", str(tmp_path / "a_file" / "sub")])
    assert stop.value.code == 2
