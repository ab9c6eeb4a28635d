"""experiments/gpu_check.sh on a stand-in python: the summary script runs for real, every stage's command is faked
(it sleeps FAKE_SECONDS and exits FAKE_RC), so the tests time the script's own bookkeeping: one deadline for all
stages, summary.md after every stage, the wheels step reported instead of ending the script. The real stages run
in ``bash experiments/gpu_check.sh --cpu-smoke`` (minutes)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE_PYTHON = f"""#!/usr/bin/env bash
case "$1" in
  */summary.py) exec {sys.executable} "$@" ;;
  -c) [[ "$2" == *import_module* ]] && echo "${{FAKE_LACKS:-}}"; exit 0 ;;
  -)  cat >/dev/null; exit "${{FAKE_RC:-0}}" ;;
esac
if [ "$2" = pip ]; then echo "/usr/bin/python3.11: No module named pip" >&2; exit 1; fi
if [ "$2" = experiments.train ] && [ -n "${{FAKE_METRICS:-}}" ]; then
  mkdir -p "$6/checkpoints" && cp "$FAKE_METRICS" "$6/metrics.jsonl"  # a run that saved a checkpoint
fi
[ "${{FAKE_RC:-0}}" = 0 ] || echo "${{FAKE_ERROR:-ModuleNotFoundError: No module named 'grain'}}"
sleep "${{FAKE_SECONDS:-0}}"
exit "${{FAKE_RC:-0}}"
"""
STAGES = ["wheels", "bench_infer", "bench_train", "train_plan", "train", "held_out", "export"]


def start(tmp_path, **env):
    """gpu_check.sh started in its own session on the fake python (no git: the commit reads unknown)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("python", FAKE_PYTHON), ("git", "#!/bin/sh\nexit 1\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": str(bin_dir / "python"),
           "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"), "KILL_S": "1",
           "WHEELS": str(tmp_path / "no_wheels"), **env}
    return subprocess.Popen(["bash", str(ROOT / "experiments" / "gpu_check.sh")], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stage_rows(tmp_path):
    """``{stage: (result, seconds, limit, note)}`` of summary.md's stage table."""
    text = (tmp_path / "out" / "summary.md").read_text()
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows if cells[0].strip() in STAGES}


def test_summary_is_rewritten_after_every_stage(tmp_path):
    proc = start(tmp_path, FAKE_SECONDS="600", INFER_S="2", BENCH_S="60")
    summary = tmp_path / "out" / "summary.md"
    try:
        deadline = time.monotonic() + 60
        while not (summary.exists() and "bench_infer" in stage_rows(tmp_path)) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        rows = stage_rows(tmp_path)
        assert proc.poll() is None  # bench_train still runs: a kill now still leaves a summary
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert rows["wheels"][0] == "ok" and "not needed" in rows["wheels"][3]
    assert rows["bench_infer"][0] == "TIMED OUT" and rows["bench_infer"][2] == "2"


def test_every_stage_ends_by_the_deadline(tmp_path):
    """bench_infer asks for 100 s but gets what the deadline leaves after the least time of the later stages
    (1 s each, their limits): it is cut short, and the whole run ends by the deadline."""
    began = time.monotonic()
    proc = start(tmp_path, FAKE_SECONDS="600", DEADLINE_S="40", INFER_S="100", BENCH_S="1", PLAN_S="1",
                 TRAIN_S="1", EVAL_S="1", EXPORT_S="1")
    log, _ = proc.communicate(timeout=120)
    elapsed = time.monotonic() - began
    assert proc.returncode == 0, log
    assert elapsed < 40 + 10, log  # the deadline, and the last summary
    rows = stage_rows(tmp_path)
    assert list(rows) == STAGES, log
    result, took, limit, _ = rows["bench_infer"]
    assert result == "TIMED OUT" and 20 <= int(limit) <= 40 - 1 - 5 * (1 + 1), log
    for name in STAGES[2:]:
        result, took, limit, _ = rows[name]
        assert result == "skipped" or (int(limit) <= 1 and int(took) <= int(limit) + 1 + 1), (name, log)


def test_a_bench_that_uses_its_whole_limit_leaves_the_train_stage_its_least(tmp_path):
    """bench_train's limit keeps the plan's whole time for later, as the train stage's limit reckons it: with
    only the plan's least kept, a bench_train cut at its limit left the train stage under its least (skipped)."""
    proc = start(tmp_path, FAKE_SECONDS="600", DEADLINE_S="82", INFER_S="1", BENCH_S="200", PLAN_S="20",
                 TRAIN_S="3", EVAL_S="1", EXPORT_S="1")
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log
    rows = stage_rows(tmp_path)
    assert rows["bench_train"][0] == "TIMED OUT" and rows["train_plan"][0] == "TIMED OUT", log
    assert rows["train"][0] == "TIMED OUT" and rows["train"][2] == "3", log  # run, with its whole limit


@pytest.mark.parametrize("wheels", ["pip fails", "none"])
def test_a_failed_wheels_step_is_reported(tmp_path, wheels):
    """No pip (or no wheels to install): the script goes on, and the summary says why every stage fails."""
    folder = tmp_path / "no_wheels"
    if wheels == "pip fails":
        folder.mkdir()
        (folder / "grain-0.2.18-py3-none-any.whl").write_bytes(b"")
    proc = start(tmp_path, FAKE_LACKS="grain pycocotools", FAKE_RC="1")
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log
    rows = stage_rows(tmp_path)
    assert list(rows) == STAGES, log
    assert rows["wheels"][0] == "FAILED (rc 1)"
    assert ("No module named pip" if wheels == "pip fails" else "no_wheels/*.whl") in rows["wheels"][3]
    for name in ("bench_infer", "bench_train", "held_out"):
        assert rows[name][0] == "FAILED (rc 1)"
        assert rows[name][3].startswith("cannot import grain pycocotools (see the wheels row); ModuleNotFoundError")
    assert "cannot import grain pycocotools" in (tmp_path / "out" / "summary.md").read_text()


def test_training_speed_is_labelled_as_wall_time(tmp_path):
    """The summary's img/s comes from the logged steps' wall clock, checkpoints and validation included."""
    metrics = tmp_path / "metrics.jsonl"
    records = [{"step": 100, "time": 0.0, "loss": 2.0}, {"step": 200, "time": 10.0, "loss": 1.0},
               {"step": 200, "time": 12.0, "val_boundary_ods": 0.5, "val_boundary_ap": 0.4,
                "val_oriented_ods": 0.3, "val_oriented_ap": 0.2}]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    proc = start(tmp_path, FAKE_METRICS=str(metrics))
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log
    assert all(row[0] == "ok" for row in stage_rows(tmp_path).values()), log
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "- 80 img/s of wall time from step 100 to 200 (10s, checkpoint saves and validation included" in summary


def test_no_stale_files_no_unbounded_stage_and_nothing_to_export_without_a_trained_run(tmp_path):
    """A previous run's files in OUT are not reported as this run's; a limit of 0 skips the stage (it ran
    unbounded: `timeout 0` means no limit); a train stage that saved no checkpoint leaves export skipped, and
    held_out evaluates the shipped model alone."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("gpu_model.tar", "held_out.jsonl", "bench.txt", "metrics.png"):
        (out / name).write_text("an earlier run's")
    proc = start(tmp_path, FAKE_SECONDS="3", INFER_S="0", BENCH_S="1", TRAIN_S="70", EVAL_S="5", EXPORT_S="5")
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log
    rows = stage_rows(tmp_path)
    assert rows["bench_infer"][:3] == ["skipped", "0", "0"], log
    assert rows["export"][0] == "skipped" and "no checkpoint" in rows["export"][3], log
    assert "--checkpoint shipped=synthetic" in log and "gpu=" not in log.split("=== held_out")[1].split("\n")[0]
    assert not (out / "gpu_model.tar").exists() and not (out / "held_out.jsonl").exists()
    assert "earlier" not in (out / "bench.txt").read_text() and not (out / "metrics.png").exists()


def test_a_failure_is_blamed_on_a_missing_package_only_when_it_is_an_import_error(tmp_path):
    proc = start(tmp_path, FAKE_LACKS="pycocotools", FAKE_RC="1", FAKE_ERROR="RuntimeError: out of memory")
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log
    rows = stage_rows(tmp_path)
    assert rows["bench_infer"][0] == "FAILED (rc 1)" and rows["bench_infer"][3] == "RuntimeError: out of memory", log
    (tmp_path / "jax").mkdir()
    proc = start(tmp_path / "jax", FAKE_LACKS="pycocotools", FAKE_RC="1", FAKE_ERROR="ModuleNotFoundError: No module "
                 "named 'jax'")  # a missing module the wheels do not carry is not blamed on them
    log, _ = proc.communicate(timeout=120)
    rows = stage_rows(tmp_path / "jax")
    assert rows["bench_infer"][3] == "ModuleNotFoundError: No module named 'jax'", log
