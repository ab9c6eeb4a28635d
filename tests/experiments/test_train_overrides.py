"""``experiments.train --set`` (issue 13): overrides typed by the ``TrainConfig`` fields through the one
KEY=VALUE parser of ``experiments.flags``, with one-line errors naming the pair."""

import argparse
import os

import pytest

from experiments import train as train_cli


def _config(*pairs):
    args = argparse.Namespace(config="smoke", set=list(pairs), dataset=None, bf16=False, data_dir=None,
                              pretrained=None)
    return train_cli.build_config(args)


def test_overrides_are_typed_by_the_config_fields():
    config = _config("num_steps=20", "base_lr=1e-3", "num_epochs=3", "synthetic_size=(32, 48)",
                     "eval_examples=None", "name=123")
    assert (config.num_steps, config.base_lr, config.num_epochs) == (20, 0.001, 3.0)
    assert isinstance(config.num_epochs, float) and config.name == "123"
    assert config.synthetic_size == (32, 48) and config.eval_examples is None
    config = _config("data_dir=/x", "dataset_config=(('num_train', 4),)")
    assert config.data_dir == "/x" and config.dataset_config == (("num_train", 4),)


@pytest.mark.parametrize("pair, message", [
    ("base_lr=nan", r"--set base_lr=nan: base_lr must be a finite number$"),
    ("base_lr=-inf", r"--set base_lr=-inf: base_lr must be a finite number$"),
    ("base_lr=Infinity", r"--set base_lr=Infinity: base_lr must be a finite number$"),
    ("base_lr=1e999", "base_lr must be a finite number"),
    ("base_lr=fast", r"base_lr expects float, got 'fast'"),
    ("num_steps=nan", r"num_steps expects int \| None, got 'nan'"),
    ("num_steps=abc", r"num_steps expects int \| None, got 'abc'"),
    ("num_steps=2.5", r"num_steps expects int \| None"),
    ("batch_size=True", "batch_size expects int"),
    ("synthetic_size=(32, 'a')", r"synthetic_size expects tuple\[int, int\]"),
    ("learning_rate=0.1", "unknown config field 'learning_rate'"),
    ("model=None", "model is a nested ModelConfig"),
    ("num_steps", r"--set expected KEY=VALUE, got 'num_steps'"),
    ("eval_examples=0", "eval_examples must be >= 1 or None"), ("eval_examples=-3", "eval_examples must be"),
    ("eval_batch_size=0", "eval_batch_size must be >= 1"), ("loader_threads=-3", "loader_threads must be >= 1"),
    ("loader_processes=-1", "loader_processes must be >= 0"),
    ("synthetic_size=(0, 0)", r"synthetic_size must be \(height, width\) with both >= 8"),
    ("model.stage_blocks=(1.5, 1, 1, 1)", "stage_blocks must be whole numbers"),
    ("base_lr=-1", "base_lr must be >= 0"), ("weight_decay=-1", "weight_decay must be >= 0"),
    ("lr_power=-2", "lr_power must be >= 0"), ("new_layer_lr_mult=-10", "new_layer_lr_mult must be >= 0"),
    ("momentum=5", r"momentum must lie in \[0, 1\)"), ("seed=-1", r"seed must lie in \[0, 2\*\*32 - 2\]"),
    ("seed=4294967295", "seed must lie in"),
])
def test_bad_overrides_are_clear_errors(pair, message):
    with pytest.raises(ValueError, match=message):
        _config(pair)


def test_the_command_line_reports_a_bad_override_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(["--config", "smoke", "--workdir", "unused", "--set", "num_steps=abc"])
    assert exit_.value.code == 2 and "num_steps expects int | None, got 'abc'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(["--config", "smoke", "--workdir", "unused", "--pretrained", "/no/such/weights.npz"])
    assert exit_.value.code == 2 and "--pretrained /no/such/weights.npz: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # the README's way to continue an export: a traceback before
        train_cli.main(["--config", "smoke", "--workdir", "unused", "--set", "pretrained=/no/such/weights.npz"])
    assert exit_.value.code == 2 and "--set pretrained=/no/such/weights.npz: no such file" in capsys.readouterr().err
    assert not os.path.exists("unused")  # refused before the work directory is made


def test_a_work_directory_that_is_a_file_is_named_before_the_dataset_is_opened(tmp_path, monkeypatch, capsys):
    from oosis_jax.training import loop

    monkeypatch.setattr(loop, "open_sources", lambda config: pytest.fail("the dataset was opened first"))
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(["--config", "smoke", "--workdir", str(tmp_path / "a_file")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert f"NotADirectoryError: {tmp_path / 'a_file'} is not a folder: the run's work directory" in err


def test_a_checkpoint_folder_it_cannot_write_is_refused_before_training(tmp_path, monkeypatch, capsys):
    """orbax failed only at the first save and its background threads then kept the process from ever exiting
    (a checkpoints/ that is a file, or another user's folder): checked before any step now."""
    from oosis_jax.training import checkpointing, loop

    monkeypatch.setattr(loop, "jitted_steps", lambda *args: pytest.fail("compiled before the check"))
    (tmp_path / "file" / "checkpoints").parent.mkdir()
    (tmp_path / "file" / "checkpoints").write_text("")
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(["--config", "smoke", "--workdir", str(tmp_path / "file")])
    assert exit_.value.code == 2 and "NotADirectoryError: " in capsys.readouterr().err
    (tmp_path / "theirs" / "checkpoints").mkdir(parents=True)
    theirs = {str(tmp_path / "theirs" / "checkpoints")}  # as for another user's folder
    monkeypatch.setattr(checkpointing.os, "access", lambda path, mode: path not in theirs)
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(["--config", "smoke", "--workdir", str(tmp_path / "theirs")])
    assert exit_.value.code == 2
    assert f"PermissionError: cannot write to {tmp_path / 'theirs' / 'checkpoints'}: the run's checkpoints" in \
        capsys.readouterr().err
    theirs = {str(tmp_path / "theirs")}  # the work directory itself
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(["--config", "smoke", "--workdir", str(tmp_path / "theirs")])
    assert exit_.value.code == 2
    assert f"PermissionError: cannot write to {tmp_path / 'theirs'}: the run's work directory" in \
        capsys.readouterr().err


def test_a_preempted_run_exits_as_sigterm_would_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    from oosis_jax.training import loop
    from oosis_jax.training.preemption import Preempted

    def preempted(config, workdir):
        raise Preempted(5, workdir)

    monkeypatch.setattr(loop, "train", preempted)
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(["--config", "smoke", "--workdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 143 and "after saving step 5; the same command resumes" in err
    assert "Traceback" not in err



def test_nested_fields_are_set_with_a_dot_and_typed_by_the_nested_config():
    config = _config("loss.orientation_band=1", "loss.boundary_weight=0.7", "model.decoder=unet",
                     "augment.crop_size=(32, 32)", "num_steps=5")
    assert (config.loss.orientation_band, config.loss.boundary_weight) == (1, 0.7)
    assert config.loss.aux_weight == _config().loss.aux_weight  # the other nested fields are kept
    assert config.model.decoder == "unet" and config.augment.crop_size == (32, 32) and config.num_steps == 5
    assert _config("augment.flip=False").augment.flip is False and _config("augment.flip=True").augment.flip is True


@pytest.mark.parametrize("pair, message", [
    ("loss.boundary_weight=1.5", r"--set loss\.boundary_weight must lie in \(0, 1\)"),
    ("loss.learning=1", "loss.learning=1: unknown config field 'learning'"),
    ("loss.orientation_band=x", "loss.orientation_band=x: orientation_band expects int"),
    ("name.x=1", "'name' is not a nested config"),
    ("loss.aux_weight=-1", "aux_weight must be >= 0"), ("loss.gamma=-2", "gamma must be >= 1"),
    ("loss.gamma=0.5", r"gamma must be >= 1 \(Dice\+\+ / Tversky\+\+ exponent\), got 0.5"),  # NaN gradients
    ("num_steps=3000000000", "num_steps must be at most 2147483647"),  # an int32 overflow traceback in the loop
    ("optics.x=1", "'optics' is not a nested config"),
])
def test_bad_nested_overrides_are_clear_errors(pair, message):
    with pytest.raises(ValueError, match=message):
        _config(pair)


def test_a_run_of_no_length_is_refused():
    with pytest.raises(ValueError, match="num_epochs must be > 0, got 0"):
        _config("num_steps=None", "num_epochs=0")
    with pytest.raises(ValueError, match="num_epochs must be > 0, got 0"):  # was refused late, blaming num_steps
        _config("num_steps=6", "num_epochs=0")


def test_settings_of_a_tfds_build_without_one_are_refused():
    for pair in ("eval_split=nonexistent", "dataset_config=(('num_train', 5),)"):
        with pytest.raises(ValueError, match="dataset_config and eval_split choose a tfds build and need data_dir"):
            _config(pair)


def test_on_the_fly_scene_settings_with_a_tfds_build_are_refused():
    # with data_dir the scenes come from the build: these settings used to be ignored without a word
    for pairs in (("data_dir=/x", "synthetic_scenes=1000"), ("synthetic_size=(64, 64)", "data_dir=/x")):
        with pytest.raises(ValueError, match=r"synthetic_\w+: these size the scenes rendered on the fly.*"
                                             r"dataset_config"):
            _config(*pairs)
    args = argparse.Namespace(config="smoke", set=["synthetic_val_scenes=3"], dataset=None, bf16=False,
                              data_dir="/x", pretrained=None)
    with pytest.raises(ValueError, match="synthetic_val_scenes: these size"):
        train_cli.build_config(args)


def test_a_real_dataset_without_a_pretrained_backbone_is_named_as_not_the_paper_s_training():
    from oosis_jax.training.configs import get_config

    note = train_cli.from_scratch_note(get_config("kins"))
    assert "kins: training the backbone from scratch" in note and "--pretrained FILE" in note
    assert train_cli.from_scratch_note(get_config("cocoa", pretrained="backbone.npz")) is None
    assert train_cli.from_scratch_note(get_config("synthetic")) is None  # no ImageNet backbone in the paper's sense


def test_ctrl_c_says_where_the_run_resumes_without_a_traceback(tmp_path, monkeypatch, capsys):
    from oosis_jax.training import loop

    def interrupted(config, workdir):
        os.makedirs(workdir, exist_ok=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train", interrupted)
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(["--config", "smoke", "--workdir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_.value.code == 130 and "Traceback" not in err
    assert "interrupted; no step was saved yet: the same command resumes the run" in err


def test_a_resumed_run_does_not_need_its_pretrained_file_any_more(tmp_path):
    """The file initialises a new run only: a run with a checkpoint resumes with its own command after the file
    has moved (before: "no such file", and any other --pretrained was a different configuration)."""
    args = argparse.Namespace(config="smoke", set=[], dataset=None, bf16=False, data_dir=None,
                              pretrained=str(tmp_path / "moved.npz"), workdir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="moved.npz: no such file"):
        train_cli.build_config(args)
    (tmp_path / "run" / "checkpoints" / "5").mkdir(parents=True)
    assert train_cli.build_config(args).pretrained == str(tmp_path / "moved.npz")
