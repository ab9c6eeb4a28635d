#!/usr/bin/env bash
# The GPU check of issue 14 item 6: one command, about 8 minutes on one H100/H200.
#
#     bash experiments/gpu_wheels.sh             # once, here (PyPI): grain, array-record, portpicker, pycocotools -> .whl/
#     bash experiments/gpu_check.sh              # on the GPU machine (installs .whl/*.whl first when present)
#     bash experiments/gpu_check.sh --cpu-smoke  # the same stages with tiny settings, ~2-3 minutes on a CPU
#
# Stages, each under `timeout` (seconds overridable by the environment variables named), a failed or timed
# out stage is recorded and the next one still runs:
#   1. bench_infer (INFER_S=60):  python -m experiments.bench_train --batch-sizes   (ResNet-50 PSPNet, bf16,
#                                 one 2048x615 forward pass)
#   2. bench_train (BENCH_S=150): python -m experiments.bench_train --no-inference  (training images/s at
#                                 225x225, bf16, batch 8/16/32)
#   3. train       (TRAIN_S=165): python -m experiments.train --config synthetic_long: the shipped model's
#                                 recipe; the batch (8/16/32) and the step count are chosen from a measured
#                                 input-pipeline rate so that the poly schedule ends inside the budget
#                                 (SIGINT at the limit keeps the last checkpoint, every 100 steps)
#   4. held_out    (EVAL_S=75):   python -m experiments.held_out --checkpoint gpu=WORKDIR --sets test --scenes 40
#                                 (and the shipped model's row, when oosis_jax/weights/synthetic exists)
#   5. export      (EXPORT_S=25): oosis_jax.inference.predictor.export of the trained run -> gpu_model.tar
# Writes to $OUT (default runs/gpu): summary.md, bench.txt, train_metrics.jsonl, held_out.jsonl, log.txt,
# metrics.png, gpu_model.tar (weights.npz + config.json + metrics.jsonl of the run), at most 8 files.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1

SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --cpu-smoke) SMOKE=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
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
exec > >(tee -a "$LOG") 2>&1

# The project's venv when there is one (it has everything), else python3 plus the carried wheels it lacks.
if [ -x .venv/bin/python ]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
if ! "$PY" -c "import grain, pycocotools, array_record, portpicker" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    echo "warning: $PY lacks grain/pycocotools and there is no .whl/ (run experiments/gpu_wheels.sh here first)"
  fi
fi
if [ "$SMOKE" = 1 ]; then
  INFER_S=${INFER_S:-90}; BENCH_S=${BENCH_S:-90}; TRAIN_S=${TRAIN_S:-150}; EVAL_S=${EVAL_S:-120}; EXPORT_S=${EXPORT_S:-60}
  BENCH_ARGS=(--smoke); SCENES=${SCENES:-2}
else
  INFER_S=${INFER_S:-60}; BENCH_S=${BENCH_S:-150}; TRAIN_S=${TRAIN_S:-165}; EVAL_S=${EVAL_S:-75}; EXPORT_S=${EXPORT_S:-25}
  BENCH_ARGS=(); SCENES=${SCENES:-40}
fi
RUN="$WORK/train"
STATUS="$WORK/status.tsv"
: >"$STATUS"

# stage NAME SECONDS SIGNAL COMMAND...: runs COMMAND under timeout, records "NAME rc seconds" and never fails.
stage() {
  local name=$1 limit=$2 signal=$3 start rc
  shift 3
  echo "=== $name (limit ${limit}s): $*"
  start=$(date +%s)
  set +e
  timeout -s "$signal" -k 20 "$limit" "$@"
  rc=$?
  set -e
  local took=$(( $(date +%s) - start ))
  case $rc in
    0) echo "=== $name ok in ${took}s" ;;
    124|137) echo "=== $name TIMED OUT after ${took}s (rc $rc)" ;;
    *) echo "=== $name FAILED with rc $rc after ${took}s" ;;
  esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$took" "$limit" >>"$STATUS"
  return 0
}

echo "=== environment"
date -u
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi") \
  | tee "$WORK/gpu.txt"
"$PY" - <<'EOF' 2>&1 | tee "$WORK/env.txt" || true
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

# 3. The shipped model's recipe, batch and steps planned to fit TRAIN_S.
PLAN="$WORK/plan.env"
stage train_plan 60 TERM env SMOKE="$SMOKE" TRAIN_S="$TRAIN_S" PLAN="$PLAN" "$PY" - <<'EOF'
"""Pick batch and steps for the synthetic_long run from the measured input-pipeline rate (img/s)."""
import os, time
from oosis_jax.training import input_pipeline as ip
from oosis_jax.training.configs import get_config

config = get_config("synthetic_long")
threads = os.cpu_count() or 8
source = ip.SyntheticScenes(config.synthetic_scenes, config.synthetic_size)
batches = ip.iterate(ip.train_dataset(source, config.augment, batch_size=8, seed=0), 0, threads)
next(batches)
start, count = time.perf_counter(), 0
while time.perf_counter() - start < (1.0 if os.environ["SMOKE"] == "1" else 4.0):
    count += len(next(batches)["image"])
rate = count / (time.perf_counter() - start)
budget = float(os.environ["TRAIN_S"]) - 45.0          # start-up, compilation, validation, last checkpoint
usable = 0.7 * rate * budget                          # images the run can expect to see
steps, batch = config.num_steps, 8
for size in (32, 16, 8):
    if steps * size <= usable:
        batch = size
        break
else:
    steps = max(100, int(usable / batch) // 100 * 100)
if os.environ["SMOKE"] == "1":
    steps, batch = 6, 2
print(f"input pipeline {rate:.0f} img/s on {threads} threads; budget {budget:.0f}s -> "
      f"batch {batch}, {steps} steps (recipe: batch {config.batch_size}, {config.num_steps} steps)")
with open(os.environ["PLAN"], "w") as f:
    f.write(f"BATCH={batch}\nSTEPS={steps}\nTHREADS={threads}\nRATE={rate:.0f}\n")
EOF
BATCH=8; STEPS=3000; THREADS=8; RATE=unknown
[ -f "$PLAN" ] && . "$PLAN"
TRAIN_SETS=(--set "batch_size=$BATCH" --set "num_steps=$STEPS" --set "loader_threads=$THREADS"
            --set checkpoint_every=100)
if [ "$SMOKE" = 1 ]; then
  TRAIN_SETS+=(--set log_every=2 --set eval_every=6 --set checkpoint_every=2 --set synthetic_val_scenes=2
               --set eval_examples=2 --set eval_batch_size=2)
fi
rm -rf "$RUN"
# Warm numba's cache for the CRF (held_out's spawned workers load it) on one core while the run trains.
nice -n 10 "$PY" -c "
import numpy as np, crf
rng = np.random.default_rng(0)
sigma = rng.random((24, 32)); occ = rng.random((24, 32, 4)) < 0.1
occ[:, 0, 0] = occ[:, -1, 1] = occ[0, :, 2] = occ[-1, :, 3] = False
crf.instances(crf.solve(sigma, occ)); crf.jump_moves(sigma, occ)
print('numba cache for the CRF warmed')" >"$WORK/numba_warm.txt" 2>&1 &
WARM_PID=$!
stage train "$TRAIN_S" INT "$PY" -m experiments.train --config synthetic_long --workdir "$RUN" "${TRAIN_SETS[@]}"
[ -f "$RUN/metrics.jsonl" ] && cp "$RUN/metrics.jsonl" "$OUT/train_metrics.jsonl"
[ -f "$RUN/metrics.png" ] && cp "$RUN/metrics.png" "$OUT/metrics.png"
wait "$WARM_PID" || echo "numba warm-up failed: $(tail -3 "$WORK/numba_warm.txt")"

# 4. Held-out scenes: the trained run (and the shipped model, for comparison, when it is in the tree).
CHECKPOINTS=(--checkpoint "gpu=$RUN")
[ -f oosis_jax/weights/synthetic/weights.npz ] && CHECKPOINTS+=(--checkpoint shipped=synthetic)
HELD_ARGS=()
[ "$SMOKE" = 1 ] && HELD_ARGS=(--processes 2)
stage held_out "$EVAL_S" TERM "$PY" -m experiments.held_out "${CHECKPOINTS[@]}" --sets test --scenes "$SCENES" \
  --out "$WORK/held_out" "${HELD_ARGS[@]}"
[ -f "$WORK/held_out/rows.jsonl" ] && cp "$WORK/held_out/rows.jsonl" "$OUT/held_out.jsonl"

# 5. The trained run's weights as an exported model folder (Predictor.from_pretrained(folder) loads it).
stage export "$EXPORT_S" TERM env RUN="$RUN" EXPORT="$WORK/gpu_model" "$PY" - <<'EOF'
import os, shutil
from oosis_jax.inference.predictor import Predictor, export

pred = Predictor.from_pretrained(os.environ["RUN"])
folder = export(pred.model, pred.config, os.environ["EXPORT"], extra={"run": {"trained_on": "gpu_check.sh"}})
shutil.copy(os.path.join(os.environ["RUN"], "metrics.jsonl"), folder)
print("exported", sorted(os.listdir(folder)))
EOF
if [ -f "$WORK/gpu_model/weights.npz" ]; then
  tar -C "$WORK" -cf "$OUT/gpu_model.tar" gpu_model
  size=$(stat -c %s "$OUT/gpu_model.tar")
  if [ "$size" -gt $((15 * 1024 * 1024)) ]; then
    echo "gpu_model.tar is $size bytes, over 15 MiB: left out"
    rm -f "$OUT/gpu_model.tar"
  fi
fi

# Summary: stage status, environment, benchmark, training facts, held-out rows.
STATUS="$STATUS" WORK="$WORK" OUT="$OUT" RUN="$RUN" BATCH="$BATCH" STEPS="$STEPS" RATE="$RATE" SMOKE="$SMOKE" \
  "$PY" - <<'EOF' || echo "summary failed"
import json, os
from pathlib import Path

work, out, run = Path(os.environ["WORK"]), Path(os.environ["OUT"]), Path(os.environ["RUN"])
lines = ["# GPU check" + (" (CPU smoke settings)" if os.environ["SMOKE"] == "1" else ""), ""]
for name in ("gpu.txt", "env.txt"):
    if (work / name).exists():
        lines += [f"- {line}" for line in (work / name).read_text().splitlines() if line.strip()]
lines += ["", "| stage | result | seconds | limit |", "|---|---|---|---|"]
for row in (work / "status.tsv").read_text().splitlines():
    name, rc, took, limit = row.split("\t")
    result = "ok" if rc == "0" else ("TIMED OUT" if rc in ("124", "137") else f"FAILED (rc {rc})")
    lines.append(f"| {name} | {result} | {took} | {limit} |")
bench = out / "bench.txt"
if bench.exists():
    lines += ["", "## bench_train (model and dtype on its first line)", "", "```", bench.read_text().rstrip(), "```"]
metrics = run / "metrics.jsonl"
if metrics.exists():
    records = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    losses = [r for r in records if "loss" in r]
    vals = [r for r in records if "val_boundary_ap" in r]
    last = max(r["step"] for r in records)
    lines += ["", "## train --config synthetic_long", "",
              f"- plan: batch {os.environ['BATCH']}, {os.environ['STEPS']} steps (input pipeline "
              f"{os.environ['RATE']} img/s); reached step {last}"]
    if len(losses) >= 2:
        (a, b) = losses[0], losses[-1]
        speed = (b["step"] - a["step"]) * int(os.environ["BATCH"]) / max(b["time"] - a["time"], 1e-9)
        lines.append(f"- {speed:.0f} img/s between steps {a['step']} and {b['step']} "
                     f"({b['time'] - a['time']:.0f}s); loss {a['loss']:.3f} -> {b['loss']:.3f}")
    if vals:
        v = vals[-1]
        lines.append(f"- validation at step {v['step']}: boundary ODS {v['val_boundary_ods']:.3f}, "
                     f"AP {v['val_boundary_ap']:.3f}; oriented ODS {v['val_oriented_ods']:.3f}, "
                     f"AP {v['val_oriented_ap']:.3f}")
rows = out / "held_out.jsonl"
if rows.exists():
    rows = [json.loads(x) for x in rows.read_text().splitlines() if x.strip()]
    if rows:
        keys = list(rows[0])
        lines += ["", "## held_out (synthetic test scenes)", "", "| " + " | ".join(keys) + " |",
                  "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(f"{r[k]:.1f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |"
                  for r in rows]
lines += ["", "Files: " + ", ".join(sorted(p.name for p in out.iterdir() if p.is_file()) + ["summary.md"])]
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo "=== done: $(ls "$OUT" | tr '\n' ' ')(work folder $WORK)"
