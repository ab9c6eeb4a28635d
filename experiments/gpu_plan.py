"""Batch size and steps of `gpu_check.sh`'s training run, sized so that its poly schedule ends inside the stage.

    python -m experiments.gpu_plan --train-seconds 120 --out plan.env [--loader-processes N] [--smoke]

Measures the images per second of ``synthetic_long``'s training stream as the run will load it (worker processes
by `loop.loader_processes`, unless ``--loader-processes`` says otherwise; `experiments.bench_loader`), then picks
the largest batch of 32/16/8 at which the recipe's steps fit what the stage can expect to see, or, failing that,
fewer steps of batch 8 (`plan`). Writes ``BATCH``, ``STEPS``, ``THREADS`` and ``RATE`` lines for the shell.
"""

from __future__ import annotations

import argparse

from experiments.bench_loader import images_per_second, training_stream
from experiments.flags import non_negative_int, positive_float
from crf.batch import usable_cores
from oosis_jax.training import loop
from oosis_jax.training.configs import get_config

# Seconds of the stage that are not training steps: start-up, the loader's workers, compilation, the last
# validation and checkpoint (on the H200 the first step came about 45 s into the stage, and a fresh machine
# compiles the boundary metric's numba code in the last validation).
STARTUP_S = 70.0
# The share of the loader's measured rate the steps can expect: checkpoint saves, and a step slower than the loader.
USABLE = 0.5


def plan(rate: float, train_seconds: float, recipe_steps: int) -> tuple[int, int]:
    """(batch, steps): the largest batch of 32/16/8 at which ``recipe_steps`` steps take at most the images the
    stage can expect (``USABLE * rate`` over ``train_seconds - STARTUP_S``), else batch 8 and as many steps as fit,
    in hundreds, at least 100."""
    usable = USABLE * rate * max(train_seconds - STARTUP_S, 0.0)
    for batch in (32, 16, 8):
        if recipe_steps * batch <= usable:
            return batch, recipe_steps
    return 8, max(100, int(usable / 8) // 100 * 100)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.gpu_plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-seconds", type=positive_float, required=True, help="the train stage's limit")
    parser.add_argument("--out", required=True, help="the plan's shell variables are written here")
    parser.add_argument("--loader-processes", type=non_negative_int,
                        help="the run's loader_processes (default: the config's choice for this backend)")
    parser.add_argument("--smoke", action="store_true", help="a 1 s measurement and a 6-step plan of batch 2")
    args = parser.parse_args(argv)
    config = get_config("synthetic_long")
    if args.loader_processes is not None:
        config = config.replace(loader_processes=args.loader_processes)
    threads, processes = usable_cores(), loop.loader_processes(config)
    _, dataset = training_stream(config.replace(batch_size=8))
    rate = images_per_second(dataset, 1.0 if args.smoke else 4.0, threads, processes)
    batch, steps = (2, 6) if args.smoke else plan(rate, args.train_seconds, config.num_steps)
    loader = f"{processes} worker processes" if processes else f"{threads} threads"
    print(f"input pipeline {rate:.0f} img/s in {loader}; {args.train_seconds:.0f}s for the stage -> batch {batch}, "
          f"{steps} steps (recipe: batch {config.batch_size}, {config.num_steps} steps)")
    with open(args.out, "w") as f:
        f.write(f"BATCH={batch}\nSTEPS={steps}\nTHREADS={threads}\nRATE={rate:.0f}\n")


if __name__ == "__main__":
    main()
