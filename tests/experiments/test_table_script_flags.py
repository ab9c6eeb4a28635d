"""The table scripts' flags: a bad ``--checkpoint`` is one line before any work, flags a mode ignores are refused,
noise values are checked when parsed, and the noisy-depth baseline appears only where depths are known."""

import json
import re

import numpy as np
import pytest
from helpers.cli import usage_error

from experiments import (common, crf_on_gt, direct_training, flags, instance_quality, jump_vs_expansion, lambda_sweep,
                         oair_baselines)

SCRIPTS = (crf_on_gt, direct_training, instance_quality, jump_vs_expansion, lambda_sweep, oair_baselines)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_a_missing_checkpoint_is_one_line_before_any_work(script, tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the scene data was read before the checkpoint was loaded")

    monkeypatch.setattr(common, "held_out_examples", no_work)
    monkeypatch.setattr(direct_training, "train_direct", no_work)
    missing = str(tmp_path / "nowhere")
    with pytest.raises(SystemExit) as exit_:
        script.main(["--smoke", "--checkpoint", missing, "--out", str(tmp_path / "out")])
    name = script.__name__.rsplit(".", 1)[-1]
    assert str(exit_.value).startswith(f"{name}: cannot load --checkpoint {missing}: ")


@pytest.mark.parametrize("script, argv, message", [
    (jump_vs_expansion, ["--processes", "2"], "--processes does not apply with jump_vs_expansion"),
    (instance_quality, ["--checkpoint", "synthetic", "--steps", "5"], "--steps does not apply with --checkpoint"),
    (instance_quality, ["--checkpoint", "synthetic", "--train-minutes", "1"],
     "--train-minutes does not apply with --checkpoint"),
    (instance_quality, ["--steps", "5"], "--steps does not apply with --smoke, which trains 2 steps itself"),
    (direct_training, ["--train-minutes", "1"], "--train-minutes does not apply with --smoke"),
    (lambda_sweep, ["--noise", "nan"], "argument --noise: must be a number >= 0, got nan"),
    (oair_baselines, ["--depth-noise", "-1"], "argument --depth-noise: must be"),
    (oair_baselines, ["--vote-noise", "inf"], "argument --vote-noise: must be"),
])
def test_flags_a_run_would_ignore_or_reject_late_are_parse_errors(script, argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        script.main(["--smoke", "--out", str(tmp_path)] + argv)
    assert message in capsys.readouterr().err


def test_the_noisy_depth_baseline_needs_known_depths():
    example = common.held_out_examples(flags.Setup("synthetic", True, None, "", 1, 1, "test"))[0]
    unknown = {**example, "depths": np.full(len(example["depths"]), np.nan)}  # as KINS / COCOA examples
    without = {k: v for k, v in example.items() if k != "depths"}
    assert oair_baselines.has_depths([example]) and oair_baselines.has_depths([unknown, example])
    assert not oair_baselines.has_depths([unknown]) and not oair_baselines.has_depths([without])
    masks = oair_baselines.ordered(example["instance_map"], example["classes"], np.ones(len(example["classes"])),
                                   example["edges"])
    heads = {"b": np.zeros(example["instance_map"].shape), "e": np.full(example["instance_map"].shape + (4,), 0.25)}
    names = set(oair_baselines.baseline_orderings(masks, unknown, heads, None, seed=0))
    assert not any(n.startswith("noisy depth") for n in names) and "bottom-y nearer" in names


def test_instance_quality_trains_its_own_model_without_a_checkpoint(tmp_path):
    rows = instance_quality.main(["--smoke", "--limit", "2", "--out", str(tmp_path)])
    assert [r[0] for r in rows] == ["Joint-Labeling (same score)", "Joint-Labeling (ad-hoc score, Sec. 5.4)"]
    assert "Model trained here: 2 steps" in (tmp_path / "results.md").read_text()


def test_a_smoke_run_shows_its_bars_on_a_real_dataset_only(tmp_path):
    """--smoke on the synthetic scenes is seconds (CI's logs stay quiet); on KINS or COCOA its 4 images at full
    size took an early network's fragments 4 minutes of CRF with nothing on screen."""
    for dataset, smoke, shown in (("synthetic", True, False), ("synthetic", False, True), ("cocoa", True, True),
                                  ("kins", True, True)):
        assert flags.Setup(dataset, smoke, tmp_path, "", 4, 1, "test").progress is shown


def test_a_training_that_cannot_go_on_is_one_line_naming_the_script(tmp_path):
    """A full run into the --out of an earlier --smoke run (its train/ folder holds another config) was a
    traceback."""
    from oosis_jax.training.configs import get_config

    workdir = tmp_path / "train"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps(get_config("smoke").replace(base_lr=0.5).to_dict()))
    (workdir / "checkpoints" / "3").mkdir(parents=True)  # a step saved under that config
    (workdir / "checkpoints" / "3" / "x").write_text("")
    with usage_error(r"^boundary_losses: training in .*train: ValueError: .* holds a different configuration"):
        common.train_model(get_config("smoke"), workdir, program="boundary_losses")


def test_a_training_asks_for_one_jax_device_per_core_first(tmp_path, monkeypatch):
    """The table scripts trained on one JAX CPU device while ``experiments.train`` split each batch over the
    cores (1.1-1.5x faster on 2 cores): `common.train_model` asks for the devices before the loop runs."""
    from oosis_jax import devices
    from oosis_jax.training import loop
    from oosis_jax.training.configs import get_config

    calls = []
    monkeypatch.setattr(devices, "use_cpu_cores", lambda batch_size: calls.append(("devices", batch_size)))

    def train(config, workdir, **_):
        calls.append(("train", config.batch_size))
        raise ValueError("stop here")

    monkeypatch.setattr(loop, "train", train)
    with usage_error("^boundary_losses: training in"):
        common.train_model(get_config("smoke").replace(batch_size=6), tmp_path / "run", program="boundary_losses")
    assert calls == [("devices", 6), ("train", 6)]


def test_a_preemption_notice_while_training_is_one_line_and_status_143(tmp_path, monkeypatch, capsys):
    """A SIGTERM while a table script trained was the loop's Preempted traceback and exit status 1."""
    from oosis_jax.training import loop
    from oosis_jax.training.configs import get_config
    from oosis_jax.training.preemption import Preempted

    def train(config, workdir, **_):
        raise Preempted(40, workdir)

    monkeypatch.setattr(loop, "train", train)
    with pytest.raises(SystemExit) as stopped:
        common.train_model(get_config("smoke"), tmp_path / "run", program="upsampling")
    assert stopped.value.code == 143
    err = capsys.readouterr().err
    assert re.search(r"^upsampling: .*run: stopped by a preemption notice .* step 40; the same command resumes",
                     err.strip()), err


def test_setup_caps_a_smoke_run_and_names_its_script(tmp_path):
    def setup(*argv):
        return flags.setup(flags.parser("x", "lambda_sweep").parse_args(["--out", str(tmp_path), *argv]))

    smoke, full = setup("--smoke", "--limit", "10"), setup("--limit", "10")
    assert (smoke.limit, smoke.processes, smoke.program) == (4, 1, "lambda_sweep")
    assert (full.limit, full.processes, full.split) == (10, None, "test")
    assert setup("--smoke", "--processes", "2").processes == 2
