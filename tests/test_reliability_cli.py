"""Issue 13, command line: typed --set overrides with clear errors, and no tfds noise in every run."""

import argparse
import logging

import pytest
from absl import logging as absl_logging

from experiments import train as train_cli


def _config(*pairs):
    args = argparse.Namespace(config="smoke", set=list(pairs), dataset=None, bf16=False, data_dir=None,
                              pretrained=None)
    return train_cli.build_config(args)


def test_item15_overrides_are_typed_by_the_config_fields():
    config = _config("num_steps=20", "base_lr=1e-3", "num_epochs=3", "data_dir=/x", "synthetic_size=(32, 48)",
                     "eval_examples=None", "name=123", "dataset_config=(('num_train', 4),)")
    assert (config.num_steps, config.base_lr, config.num_epochs) == (20, 0.001, 3.0)
    assert isinstance(config.num_epochs, float) and config.name == "123" and config.data_dir == "/x"
    assert config.synthetic_size == (32, 48) and config.eval_examples is None
    assert config.dataset_config == (("num_train", 4),)


@pytest.mark.parametrize("pair, message", [
    ("base_lr=nan", r"base_lr expects float, got 'nan'"),
    ("base_lr=1e999", "base_lr must be a finite number"),
    ("num_steps=abc", r"num_steps expects int \| None, got 'abc'"),
    ("num_steps=2.5", r"num_steps expects int \| None"),
    ("batch_size=True", "batch_size expects int"),
    ("synthetic_size=(32, 'a')", r"synthetic_size expects tuple\[int, int\]"),
    ("learning_rate=0.1", "unknown config field 'learning_rate'"),
    ("model=None", "model is a nested ModelConfig"),
    ("num_steps", "expects key=value"),
])
def test_item15_bad_overrides_are_clear_errors(pair, message):
    with pytest.raises(ValueError, match=message):
        _config(pair)


def test_item16_tfds_noise_is_silenced_and_other_messages_pass(caplog):
    from data import loading  # noqa: F401 - installs the filter, as every dataset read does

    with caplog.at_level(logging.INFO):
        absl_logging.warning("Using custom data configuration: %s", "synthetic/num_train=4")
        absl_logging.warning("OpenCV is not installed. We recommend using OpenCV because it is faster.")
        absl_logging.warning("a real problem")
    assert [r.getMessage() for r in caplog.records] == ["a real problem"]


def test_item15_the_command_line_reports_a_bad_override_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(["--config", "smoke", "--workdir", "unused", "--set", "num_steps=abc"])
    assert exit_.value.code == 2 and "num_steps expects int | None, got 'abc'" in capsys.readouterr().err
