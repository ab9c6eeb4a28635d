"""Shared plumbing of the experiment scripts: command line, held-out data, model training, tables, reports.

Every experiment is ``python -m experiments.NAME [--dataset synthetic|kins|cocoa] [--smoke] [--out DIR]``:
synthetic by default (scenes rendered on the fly, no build), KINS/COCOA read through ``data.loading`` from
``--data-dir``. ``--smoke`` shrinks everything to a seconds-long run (the tests use it). Each script writes
``results.md`` (its table) and PNG plots under ``runs/<experiment>/`` and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

DATASETS = ("synthetic", "kins", "cocoa")
# Held-out synthetic scenes use seeds far from the training (0..) and validation (10**6..) seeds.
HELD_OUT_SEED = 2_000_000
SYNTHETIC_SIZE = (120, 160)
SMOKE_SIZE = (40, 48)


@dataclasses.dataclass(frozen=True)
class Setup:
    """What one experiment run works on: the dataset, how many held-out images, the output folder."""

    dataset: str
    smoke: bool
    out: Path
    data_dir: str
    limit: int
    processes: int | None


def parser(description: str, name: str, default_limit: int = 50) -> argparse.ArgumentParser:
    """The common command line; scripts add their own flags before calling ``setup``."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic", choices=DATASETS)
    p.add_argument("--smoke", action="store_true", help="tiny seconds-long run (CI)")
    p.add_argument("--out", default=os.path.join("runs", name), help="output folder")
    p.add_argument("--data-dir", default="~/tensorflow_datasets", help="tfds folder of kins/cocoa")
    p.add_argument("--limit", type=int, default=default_limit, help="held-out images to evaluate")
    p.add_argument("--processes", type=int, default=None, help="CRF worker processes (default: all cores)")
    return p


def setup(args: argparse.Namespace) -> Setup:
    if args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    limit = min(args.limit, 4) if args.smoke else args.limit
    processes = 1 if args.smoke else args.processes
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return Setup(args.dataset, args.smoke, out, args.data_dir, limit, processes)


def num_classes(dataset: str) -> int:
    from data import loading

    return len(loading.dataset_module(dataset).CLASS_NAMES)


def held_out_examples(s: Setup) -> list[dict]:
    """``s.limit`` evaluation examples (dicts with image, instance_map, classes, edges; synthetic ones also
    ``depths``). Synthetic scenes never seen in training; KINS/COCOA: their test split."""
    if s.dataset == "synthetic":
        from data.synthetic import make_scene

        size = SMOKE_SIZE if s.smoke else SYNTHETIC_SIZE
        return [make_scene(HELD_OUT_SEED + i, *size) for i in range(s.limit)]
    from data import examples as eval_data

    return eval_data.load_examples(s.dataset, "test", s.data_dir, s.limit)


def default_method() -> str:
    """The project's CRF minimiser in every experiment: ``crf.solve`` (never a higher energy than the paper's
    jump moves; ``experiments.predict`` and ``experiments.evaluate`` take ``--method jump`` for the paper's)."""
    return "solve"


def method_name(method) -> str:
    return method if isinstance(method, str) else getattr(method, "__name__", str(method))


def train_config(s: Setup, **overrides):
    """The training preset for this run: ``smoke`` when ``--smoke``, else the dataset's (``synthetic`` is
    the reduced CPU model), with ``overrides`` (top-level `TrainConfig` fields)."""
    from oosis_jax.training.configs import get_config

    if s.smoke:
        return get_config("smoke", **overrides)
    extra = {} if s.dataset == "synthetic" else {"data_dir": s.data_dir}
    return get_config(s.dataset, **extra, **overrides)


class TrainingBudgetReached(Exception):
    """Raised from the training loop's step hook once the time budget is spent (at a checkpoint step)."""


def train_model(config, workdir, max_seconds: float | None = None, sources=None) -> tuple[object, float, int]:
    """Train (resuming from ``workdir``'s checkpoints); return ``(model, seconds spent in this call, steps)``
    where ``steps`` is the step of the checkpoint the model comes from. ``sources``: optional (train,
    validation) random-access example sources replacing the config's dataset (``oosis_jax.train.train``).

    With ``max_seconds``, training stops at the first checkpoint step after that many seconds and the model
    of that checkpoint is returned (the poly learning rate has then not decayed to 0; rerunning resumes).
    """
    from oosis_jax.training import loop as train

    start = time.time()

    def stop_when_spent(step: int) -> None:
        if (max_seconds is not None and time.time() - start > max_seconds
                and step % config.checkpoint_every == 0):
            raise TrainingBudgetReached(step)

    try:
        train.train(config, os.fspath(workdir), on_step=stop_when_spent, sources=sources)
    except TrainingBudgetReached as stopped:
        print(f"time budget of {max_seconds / 60:.1f} min spent: stopped after step {stopped.args[0]}")
    model, _ = train.restore_model(os.fspath(workdir))
    return model, time.time() - start, latest_step(workdir)


def latest_step(workdir) -> int:
    """The largest step saved under ``workdir/checkpoints`` (orbax names step folders by number)."""
    folder = Path(workdir) / "checkpoints"
    steps = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {folder}")
    return max(steps)


def predict(model, examples: Sequence[dict], s: Setup, method=None, **kwargs) -> list:
    """`oosis_jax.prediction.Prediction` for each example's image (network, then the CRF)."""
    from oosis_jax.inference import network as predict_lib

    return predict_lib.predict_images(model, [x["image"] for x in examples], method=method or default_method(),
                                      processes=s.processes, progress=not s.smoke, **kwargs)


def markdown(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; floats printed with one decimal, everything else with ``str``."""
    def cell(v):
        return f"{v:.1f}" if isinstance(v, (float, np.floating)) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def percent(x: float) -> float:
    return 100.0 * float(x)


def hardware() -> str:
    import jax

    return f"{platform.machine()} {os.cpu_count()} CPU cores, JAX on {jax.default_backend()}"


def report(s: Setup, title: str, tables: str, notes: str = "", data: dict | None = None,
           plots: Sequence[Path] = ()) -> Path:
    """Write ``results.md`` (and ``results.json`` if ``data``), print the tables and where everything is."""
    header = f"# {title}\n\ndataset: {s.dataset}{' (smoke)' if s.smoke else ''}, {s.limit} held-out images\n\n"
    path = s.out / "results.md"
    path.write_text(header + tables + ("\n" + notes.strip() + "\n" if notes else ""))
    if data is not None:
        (s.out / "results.json").write_text(json.dumps(data, indent=1, default=_jsonable))
    print(tables)
    print(f"wrote {path}" + "".join(f"\n      {p}" for p in plots))
    return path


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def timed(fn: Callable, *args, **kwargs):
    """``(fn(*args, **kwargs), seconds)``."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


SUMMARY_HEADERS = ("Model", "mAP .5:.95", "WC", "OAIR recall@0.5", "OAIR accuracy@0.5", "% inst. in cycles")


def summary_row(name: str, results: dict) -> list:
    """One row under ``SUMMARY_HEADERS`` from `oosis_jax.evaluation.evaluate` results (in %)."""
    at_05 = results["oair_iou"]
    return [name, percent(results["mask"]["mAP"]), percent(results["weighted_coverage"]),
            percent(at_05["recall"][0]), percent(at_05["accuracy"][0]), float(results["cycle_percent"])]


BOUNDARY_HEADERS = ("Model", "oriented ODS", "oriented OIS", "oriented AP", "boundary AP")


def boundary_row(name: str, results: dict) -> list:
    """One row under ``BOUNDARY_HEADERS`` (NMS-applied oriented occlusion boundaries, Tab. 3/5), in %."""
    o, p = results["boundaries"]["oriented"], results["boundaries"]["plain"]
    return [name, percent(o["ODS"]), percent(o["OIS"]), percent(o["AP"]), percent(p["AP"])]


def noisy_heads(example: dict, n_classes: int, noise: float, seed: int = 0) -> dict:
    """Ground-truth heads degraded to look like a network's: ``dict(s, b, e)`` float32 (Tab. 6 without a model).

    s: softmax of the log of the blurred (Gaussian, 1 px) one-hot semantic map, floored at 2 %, plus
    i.i.d. Gaussian logit noise of std ``noise``. b: the blurred boundary target rescaled to peak near 1,
    times ``1 + noise / 2 * N(0, 1)``. e: the target orientation (uniform where it has none) plus uniform
    noise of size ``noise``, renormalised. ``noise = 0`` gives blurred ground truth.
    """
    from scipy.ndimage import gaussian_filter

    from oosis_jax.inference import instances as prediction

    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be finite and >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    gt = prediction.ground_truth_heads(example["instance_map"], example["classes"], example["edges"], n_classes)
    logits = np.log(gaussian_filter(gt["s"], sigma=(1, 1, 0)) + 0.02) + noise * rng.standard_normal(gt["s"].shape)
    s = np.exp(logits - logits.max(-1, keepdims=True))
    b = gaussian_filter(gt["b"], sigma=1) * 2.5 * (1 + noise / 2 * rng.standard_normal(gt["b"].shape))
    e = np.where(gt["e"].sum(-1, keepdims=True) > 0, gt["e"], 0.25) + noise * rng.random(gt["e"].shape)
    return {"s": (s / s.sum(-1, keepdims=True)).astype(np.float32), "b": np.clip(b, 0, 1).astype(np.float32),
            "e": (e / e.sum(-1, keepdims=True)).astype(np.float32)}


def add_training_args(p: argparse.ArgumentParser, minutes: float = 10.0) -> argparse.ArgumentParser:
    """Flags of the experiments that train their own models (one per variant)."""
    p.add_argument("--steps", type=int, default=None, help="training steps per variant (default: preset's)")
    p.add_argument("--train-minutes", type=float, default=minutes,
                   help="stop each variant's training at the first checkpoint after this many minutes")
    p.add_argument("--variants", nargs="+", default=None, help="train and compare only these variants")
    return p


def variant(part: str, **fields) -> Callable:
    """A variant for `train_variants`: ``f(TrainConfig) -> TrainConfig`` replacing ``fields`` of the config's
    ``part`` dataclass (e.g. ``variant("model", head="entangled")``, ``variant("loss", boundary_loss="wce")``)."""
    return lambda config: config.replace(**{part: dataclasses.replace(getattr(config, part), **fields)})


def train_variants(s: Setup, variants: dict[str, Callable], args: argparse.Namespace) -> dict[str, dict]:
    """Train one model per variant and evaluate it on the held-out images (every metric).

    ``variants``: name -> ``f(TrainConfig) -> TrainConfig`` changing what the experiment compares. Each is
    trained in ``s.out/train/<i>`` (resumable) for ``args.steps`` steps or ``args.train_minutes``; smoke
    runs train 2 steps. Returns name -> dict(results, train_seconds, steps, config).
    """
    from oosis_jax import evaluation

    chosen = list(variants) if args.variants is None else args.variants
    unknown = [v for v in chosen if v not in variants]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose among {list(variants)}")
    examples = held_out_examples(s)
    steps = 2 if s.smoke else args.steps
    out = {}
    for i, name in enumerate(chosen):
        config = variants[name](train_config(s))
        config = config.replace(name=f"{s.out.name}_{i}", num_steps=steps or config.num_steps,
                                checkpoint_every=1 if s.smoke else 50, eval_every=10**9)
        print(f"training variant {name!r}: up to {config.num_steps} steps")
        budget = None if s.smoke else 60 * args.train_minutes
        model, seconds, trained = train_model(config, s.out / "train" / str(i), budget)
        predictions = predict(model, examples, s)
        out[name] = {"results": evaluation.evaluate(predictions, examples, progress=False),
                     "train_seconds": seconds, "steps": trained, "config": config.to_dict()}
    return out


def training_note(trained: dict[str, dict]) -> str:
    """Model size, steps and time of each variant, and the hardware (for results.md and RESULTS.md)."""
    lines = [f"Hardware: {hardware()}."]
    for name, t in trained.items():
        m = t["config"]["model"]
        lines.append(f"- {name}: PSPNet blocks {tuple(m['stage_blocks'])} width {m['width']}, {t['steps']} steps "
                     f"x batch {t['config']['batch_size']}, {t['train_seconds'] / 60:.1f} min in this call")
    return "\n".join(lines)


def compare_boundary_variants(argv, description: str, name: str, title: str, variants: dict) -> dict:
    """The whole of a boundary-model comparison (Tab. 3a, Tab. 5): train every variant, evaluate it, and
    report oriented ODS/OIS/AP and boundary AP with the precision-recall plot. Returns the trained dict."""
    from oosis_jax import evaluation

    args = add_training_args(parser(description, name, default_limit=30)).parse_args(argv)
    s = setup(args)
    trained = train_variants(s, variants, args)
    rows = [boundary_row(variant, t["results"]) for variant, t in trained.items()]
    plots = evaluation.plot_curves({n: t["results"] for n, t in trained.items()}, s.out)
    report(s, title, markdown(BOUNDARY_HEADERS, rows), training_note(trained), data=trained, plots=plots)
    return trained
