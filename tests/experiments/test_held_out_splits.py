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
