"""``workdir/metrics.jsonl``: one strict JSON object per logged step of a training run (`MetricsLog`)."""

from __future__ import annotations

import json
import os
import time

import jax

from oosis_jax.evaluation.tables import strict_json

METRICS_FILE = "metrics.jsonl"


def mean_metrics(sums: dict) -> dict[str, float]:
    """``{name: (sum, count)}`` (a step's metrics, or their sums over steps or batches) -> ``{name: sum / count}``."""
    return {name: float(total[0] / max(float(total[1]), 1e-12)) for name, total in sums.items()}


class MetricsLog:
    """Appends one JSON object per line to ``workdir/metrics.jsonl`` (process 0 only), strict JSON: an undefined
    value (a NaN loss, validation ODS of a set without boundary pixels) is written as null (`strict_json`)."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, METRICS_FILE)
        self.enabled = jax.process_index() == 0

    def write(self, step: int, values: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(strict_json({"step": step, "time": time.time(), **values}) + "\n")

    def records(self) -> list[dict]:
        """The intact records, in file order (a line a kill cut short is skipped)."""
        if not os.path.exists(self.path):
            return []
        out = []
        with open(self.path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("step"), int):
                    out.append(record)
        return out

    def has_validation(self, step: int) -> bool:
        """Whether a validation record (``val_*`` values) of ``step`` is logged."""
        return any(r["step"] == step and any(k.startswith("val_") for k in r) for r in self.records())

    def truncate_after(self, step: int) -> None:
        """Drop the records of steps after ``step`` and any line a kill cut short: a run resumed at ``step``
        logs the steps it replays again, which plots and tables would otherwise count twice."""
        if not self.enabled or not os.path.exists(self.path):
            return
        kept = [strict_json(r) + "\n" for r in self.records() if r["step"] <= step]
        with open(self.path) as f:
            if f.read() == "".join(kept):  # nothing to drop: no write (a finished run's log may be read-only)
                return
        with open(self.path + ".tmp", "w") as f:
            f.writelines(kept)
        os.replace(self.path + ".tmp", self.path)
