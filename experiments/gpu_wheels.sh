#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the wheels that experiments/gpu_check.sh installs on a lent GPU
# machine: Python 3.12, x86-64 Linux, no network. Its image already has jax, flax, optax, orbax, numba, numpy,
# scipy, pillow, matplotlib, tqdm, absl-py, etils, cloudpickle, protobuf; it lacks what is pinned below.
#
#     bash experiments/gpu_wheels.sh          # -> .whl/*.whl (ignored by git: /.whl/ in .gitignore)
#
# Only what the GPU check's path imports (bench_train, train on on-the-fly synthetic scenes with data_dir
# None, held_out) is carried: grain (oosis_jax.training.input_pipeline imports it at module level), which
# imports array_record (grain._src.python.data_sources) and portpicker (process_prefetch) at module level,
# and pycocotools (oosis_jax.evaluation.coco_map, oosis_jax.inference.files). tensorflow-datasets is only
# imported by the tfds builders (data/*/dataset_builder.py, data/synthetic/tfds_builder.py, data/features.py)
# and data.loading, which that path never reaches, so it is not carried.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DEST=${DEST:-.whl}
WHEELS=(
  grain==0.2.18
  array-record==0.8.6
  portpicker==1.6.0
  pycocotools==2.0.11
)
mkdir -p "$DEST"
rm -f "$DEST"/*.whl
platforms=()
for tag in manylinux_2_39 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 \
           manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$DEST" "${WHEELS[@]}"
ls -l "$DEST"/*.whl | awk '{printf "%8.2f MiB  %s\n", $5 / 1048576, $NF}'
total=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
printf 'total %.2f MiB in %s\n' "$(echo "$total / 1048576" | bc -l)" "$DEST"
if [ "$total" -gt $((40 * 1024 * 1024)) ]; then
  echo "error: wheels exceed 40 MiB (the device call carries at most 64 MiB in all)" >&2
  exit 1
fi
