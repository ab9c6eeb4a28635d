"""``metrics.jsonl`` (`oosis_jax.training.metrics_log.MetricsLog`): strict JSON records, and a resumed run's log
rewritten only when it has something to drop."""

import json

import numpy as np
import pytest

from oosis_jax.training.metrics_log import METRICS_FILE, MetricsLog


def test_an_undefined_metric_is_logged_as_null_and_plotted_as_a_gap(tmp_path):
    """metrics.jsonl is strict JSON (a NaN loss or validation ODS without boundary pixels is null, not Python's
    bare NaN token, which jq or a browser cannot read), and the training plot draws such a record as a gap."""
    from experiments.train import plot_metrics

    log = MetricsLog(str(tmp_path))
    log.write(1, {"loss": 0.5, "val_boundary_ods": float("nan")})
    log.write(2, {"loss": np.float32("nan"), "val_boundary_ods": 0.25})
    text = (tmp_path / METRICS_FILE).read_text()
    assert "NaN" not in text
    records = [json.loads(line, parse_constant=pytest.fail) for line in text.splitlines()]
    assert [r["val_boundary_ods"] for r in records] == [None, 0.25] and records[1]["loss"] is None
    plot_metrics(str(tmp_path / METRICS_FILE), str(tmp_path / "metrics.png"))
    assert (tmp_path / "metrics.png").stat().st_size > 0


def test_a_log_with_nothing_to_drop_is_not_rewritten(tmp_path, monkeypatch):
    """Rerunning a finished run rewrote its metrics.jsonl, so a read-only log ended the run with exit status 2;
    a record after the resumed step, or a line a kill cut short, still makes it rewrite the file."""
    from oosis_jax.training import metrics_log

    log = MetricsLog(str(tmp_path))
    log.write(1, {"loss": 0.5})
    log.write(2, {"loss": 0.25})

    def refused(*args):
        raise PermissionError("read-only")

    monkeypatch.setattr(metrics_log.os, "replace", refused)
    log.truncate_after(2)  # nothing to drop: no write
    with (tmp_path / METRICS_FILE).open("a") as f:
        f.write('{"step": 3, "lo')  # cut short by a kill
    with pytest.raises(PermissionError):
        log.truncate_after(2)
    monkeypatch.undo()
    log.truncate_after(1)
    assert [r["step"] for r in log.records()] == [1]
