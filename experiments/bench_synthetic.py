"""Speed of the synthetic dataset: make_scene per scene, and a full tfds build (target: 1,000 scenes at
256x512 in under a minute on one core).

    taskset -c 0 python -m experiments.bench_synthetic --num 1000
"""

from __future__ import annotations

import argparse
import tempfile
import time

from experiments.flags import positive_int
from data import synthetic
from data.loading import build


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``fn()``; CPU time is robust to a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_make_scene(height: int, width: int, num: int) -> tuple[float, float]:
    """(wall, CPU) seconds of ``make_scene`` over seeds 0..num-1."""
    return _timed(lambda: [synthetic.make_scene(seed, height, width) for seed in range(num)])


def time_build(height: int, width: int, num: int) -> tuple[float, float]:
    """(wall, CPU) seconds to build a train split of ``num`` scenes of one size into a fresh folder."""
    with tempfile.TemporaryDirectory() as folder:
        return _timed(lambda: build("synthetic", folder, num_train=num, num_validation=0, num_test=0,
                                    min_height=height, max_height=height, min_width=width, max_width=width))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_synthetic",
                                     description="synthetic dataset speed")
    parser.add_argument("--num", type=positive_int, default=1000, help="scenes in the timed tfds build")
    parser.add_argument("--scenes", type=positive_int, default=100, help="scenes per make_scene timing")
    args = parser.parse_args(argv)
    print("| what | size | scenes | wall s | CPU s | CPU ms/scene |")
    print("|---|---|---|---|---|---|")
    rows = [("make_scene", h, w, args.scenes, time_make_scene) for h, w in ((128, 256), (256, 512), (375, 1242))]
    rows.append(("tfds build (array_record)", 256, 512, args.num, time_build))
    for what, height, width, num, fn in rows:
        wall, cpu = fn(height, width, num)
        print(f"| {what} | {height}x{width} | {num} | {wall:.1f} | {cpu:.1f} | {cpu / num * 1e3:.1f} |", flush=True)


if __name__ == "__main__":
    main()
