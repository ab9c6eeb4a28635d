"""experiments/bench_train.py's targets (one H100-class GPU: >= 400 img/s training at 225x225, <= 30 ms per
2048x615 forward pass, ResNet-50 bf16): each row says met, missed, or n/a with why."""

from types import SimpleNamespace

import pytest

from experiments import bench_train

GPU, CPU = SimpleNamespace(platform="gpu"), SimpleNamespace(platform="cpu")
PAPER = dict(model="resnet50", dtype="bfloat16", train_size=225, infer_size=[615, 2048])


@pytest.mark.parametrize("devices, changes, training, value, expected", [
    ([GPU], {}, True, 400.0, "met"), ([GPU], {}, True, 399.9, "missed"),
    ([GPU], {}, False, 30.0, "met"), ([GPU], {}, False, 30.1, "missed"),
    ([CPU], {}, True, 1e4, "n/a (not a GPU)"), ([CPU], {}, False, 1.0, "n/a (not a GPU)"),
    ([GPU, GPU], {}, True, 1e4, "n/a (2 GPUs: the target is for one)"), ([GPU, GPU], {}, False, 1.0, "met"),
    ([GPU], {"model": "synthetic"}, True, 1e4, "n/a (not ResNet-50 bf16)"),
    ([GPU], {"dtype": "float32"}, False, 1.0, "n/a (not ResNet-50 bf16)"),
    ([GPU], {"train_size": 128}, True, 1e4, "n/a (not 225x225)"),
    ([GPU], {"infer_size": [41, 67]}, False, 1.0, "n/a (not 2048x615)"),
])
def test_verdict(devices, changes, training, value, expected):
    assert bench_train.verdict(SimpleNamespace(**{**PAPER, **changes}), devices, training, value) == expected


def test_inference_alone_initialises_no_training_state(monkeypatch, capsys):
    def refused(*args):
        raise AssertionError("a training state for no batch size")

    monkeypatch.setattr(bench_train.train, "fresh_train_state", refused)
    bench_train.main(["--smoke", "--batch-sizes"])
    rows = capsys.readouterr().out.splitlines()[2:]
    assert len(rows) == 1 and rows[0].startswith("inference")


def test_smoke_rows_show_the_targets(capsys):
    bench_train.main(["--smoke"])
    lines = capsys.readouterr().out.splitlines()
    assert "target (one H100-class GPU)" in lines[1]
    assert ">= 400 img/s at 225x225" in lines[2] and "<= 30 ms at 2048x615" in lines[3]
    assert all(line.endswith(("n/a (not a GPU)", "n/a (not ResNet-50 bf16)")) for line in lines[2:4])  # tiny model
