"""Input-pipeline throughput: the training images per second the loader prepares, in threads or in processes.

    python -m experiments.bench_loader                                   # synthetic_long's stream, batch 8
    python -m experiments.bench_loader --threads 1 2 8 --processes 2 15 --seconds 8
    python -m experiments.bench_loader --config kins --data-dir ~/tensorflow_datasets
    python -m experiments.bench_loader --smoke                           # seconds (CI check of the script)

Each row iterates the run's own training stream (`input_pipeline.train_dataset` over `loop.open_sources`, the
config's augmentation and batch size) as the training loop does (`loader.iterate`): with N threads of
this process (``loader_processes=0``) or N worker processes (``loader_processes=N``). A row times the batches of
``--seconds`` after its first batch (the start of its workers is left out) and gives the images per second and
the ratio to the first row. The transforms are numpy code that holds the GIL, so threads share about one core;
processes are what a GPU's step needs (`TrainConfig.loader_processes`).
"""

from __future__ import annotations

import argparse
import time

from experiments.flags import parse_noting_given, positive_float, positive_int, refuse_unused
from oosis_jax.training import input_pipeline
from oosis_jax.training import loader
from oosis_jax.training import loop as train
from oosis_jax.training.configs import NAMES, get_config

SMOKE_SETS = {"config": "--config", "data_dir": "--data-dir", "batch_size": "--batch-size", "threads": "--threads",
              "processes": "--processes", "seconds": "--seconds"}


def training_stream(config):
    """``(source, batches)``: ``config``'s training source (`loop.open_sources`) and its stream of one process's
    batches (`input_pipeline.train_dataset`: the config's augmentation, batch size and seed), as the loop makes
    them."""
    source, _ = train.open_sources(config)
    return source, input_pipeline.train_dataset(source, config.augment, batch_size=config.batch_size,
                                                seed=config.seed, num_classes=config.model.num_classes)


def images_per_second(dataset, seconds: float, threads: int = 1, processes: int = 0) -> float:
    """Images per second that ``loader.iterate(dataset, 0, threads, processes)`` yields over ``seconds``
    after its first batch."""
    batches = loader.iterate(dataset, 0, threads, processes)
    try:
        next(batches)
        start, images = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            images += len(next(batches)["image"])
        return images / (time.perf_counter() - start)
    finally:
        batches.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_loader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="synthetic_long", choices=NAMES)
    parser.add_argument("--data-dir", help="tfds data directory of the config's dataset (default: the config's)")
    parser.add_argument("--batch-size", type=positive_int, help="default: the config's")
    parser.add_argument("--threads", type=positive_int, nargs="*", default=[1, 2], help="thread counts to time")
    parser.add_argument("--processes", type=positive_int, nargs="*", default=[1, 2],
                        help="worker process counts to time")
    parser.add_argument("--seconds", type=positive_float, default=6.0, help="timed seconds per row")
    parser.add_argument("--smoke", action="store_true", help="the smoke config, 1 thread and 1 process, 1 s each")
    args, given = parse_noting_given(parser, argv, SMOKE_SETS)
    if args.smoke:
        refuse_unused(parser, given, SMOKE_SETS, "--smoke, which sets the config, the counts and the seconds itself")
        args.config, args.threads, args.processes, args.seconds = "smoke", [1], [1], 1.0
    if not args.threads and not args.processes:
        parser.error("nothing to time: give --threads or --processes a count")
    config = get_config(args.config)
    if args.data_dir:
        config = config.replace(data_dir=args.data_dir)
    if args.batch_size:
        config = config.replace(batch_size=args.batch_size)
    try:
        source, dataset = training_stream(config)
    except ValueError as err:  # e.g. a dataset not built in the folder: the message says how to build it
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(f"config={config.name} batch={config.batch_size} crops={config.augment.crop_size} "
          f"examples={len(source)}")
    print(f"{'loader':<12}{'workers':>8}{'images/s':>12}{'ratio':>8}")
    first = None
    rows = [("threads", n, {"threads": n}) for n in args.threads]
    rows += [("processes", n, {"processes": n}) for n in args.processes]
    for mode, count, kwargs in rows:
        rate = images_per_second(dataset, args.seconds, **kwargs)
        first = first or rate
        print(f"{mode:<12}{count:>8}{rate:>12.1f}{rate / first:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
