"""Every experiment reads the registry's held-out split by default, so ``--dataset cocoa`` (train and
validation only) works everywhere; checked on a fixture COCOA build."""

import pytest

from experiments import (boundary_losses, boundary_models, common, crf_on_gt, direct_training, evaluate, flags,
                         instance_quality, jump_vs_expansion, lambda_sweep, oair_baselines, predict, upsampling)

NO_TRAINING = (crf_on_gt, jump_vs_expansion, lambda_sweep, oair_baselines)
TRAINING = (boundary_losses, boundary_models, direct_training, instance_quality, upsampling)


def test_default_split_of_cocoa_is_validation(cocoa_build, tmp_path):
    args = flags.parser("test", "held_out").parse_args(["--dataset", "cocoa", "--data-dir", cocoa_build,
                                                        "--out", str(tmp_path), "--limit", "2"])
    s = flags.setup(args)
    assert s.split == "validation"
    examples = common.held_out_examples(s)
    assert len(examples) == 2 and all(x["image"].ndim == 3 for x in examples)


@pytest.mark.parametrize("experiment", NO_TRAINING, ids=lambda m: m.__name__.split(".")[-1])
def test_experiments_run_on_cocoa_held_out(experiment, cocoa_build, tmp_path):
    experiment.main(["--smoke", "--dataset", "cocoa", "--data-dir", cocoa_build, "--out", str(tmp_path)])
    assert "dataset: cocoa" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize("experiment", TRAINING, ids=lambda m: m.__name__.split(".")[-1])
def test_training_experiments_take_split_and_data_dir(experiment, monkeypatch, cocoa_build, tmp_path):
    """The training experiments parse the same flags; their held-out data is loaded before training starts,
    so stopping at training shows the split resolved and readable."""
    seen = {}

    def stop(s, *args, **kwargs):
        seen["examples"] = common.held_out_examples(s)
        raise StopIteration

    monkeypatch.setattr(common, "train_config", stop)
    with pytest.raises(StopIteration):
        experiment.main(["--smoke", "--dataset", "cocoa", "--data-dir", cocoa_build, "--out", str(tmp_path)])
    assert len(seen["examples"]) == 3


@pytest.mark.parametrize("script", (evaluate, predict), ids=("evaluate", "predict"))
def test_gt_entry_points_default_to_cocoa_validation(script, cocoa_build, tmp_path):
    script.main(["--gt", "--dataset", "cocoa", "--data-dir", cocoa_build, "--out", str(tmp_path),
                 "--processes", "1"])
    assert any(tmp_path.iterdir())


def test_a_smoke_training_uses_the_dataset_it_reports(tmp_path):
    """--smoke --dataset cocoa trained the smoke preset on synthetic scenes (5 classes) under a report that said
    cocoa (80 classes)."""
    s = flags.Setup("cocoa", True, tmp_path, "/data/tfds", 4, 1, "validation")
    config = common.train_config(s, num_steps=3)
    assert (config.dataset, config.data_dir, config.model.num_classes, config.num_steps) == ("cocoa", "/data/tfds",
                                                                                          80, 3)
    assert common.train_config(flags.Setup("synthetic", True, tmp_path, "", 4, 1, "test")).dataset == "synthetic"


def test_a_bad_split_or_an_unbuilt_dataset_is_one_line_before_any_training(tmp_path, capsys):
    for argv, message in ((["--split", "bogus"], "synthetic scenes have no split 'bogus'"),
                          (["--dataset", "cocoa", "--data-dir", str(tmp_path / "none")], "is not built in")):
        with pytest.raises(SystemExit) as stop:
            instance_quality.main(["--smoke", "--out", str(tmp_path / "out"), *argv])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
