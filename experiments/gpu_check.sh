#!/usr/bin/env bash
# The GPU check of issue 14 item 6: one command that ends within 8 minutes on one H100/H200 (no network there).
#
#     bash experiments/gpu_wheels.sh             # once, here (PyPI): grain, array-record, portpicker, pycocotools
#     bash experiments/gpu_check.sh              # on the GPU machine (installs .whl/*.whl first when needed)
#     bash experiments/gpu_check.sh --cpu-smoke  # the same stages with tiny settings, ~1.5 minutes on a CPU
#
# Stages run in order, each under `timeout`; a failed, timed out or skipped stage is recorded and the next one
# still runs. One deadline bounds them all: DEADLINE_S (480; --cpu-smoke 600) seconds after the script starts.
# A stage's limit (seconds below, overridable by the environment variables named) shrinks so that the stage with
# its KILL_S (20) seconds of kill grace, and the least time of every later stage with theirs, end by the
# deadline; a stage left less than its least is skipped. The limits below add up to more than the deadline: they
# are ceilings, and when the benches use theirs, train (planned last) gets what is left, at least its least.
# summary.md is rewritten after every stage, so a run killed from outside still leaves one.
#   stage        limit        least  what
#   wheels       WHEELS_S=60  10     pip install --target WORK/site of $WHEELS/*.whl (default .whl) when python lacks
#                                    grain, array_record, portpicker or pycocotools (later stages import them)
#   bench_infer  INFER_S=60   20     python -m experiments.bench_train --batch-sizes (ResNet-50 PSPNet, bf16, one
#                                    2048x615 forward pass)
#   bench_train  BENCH_S=240  30     python -m experiments.bench_train --no-inference (training images/s at 225x225,
#                                    bf16, batch 8/16/32; on an H200 45-70 s each in separate processes, mostly
#                                    initialisation and compilation: one process now initialises once)
#   train_plan   PLAN_S=25    25     python -m experiments.gpu_plan: batch (8/16/32) and steps of the run from the
#                                    measured rate of its loader, so that the poly schedule ends inside the train stage
#   train        TRAIN_S=120  75     python -m experiments.train --config synthetic_long: the shipped model's recipe
#                                    (validated at its end only; SIGINT at the limit keeps the last checkpoint, every
#                                    100 steps)
#   held_out     EVAL_S=90    30     python -m experiments.held_out --checkpoint gpu=WORKDIR --sets test --scenes 40
#                                    (and the shipped model's row, when oosis_jax/weights/synthetic exists)
#   export       EXPORT_S=25  10     oosis_jax.inference.predictor.export of the trained run -> gpu_model.tar
# LOADER_PROCESSES sets train_plan's and train's loader_processes (default: the config's, one worker process per core
# but one on a GPU; --cpu-smoke: 2, so that a CPU rehearses the GPU's way of loading).
# Writes to $OUT (default runs/gpu): summary.md, bench.txt, train_metrics.jsonl, held_out.jsonl, log.txt,
# metrics.png, gpu_model.tar (weights.npz + config.json + metrics.jsonl of the run), at most 8 files.
set -euo pipefail
START=$(date +%s)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1

SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --cpu-smoke) SMOKE=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (use --cpu-smoke or nothing)" >&2; exit 2 ;;
  esac
done
[ "${GPU_CHECK_SMOKE:-0}" = 1 ] && SMOKE=1

OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=${WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
mkdir -p "$WORK"
LOG="$OUT/log.txt"
: >"$LOG"
# a previous run's files would be reported (and sent back) as this run's when a stage fails or is skipped
rm -f "$OUT"/{summary.md,bench.txt,train_metrics.jsonl,metrics.png,held_out.jsonl,gpu_model.tar}
exec > >(tee -a "$LOG") 2>&1

# The project's venv when there is one (it has everything), else python3 plus the carried wheels it lacks.
if [ -x .venv/bin/python ]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
if [ "$SMOKE" = 1 ]; then
  DEADLINE_S=${DEADLINE_S:-600}; INFER_S=${INFER_S:-90}; BENCH_S=${BENCH_S:-150}; TRAIN_S=${TRAIN_S:-150}
  EVAL_S=${EVAL_S:-120}; EXPORT_S=${EXPORT_S:-60}; BENCH_ARGS=(--smoke); SCENES=${SCENES:-2}
  LOADER_PROCESSES=${LOADER_PROCESSES:-2}  # the GPU's way of loading (a CPU run's default is threads)
else
  DEADLINE_S=${DEADLINE_S:-480}; INFER_S=${INFER_S:-60}; BENCH_S=${BENCH_S:-240}; TRAIN_S=${TRAIN_S:-120}
  EVAL_S=${EVAL_S:-90}; EXPORT_S=${EXPORT_S:-25}; BENCH_ARGS=(); SCENES=${SCENES:-40}
fi
KILL_S=${KILL_S:-20}
LOADER_PROCESSES=${LOADER_PROCESSES:-}  # the train stage's loader_processes; empty: the config's (by the backend)
WHEELS=${WHEELS:-.whl}
ORDER=(wheels bench_infer bench_train train_plan train held_out export)
declare -A WANT=([wheels]=${WHEELS_S:-60} [bench_infer]=$INFER_S [bench_train]=$BENCH_S [train_plan]=${PLAN_S:-25}
                 [train]=$TRAIN_S [held_out]=$EVAL_S [export]=$EXPORT_S)
# train_plan's least is its wanted time: the train stage's limit is reckoned before the plan runs, as if the plan took
# all of it (else a bench_train that used its whole limit would leave the train stage less than its least)
declare -A LEAST=([wheels]=10 [bench_infer]=20 [bench_train]=30 [train_plan]=${WANT[train_plan]} [train]=75
                  [held_out]=30 [export]=10)
RUN="$WORK/train"
STATUS="$WORK/status.tsv"
: >"$STATUS"
MISSING=""  # the carried packages that python still cannot import after the wheels stage
BATCH=8; STEPS=3000; THREADS=8; RATE=unknown

# The summary: stage table, environment, benchmark, training facts, held-out rows (stdlib only: it runs even when
# the stages cannot import their packages).
cat >"$WORK/summary.py" <<'EOF'
"""summary.md of gpu_check.sh from what is there so far; --print: also to stdout."""
import json, os, sys, time
from pathlib import Path

env = os.environ
work, out, run = Path(env["WORK"]), Path(env["OUT"]), Path(env["RUN"])


def f3(value):
    """A metric of metrics.jsonl to 3 decimals; null (undefined, e.g. a NaN loss) as n/a."""
    return "n/a" if value is None else f"{value:.3f}"


def records(path):
    """The JSON lines of ``path`` (none when it is missing), less a last one a kill cut short."""
    lines = path.read_text().splitlines() if path.exists() else []
    try:
        return [json.loads(x) for x in lines if x.strip()]
    except json.JSONDecodeError:
        return [json.loads(x) for x in lines[:-1] if x.strip()]


lines = ["# GPU check" + (" (CPU smoke settings)" if env["SMOKE"] == "1" else ""), ""]
for name in ("gpu.txt", "env.txt"):
    if (work / name).exists():
        lines += [f"- {line}" for line in (work / name).read_text().splitlines() if line.strip()]
if env["MISSING"]:
    lines.append(f"- {env['PY']} cannot import {env['MISSING']} (see the wheels row): the stages import grain, "
                 "held_out also pycocotools")
lines += ["", f"Written {int(time.time()) - int(env['START'])} s after the start. Every stage ends by the deadline, "
          f"{env['DEADLINE_S']} s after the start: its limit leaves the least time of the later stages, and "
          f"{env['KILL_S']} s of kill grace each; a stage left less than its least is skipped.", "",
          "| stage | result | seconds | limit | note |", "|---|---|---|---|---|"]
results = {"0": "ok", "124": "TIMED OUT", "137": "TIMED OUT (killed)", "skipped": "skipped"}
for row in (work / "status.tsv").read_text().splitlines():
    name, rc, took, limit, note = row.split("\t")
    lines.append(f"| {name} | {results.get(rc, f'FAILED (rc {rc})')} | {took} | {limit} | {note.replace('|', '/')} |")
bench = out / "bench.txt"
if bench.exists() and bench.read_text().strip():
    lines += ["", "## bench_train (model and dtype on its first line)", "", "```", bench.read_text().rstrip(), "```"]
metrics = records(run / "metrics.jsonl")
if metrics:
    losses = [r for r in metrics if "loss" in r]
    vals = [r for r in metrics if "val_boundary_ap" in r]
    last = max(r["step"] for r in metrics)
    lines += ["", "## train --config synthetic_long", "",
              f"- plan: batch {env['BATCH']}, {env['STEPS']} steps (input pipeline {env['RATE']} img/s); "
              f"reached step {last}"]
    if len(losses) >= 2:
        (a, b) = losses[0], losses[-1]
        speed = (b["step"] - a["step"]) * int(env["BATCH"]) / max(b["time"] - a["time"], 1e-9)
        lines.append(f"- {speed:.0f} img/s of wall time from step {a['step']} to {b['step']} "
                     f"({b['time'] - a['time']:.0f}s, checkpoint saves and validation included; bench_train times "
                     f"the step alone); loss {f3(a['loss'])} -> {f3(b['loss'])}")
    if vals:
        v = vals[-1]
        lines.append(f"- validation at step {v['step']}: boundary ODS {f3(v['val_boundary_ods'])}, "
                     f"AP {f3(v['val_boundary_ap'])}; oriented ODS {f3(v['val_oriented_ods'])}, "
                     f"AP {f3(v['val_oriented_ap'])}")
rows = records(work / "held_out" / "rows.jsonl")
if rows:
    keys = list(rows[0])
    lines += ["", "## held_out (synthetic test scenes)", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(f"{r[k]:.1f}" if isinstance(r[k], float) else "n/a" if r[k] is None else str(r[k])
                                 for k in keys) + " |"
              for r in rows]
lines += ["", "Files: " + ", ".join(sorted({p.name for p in out.iterdir() if p.is_file()} | {"summary.md"}))]
(out / "summary.md.tmp").write_text("\n".join(lines) + "\n")
(out / "summary.md.tmp").replace(out / "summary.md")  # whole, even when the run is killed meanwhile
if "--print" in sys.argv:
    print("\n".join(lines))
EOF

# summarize [--print]: rewrite summary.md (when python cannot, the bare stage table instead).
summarize() {
  if ! WORK="$WORK" OUT="$OUT" RUN="$RUN" BATCH="$BATCH" STEPS="$STEPS" RATE="$RATE" SMOKE="$SMOKE" PY="$PY" \
       MISSING="$MISSING" START="$START" DEADLINE_S="$DEADLINE_S" KILL_S="$KILL_S" "$PY" "$WORK/summary.py" "$@"; then
    { echo "# GPU check: summary.py failed, the stage table as recorded (name, rc, seconds, limit, note)"; echo
      cat "$STATUS"; } >"$OUT/summary.md"
  fi
}

# record NAME RESULT SECONDS LIMIT NOTE: a row of the stage table (RESULT: an exit status or "skipped"), then the
# summary rewritten.
record() {
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5//$'\t'/ }" >>"$STATUS"
  summarize
}

# the least seconds NAME may run: its LEAST, or its wanted limit when smaller, but at least 1 (`timeout 0` would
# mean no limit at all)
least() { local l=$(( LEAST[$1] < WANT[$1] ? LEAST[$1] : WANT[$1] )); echo $(( l < 1 ? 1 : l )); }

# fit NAME LIMIT [EXTRA]: LIMIT, shortened so that NAME with its kill grace, EXTRA seconds and the least time of
# every later stage with its kill grace end by the deadline.
fit() {
  local left=$(( START + DEADLINE_S - $(date +%s) - KILL_S - ${3:-0} )) later=0 s
  for s in "${ORDER[@]}"; do
    if [ "$later" = 1 ]; then left=$(( left - $(least "$s") - KILL_S )); fi
    if [ "$s" = "$1" ]; then later=1; fi
  done
  echo $(( $2 < left ? $2 : left ))
}

# skip NAME LIMIT [WHY]: record NAME as skipped, LIMIT seconds being all the deadline left it.
skip() {
  local why=${3:-"the deadline left it ${2}s, under its least $(least "$1")s"}
  echo "=== $1 SKIPPED: $why"
  record "$1" skipped 0 "$2" "$why"
}

# stage NAME LIMIT SIGNAL COMMAND...: runs COMMAND under timeout with the limit fit gives (or skips it when that is
# under NAME's least), records the outcome (a failure's note: its last line of output) and never fails.
stage() {
  local name=$1 limit signal=$3 start rc took note=""
  limit=$(fit "$1" "$2")
  shift 3
  if (( limit < $(least "$name") )); then
    skip "$name" "$limit"
    return 0
  fi
  echo "=== $name (limit ${limit}s): $*"
  start=$(date +%s)
  set +e
  timeout -s "$signal" -k "$KILL_S" "$limit" "$@" 2>&1 | tee "$WORK/$name.out"
  rc=${PIPESTATUS[0]}
  set -e
  took=$(( $(date +%s) - start ))
  case $rc in
    0) echo "=== $name ok in ${took}s" ;;
    124|137) echo "=== $name TIMED OUT after ${took}s (rc $rc)" ;;
    *) note=$(grep -v '^[[:space:]]*$' "$WORK/$name.out" | tail -1 | cut -c1-200 || true)
       if (( rc == 127 )); then note="command not found${note:+: $note}"
       elif [ -n "$MISSING" ] && grep -qE "No module named '($(echo "$MISSING" | sed 's/\.[a-z_]*//g' | tr ' ' '|'))" \
              "$WORK/$name.out"; then
         # only a module the wheels carry: another missing module (e.g. jax) is not the wheels' fault
         note="cannot import $MISSING (see the wheels row)${note:+; $note}"
       fi
       echo "=== $name FAILED with rc $rc after ${took}s: $note" ;;
  esac
  record "$name" "$rc" "$took" "$limit" "$note"
}

# The carried packages (the wheels' import names) and those that python cannot import (all when it cannot run).
CARRIED="grain array_record portpicker pycocotools.mask"  # .mask: the compiled part, which needs numpy
missing() {
  "$PY" -c 'import importlib, sys
lacking = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        lacking.append(name)
print(" ".join(lacking))' $CARRIED 2>/dev/null || echo "$CARRIED"
}

# 0. The wheels python lacks (a recorded stage: when it fails, the stages that need them fail naming what is missing).
LACKING=$(missing)
if [ -z "$LACKING" ]; then
  record wheels 0 0 "${WANT[wheels]}" "not needed: $PY imports $CARRIED"
elif compgen -G "$WHEELS/*.whl" >/dev/null; then
  stage wheels "${WANT[wheels]}" TERM "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$WORK/site" "$WHEELS"/*.whl
  export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
  MISSING=$(missing)
else
  MISSING=$LACKING
  echo "=== wheels FAILED: $PY lacks $LACKING and there is no $WHEELS/*.whl (run experiments/gpu_wheels.sh here first)"
  record wheels 1 0 "${WANT[wheels]}" "$PY lacks $LACKING and there is no $WHEELS/*.whl (run gpu_wheels.sh first)"
fi
[ -n "$MISSING" ] && summarize

echo "=== environment"
date -u
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi") \
  | tee "$WORK/gpu.txt"
timeout -k 5 60 "$PY" - <<'EOF' 2>&1 | tee "$WORK/env.txt" || true
import importlib.metadata as md, os, platform, sys
import jax
print(f"python {platform.python_version()}, {os.cpu_count()} cores, jax devices {jax.devices()}")
names = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numba", "numpy", "grain", "array-record",
         "pycocotools", "protobuf")
versions = []
for name in names:
    try:
        versions.append(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        versions.append(f"{name} MISSING")
print(", ".join(versions))
EOF
if COMMIT=$(git rev-parse --short HEAD 2>/dev/null); then
  git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (+ uncommitted changes)"
else
  COMMIT="unknown (no git)"
fi
echo "commit $COMMIT" \
  | tee -a "$WORK/env.txt"

# 1-2. The paper's full configuration: ResNet-50 PSPNet, bf16 (bench.txt gets both stages' tables).
: >"$OUT/bench.txt"
stage bench_infer "$INFER_S" TERM bash -c \
  "set -o pipefail; $PY -m experiments.bench_train ${BENCH_ARGS[*]} --batch-sizes | tee -a '$OUT/bench.txt'"
stage bench_train "$BENCH_S" TERM bash -c \
  "set -o pipefail; $PY -m experiments.bench_train ${BENCH_ARGS[*]} --no-inference | tee -a '$OUT/bench.txt'"

# 3. The shipped model's recipe, batch and steps planned to fit the train stage's limit (reckoned before the plan,
# as if the plan took all of its own).
PLAN="$WORK/plan.env"
TRAIN_LIMIT=$(fit train "$TRAIN_S" $(( WANT[train_plan] + KILL_S )))
if (( TRAIN_LIMIT < $(least train) )); then
  skip train_plan - "no train stage to plan for"
  skip train "$TRAIN_LIMIT"
else
  PLAN_ARGS=(--train-seconds "$TRAIN_LIMIT" --out "$PLAN")
  [ -n "$LOADER_PROCESSES" ] && PLAN_ARGS+=(--loader-processes "$LOADER_PROCESSES")
  [ "$SMOKE" = 1 ] && PLAN_ARGS+=(--smoke)
  stage train_plan "${WANT[train_plan]}" TERM "$PY" -m experiments.gpu_plan "${PLAN_ARGS[@]}"
  [ -f "$PLAN" ] && . "$PLAN"
  TRAIN_SETS=(--set "batch_size=$BATCH" --set "num_steps=$STEPS" --set "loader_threads=$THREADS"
              --set checkpoint_every=100 --set "eval_every=$STEPS")
  [ -n "$LOADER_PROCESSES" ] && TRAIN_SETS+=(--set "loader_processes=$LOADER_PROCESSES")
  if [ "$SMOKE" = 1 ]; then
    TRAIN_SETS+=(--set log_every=2 --set eval_every=6 --set checkpoint_every=2 --set synthetic_val_scenes=2
                 --set eval_examples=2 --set eval_batch_size=2)
  fi
  rm -rf "$RUN"
  # Warm numba's caches on one core while the run trains: the CRF's (held_out's spawned workers load it) and the
  # boundary metric's (the run's last validation; a fresh machine compiled it there, past the stage's limit).
  nice -n 10 timeout "$TRAIN_LIMIT" "$PY" -c "
import numpy as np, crf
rng = np.random.default_rng(0)
sigma = rng.random((24, 32)); occ = rng.random((24, 32, 4)) < 0.1
occ[:, 0, 0] = occ[:, -1, 1] = occ[0, :, 2] = occ[-1, :, 3] = False
crf.instances(crf.solve(sigma, occ)); crf.jump_moves(sigma, occ)
from oosis_jax.evaluation import boundaries
e = rng.random((24, 32, 4)); e /= e.sum(-1, keepdims=True)
boundaries.image_counts(sigma, e, occ.any(-1), e)
print('numba caches for the CRF and the boundary metric warmed')" >"$WORK/numba_warm.txt" 2>&1 &
  WARM_PID=$!
  stage train "$TRAIN_LIMIT" INT "$PY" -m experiments.train --config synthetic_long --workdir "$RUN" "${TRAIN_SETS[@]}"
  [ -f "$RUN/metrics.jsonl" ] && cp "$RUN/metrics.jsonl" "$OUT/train_metrics.jsonl"
  [ -f "$RUN/metrics.png" ] && cp "$RUN/metrics.png" "$OUT/metrics.png"
  wait "$WARM_PID" || echo "numba warm-up failed: $(tail -3 "$WORK/numba_warm.txt")"
fi

# 4. Held-out scenes: the trained run, when it saved a checkpoint (and the shipped model, for comparison, when it is
# in the tree).
CHECKPOINTS=()
[ -d "$RUN/checkpoints" ] && CHECKPOINTS+=(--checkpoint "gpu=$RUN")
[ -f oosis_jax/weights/synthetic/weights.npz ] && CHECKPOINTS+=(--checkpoint shipped=synthetic)
HELD_ARGS=()
[ "$SMOKE" = 1 ] && HELD_ARGS=(--processes 2)
if [ ${#CHECKPOINTS[@]} = 0 ]; then
  skip held_out - "no trained run and no shipped model to evaluate"
else
  stage held_out "$EVAL_S" TERM "$PY" -m experiments.held_out "${CHECKPOINTS[@]}" --sets test --scenes "$SCENES" \
    --out "$WORK/held_out" "${HELD_ARGS[@]}"
fi
[ -f "$WORK/held_out/rows.jsonl" ] && cp "$WORK/held_out/rows.jsonl" "$OUT/held_out.jsonl"

# 5. The trained run's weights as an exported model folder (Predictor.from_pretrained(folder) loads it).
if [ ! -d "$RUN/checkpoints" ]; then
  skip export - "the train stage left no checkpoint to export"
else
stage export "$EXPORT_S" TERM env RUN="$RUN" EXPORT="$WORK/gpu_model" "$PY" - <<'EOF'
import os, shutil
from oosis_jax.inference.predictor import Predictor, export

pred = Predictor.from_pretrained(os.environ["RUN"])
folder = export(pred.model, pred.config, os.environ["EXPORT"], extra={"run": {"trained_on": "gpu_check.sh"}})
shutil.copy(os.path.join(os.environ["RUN"], "metrics.jsonl"), folder)
print("exported", sorted(os.listdir(folder)))
EOF
fi
if [ -f "$WORK/gpu_model/weights.npz" ]; then
  tar -C "$WORK" -cf "$OUT/gpu_model.tar" gpu_model
  size=$(stat -c %s "$OUT/gpu_model.tar")
  if [ "$size" -gt $((15 * 1024 * 1024)) ]; then
    echo "gpu_model.tar is $size bytes, over 15 MiB: left out"
    rm -f "$OUT/gpu_model.tar"
  fi
fi

summarize --print
echo "=== done in $(( $(date +%s) - START ))s: $(ls "$OUT" | tr '\n' ' ')(work folder $WORK)"
