"""Shared plumbing of the experiment scripts: held-out data, model training, prediction and reports.

The command line and the run ``Setup`` are in ``experiments.flags``; tables in ``oosis_jax.evaluation.tables``.
Each script writes ``results.md`` (its table) and PNG plots under ``runs/<experiment>/`` and prints the table.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from data import examples as examples_lib
from experiments import flags
from experiments.flags import Setup
from oosis_jax.evaluation.tables import strict_json

SYNTHETIC_SIZE = (120, 160)
SMOKE_SIZE = (40, 48)


def held_out_examples(s: Setup) -> list[dict]:
    """``s.limit`` evaluation examples of ``s.split`` (dicts with image, instance_map, classes, edges;
    synthetic ones also ``depths``): synthetic scenes rendered with the split's seeds (never seen in
    training), KINS/COCOA read from their build at the registry's test resolution."""
    if s.dataset == "synthetic":
        return examples_lib.synthetic_scenes(s.split, s.limit, SMOKE_SIZE if s.smoke else SYNTHETIC_SIZE)
    return examples_lib.load_examples(s.dataset, s.split, s.data_dir, s.limit)


def default_method() -> str:
    """The project's CRF minimiser in every experiment: ``crf.solve`` (never a higher energy than the paper's
    jump moves; ``experiments.predict`` and ``experiments.evaluate`` take ``--method jump`` for the paper's)."""
    return "solve"


def train_config(s: Setup, **overrides):
    """The training preset for this run: ``smoke`` when ``--smoke`` (on ``s.dataset``, with its classes), else the
    dataset's (``synthetic`` is the reduced CPU model), with ``overrides`` (top-level `TrainConfig` fields)."""
    import dataclasses

    from oosis_jax.training.configs import get_config, num_classes

    extra = {} if s.dataset == "synthetic" else {"data_dir": s.data_dir}
    if s.smoke:  # the preset is synthetic; it trained on synthetic scenes under a --dataset kins|cocoa report
        config = get_config("smoke", **overrides)
        if s.dataset == "synthetic":
            return config
        model = dataclasses.replace(config.model, num_classes=num_classes(s.dataset))
        return config.replace(dataset=s.dataset, model=model, **extra)
    return get_config(s.dataset, **extra, **overrides)


class TrainingBudgetReached(Exception):
    """Raised from the training loop's step hook once the time budget is spent (at a checkpoint step)."""


def train_model(config, workdir, max_seconds: float | None = None, sources=None,
                program: str = "experiments") -> tuple[object, float, int]:
    """Train (resuming from ``workdir``'s checkpoints); return ``(model, seconds spent in this call, steps)``
    where ``steps`` is the step of the checkpoint the model comes from. ``sources``: optional (train,
    validation) random-access example sources replacing the config's dataset (``oosis_jax.training.loop.train``).
    A run that cannot start or go on for a reason of the user's (``workdir`` holds a run of another config, e.g.
    an earlier ``--smoke`` run's; damaged checkpoints; a diverged loss) is `flags.UsageError` of ``program``; a
    preemption notice (SIGTERM) saves the step under way and ends the command with one line and exit status 143,
    as ``experiments.train`` (the same command resumes the training).

    With ``max_seconds``, training stops at the first checkpoint step after that many seconds and the model
    of that checkpoint is returned (the poly learning rate has then not decayed to 0; rerunning resumes).
    On a CPU-only machine JAX first gets one device per core (`oosis_jax.devices.use_cpu_cores`, as
    ``experiments.train`` does; when JAX has not computed yet): the table presets' step took 0.10 s on 2 devices
    against 0.11-0.12 s on one (RESULTS.md, Tab. 3a).
    """
    from oosis_jax.devices import use_cpu_cores
    from oosis_jax.training import loop as train
    from oosis_jax.training.preemption import Preempted

    use_cpu_cores(config.batch_size)
    start = time.time()

    def stop_when_spent(step: int) -> None:
        if (max_seconds is not None and time.time() - start > max_seconds
                and step % config.checkpoint_every == 0):
            raise TrainingBudgetReached(step)

    try:
        train.train(config, os.fspath(workdir), on_step=stop_when_spent, sources=sources)
    except TrainingBudgetReached as stopped:
        print(f"time budget of {max_seconds / 60:.1f} min spent: stopped after step {stopped.args[0]}")
    except train.USER_ERRORS as err:
        raise flags.UsageError(program, f"training in {workdir}: {type(err).__name__}: {err}") from err
    except Preempted as err:  # saved; the table scripts ended in a traceback and status 1 here
        print(f"\n{program}: {err}", file=sys.stderr, flush=True)
        raise SystemExit(Preempted.EXIT_STATUS) from None
    model, _, step = train.restore_run(os.fspath(workdir))
    return model, time.time() - start, step


def fitted_steps(seconds_per_step: float, seconds: float, cap: int, every: int, margin: float = 0.92) -> int:
    """The most steps of ``seconds_per_step`` that fit in ``margin * seconds``, rounded down to a multiple
    of ``every`` (the checkpoint interval) and clipped to ``[every, cap]``."""
    if not (seconds_per_step > 0 and seconds > 0 and cap >= every >= 1 and 0 < margin <= 1):
        raise ValueError(f"need positive seconds_per_step ({seconds_per_step}) and seconds ({seconds}), "
                         f"cap ({cap}) >= every ({every}) >= 1 and margin ({margin}) in (0, 1]")
    steps = int(margin * seconds / seconds_per_step) // every * every
    return min(max(steps, every), cap)


def seconds_per_step(config, workdir: str | os.PathLike, steps: int = 150, warmup: int = 30) -> float:
    """Measured wall seconds of one training step of ``config`` on this machine, input pipeline included: the
    first ``steps`` or so steps of a run of ``config`` in ``workdir`` (which must not exist yet), the first
    ``warmup`` or so (compilation) not timed. Both are rounded up to multiples of ``config.log_every``, the
    steps at which the loop waits for the device, so that the clock reads finished work. The run stops with a
    checkpoint at the last timed step, so that training resumes after the timed steps instead of repeating
    them; no evaluation runs within them, and its ``config.json`` has ``checkpoint_every`` and ``eval_every``
    set for that."""
    import math

    from oosis_jax.training import loop as train

    if not 0 < warmup < steps:
        raise ValueError(f"need 0 < warmup ({warmup}) < steps ({steps})")
    every = config.log_every
    warmup = math.ceil(warmup / every) * every
    steps = max(math.ceil(steps / every) * every, warmup + every)
    if not steps < config.num_steps:
        raise ValueError(f"{config.name}: {steps} timed steps need num_steps ({config.num_steps}) above them")
    if os.path.exists(workdir):
        raise ValueError(f"{workdir} exists: the timed steps start a new run")
    times = {}

    class Timed(Exception):
        """Stops the run once the timed steps and their checkpoint are done."""

    def clock(step: int) -> None:
        times[step] = time.perf_counter()
        if step == steps:
            raise Timed

    try:
        train.train(config.replace(checkpoint_every=steps, eval_every=steps + 1), os.fspath(workdir), on_step=clock)
    except Timed:
        pass
    return (times[steps] - times[warmup]) / (steps - warmup)


# the folder of `fitted_to_budget`'s timed steps: the run's folder name with this suffix
TIMING_SUFFIX = ".timing"


def fitted_to_budget(config, workdir: Path, seconds: float, reserve_steps: int = 0,
                     timed_steps: int = 150, reserve_seconds: float = 0.0) -> tuple[object, float]:
    """``(config with num_steps fitted to seconds, seconds left for training)``. The step time of ``config`` is
    measured on this machine by the run's first steps (`seconds_per_step`, at least ``timed_steps``,
    rounded up to the checkpoint interval), kept in ``workdir`` so that training resumes after them; the steps
    that fit in the rest of ``seconds``, less the time kept for the work after training (``reserve_steps`` step
    times, or ``reserve_seconds`` if more), are added (`fitted_steps`, at most ``config.num_steps`` in
    all). The timed steps learn on the poly schedule of ``config.num_steps``, the cap, not of the fitted length
    (`experiments.demo`'s: at most 4.5 % more learning rate, at step 200 of 10000 against about 3000). A run
    already in ``workdir`` is resumed with the steps it was started with, and ``reserve_seconds`` kept for the
    work after training (its step time is not measured again, so ``reserve_steps`` is not counted)."""
    import shutil

    from oosis_jax.training import checkpointing

    if (workdir / checkpointing.CONFIG_FILE).exists():
        steps = checkpointing.read_config(str(workdir)).num_steps
        print(f"[train] resuming the run in {workdir} ({steps} steps)")
        return config.replace(num_steps=steps), max(seconds - reserve_seconds, 1.0)
    if workdir.exists() and any(workdir.iterdir()):
        raise ValueError(f"{workdir} holds files but no run config ({checkpointing.CONFIG_FILE}): not a run to "
                         f"resume; remove it or pick another output folder")
    if not config.num_steps:
        raise ValueError(f"{config.name}: fitting the steps to a budget needs num_steps (the most steps) set")
    every = config.checkpoint_every
    timed = -(-timed_steps // every) * every
    if config.num_steps < timed + every:
        raise ValueError(f"{config.name}: num_steps ({config.num_steps}) leaves no checkpoint interval ({every}) "
                         f"after the {timed} timed steps")
    start = time.time()
    # timed in a sibling folder that becomes the run only once its config says the fitted length, so that an
    # interrupted measurement is measured again rather than resumed with the cap's length
    timing = workdir.with_name(workdir.name + TIMING_SUFFIX)
    shutil.rmtree(timing, ignore_errors=True)
    print(f"[train] timing the run's first {timed} steps on this machine (kept: training resumes after them)")
    # the first fifth (compilation) untimed: 40, rounded up to 50, of the demo's 200
    per_step = seconds_per_step(config, timing, steps=timed, warmup=max(timed // 5, 1))
    done = checkpointing.latest_step(str(timing))
    reserve = max(reserve_steps * per_step, reserve_seconds)
    left = max(seconds - (time.time() - start) - reserve, 1.0)
    steps = done + fitted_steps(per_step, left, config.num_steps - done, every)
    fitted = config.replace(num_steps=steps)
    checkpointing.write_config(str(timing), fitted, replace=True)  # over the timed run's own (the cap's length)
    if workdir.exists():
        workdir.rmdir()
    timing.rename(workdir)
    print(f"[train] {per_step * 1000:.0f} ms per step measured over the first {done} steps (kept): {steps} steps "
          f"fit in the {seconds / 60:.1f}-min budget" + (f" ({reserve / 60:.1f} min kept for the work after "
                                                         f"training)" if reserve else ""))
    return fitted, left


def predictor(source, s: Setup, config=None):
    """An `oosis_jax.Predictor` running the CRF ``default_method()`` on ``s.processes`` workers.

    ``source``: a trained model (a ``PSPNet``, with its ``config``; the paper's CRF options), anything
    ``Predictor.from_pretrained`` takes (a run's work directory with the paper's CRF options, an exported
    folder, a shipped name with the CRF options of its card), or a predictor made here (returned as it is).
    """
    from oosis_jax import Predictor

    if isinstance(source, Predictor):
        return source
    options = dict(method=default_method(), processes=s.processes)
    if isinstance(source, (str, os.PathLike)):
        return Predictor.from_pretrained(source, **options)
    return Predictor(source, config, **options)


def checkpoint_predictor(checkpoint: str | None, s: Setup):
    """The `predictor` of ``--checkpoint`` (None without one), for a script to load before any other work: a
    missing, damaged or unknown model is one line naming it and ``s.program`` (`flags.loading`), not a traceback
    after minutes.
    The scripts' ``run(s, checkpoint)`` functions take it, or anything else `predictor` takes."""
    if checkpoint is None:
        return None
    with flags.loading(s.program, "--checkpoint", checkpoint):
        return predictor(checkpoint, s)


def predict(source, examples: Sequence[dict], s: Setup, config=None) -> list:
    """`oosis_jax.inference.instances.Prediction` for each example's image (``source`` as in `predictor`)."""
    return predictor(source, s, config).predict_many([x["image"] for x in examples], progress=s.progress)


def heads(source, examples: Sequence[dict], s: Setup) -> list[dict]:
    """The network head probabilities ``dict(s, b, e)`` of each example's image (``source`` as in `predictor`)."""
    return predictor(source, s).heads([x["image"] for x in examples], progress=s.progress)


def hardware() -> str:
    import jax

    from crf.batch import usable_cores

    cores = usable_cores()
    total = f" of {os.cpu_count()}" if cores != os.cpu_count() else ""
    return f"{platform.machine()} {cores}{total} CPU cores, JAX on {jax.default_backend()}"


def report(s: Setup, title: str, tables: str, notes: str = "", data: dict | None = None,
           plots: Sequence[Path] = (), *, images: int) -> Path:
    """Write ``results.md`` (and ``results.json`` if ``data``), print the tables and where everything is.
    ``images``: how many images of ``s.split`` were evaluated (fewer than ``s.limit`` in a smaller split)."""
    header = (f"# {title}\n\ndataset: {s.dataset}{' (smoke)' if s.smoke else ''}, split `{s.split}`, {images} "
              "images\n\n")
    path = s.out / "results.md"
    path.write_text(header + tables + ("\n" + notes.strip() + "\n" if notes else ""))
    if data is not None:
        (s.out / "results.json").write_text(strict_json(data, indent=1))
    print(tables)
    print(f"wrote {path}" + "".join(f"\n      {p}" for p in plots))
    return path


def timed(fn: Callable, *args, **kwargs):
    """``(fn(*args, **kwargs), seconds)``."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start
