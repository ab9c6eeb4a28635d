"""Experiments that train one model per variant and compare them (Tab. 3a, 3b, 5): flags, training, notes."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable

from experiments import common, flags
from experiments.flags import Setup
from oosis_jax.evaluation.tables import BOUNDARY_HEADERS, boundary_row, markdown, percent


DECODER_VARIANT = "U-Net decoder (beyond the paper)"


def add_training_args(p: argparse.ArgumentParser, minutes: float = 10.0,
                      variants: dict | None = None) -> argparse.ArgumentParser:
    """Flags of the experiments that train their own models; with ``variants`` (one model per variant,
    `train_variants`) also ``--variants``, a choice among their names."""
    p.add_argument("--steps", type=flags.positive_int, default=None, help="training steps (default: preset's)")
    p.add_argument("--train-minutes", type=flags.positive_float, default=minutes,
                   help="stop each training at the first checkpoint after this many minutes")
    if variants is not None:
        p.add_argument("--variants", nargs="+", default=None, choices=list(variants), metavar="NAME",
                       help=f"train and compare only these variants, among {list(variants)}")
    return p


TRAINING_FLAGS = {"steps": "--steps", "train_minutes": "--train-minutes"}  # dest -> flag of `add_training_args`


def parse_training_args(p: argparse.ArgumentParser, argv, untrained_by: tuple[str, str] | None = None
                        ) -> argparse.Namespace:
    """``p.parse_args(argv)`` of a parser with `add_training_args`. `TRAINING_FLAGS` are refused with ``--smoke``,
    which trains 2 steps itself (they were ignored silently), and, first, when ``untrained_by = (dest, mode)``
    names an option that is set and makes the run train nothing (e.g. ``--checkpoint``)."""
    args, given = flags.parse_noting_given(p, argv, list(TRAINING_FLAGS))
    if untrained_by is not None and getattr(args, untrained_by[0]):
        flags.refuse_unused(p, given, TRAINING_FLAGS, untrained_by[1])
    if args.smoke:
        flags.refuse_unused(p, given, TRAINING_FLAGS, "--smoke, which trains 2 steps itself")
    return args


def folder_name(variant: str) -> str:
    """The folder a variant trains in: its name in lower case, each run of other characters one ``_``."""
    return re.sub(r"[^a-z0-9.-]+", "_", variant.lower()).strip("_")


def variant(part: str, **fields) -> Callable:
    """A variant for `train_variants`: ``f(TrainConfig) -> TrainConfig`` replacing ``fields`` of the config's
    ``part`` dataclass (e.g. ``variant("model", head="entangled")``, ``variant("loss", boundary_loss="wce")``)."""
    return lambda config: config.replace(**{part: dataclasses.replace(getattr(config, part), **fields)})


def train_variants(s: Setup, variants: dict[str, Callable], args: argparse.Namespace) -> dict[str, dict]:
    """Train one model per variant and evaluate it on the held-out images (every metric).

    ``variants``: name -> ``f(TrainConfig) -> TrainConfig`` changing what the experiment compares. Each is
    trained in ``s.out/train/<folder_name(name)>`` (resumable, also when another subset of the variants is run)
    for ``args.steps`` steps or ``args.train_minutes``; smoke runs train 2 steps. Returns name -> dict(results,
    train_seconds, steps, config).
    """
    from oosis_jax import evaluation

    chosen = list(variants) if args.variants is None else args.variants
    unknown = [v for v in chosen if v not in variants]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose among {list(variants)}")
    examples = common.held_out_examples(s)
    steps = 2 if s.smoke else args.steps
    out = {}
    for name in chosen:
        config = variants[name](common.train_config(s))
        config = config.replace(name=f"{s.out.name}_{folder_name(name)}", num_steps=steps or config.num_steps,
                                checkpoint_every=1 if s.smoke else 50, eval_every=10**9)
        print(f"training variant {name!r}: up to {config.num_steps} steps")
        budget = None if s.smoke else 60 * args.train_minutes
        model, seconds, trained = common.train_model(config, s.out / "train" / folder_name(name), budget,
                                                     program=s.program)
        predictions = common.predict(model, examples, s, config)
        out[name] = {"results": evaluation.evaluate(predictions, examples, progress=False),
                     "train_seconds": seconds, "steps": trained, "config": config.to_dict()}
    return out


# Beyond the paper's boundary tables: the weighted coverage of the CRF's instances from the same predictions.
WC_HEADER = "WC (CRF)"


def weighted_coverage(results: dict) -> float:
    """The `WC_HEADER` cell of a variant's evaluation ``results``, in %."""
    return percent(results["weighted_coverage"])


def training_note(trained: dict[str, dict]) -> str:
    """Model size, steps and time of each variant, and the hardware (for results.md and RESULTS.md)."""
    lines = [f"Hardware: {common.hardware()}."]
    for name, t in trained.items():
        m = t["config"]["model"]
        lines.append(f"- {name}: PSPNet blocks {tuple(m['stage_blocks'])} width {m['width']}, {t['steps']} steps "
                     f"x batch {t['config']['batch_size']}, {t['train_seconds'] / 60:.1f} min in this call")
    return "\n".join(lines)


def compare_boundary_variants(argv, description: str, name: str, title: str, variants: dict) -> dict:
    """The whole of a boundary-model comparison (Tab. 3a, Tab. 5): train every variant, evaluate it, and
    report oriented ODS/OIS/AP, boundary AP and (beyond the paper) the CRF's weighted coverage, with the
    precision-recall plot. Returns the trained dict."""
    from oosis_jax import evaluation

    args = parse_training_args(add_training_args(flags.parser(description, name, default_limit=30),
                                                 variants=variants), argv)
    s = flags.setup(args)
    trained = train_variants(s, variants, args)
    rows = [boundary_row(variant, t["results"]) + [weighted_coverage(t["results"])] for variant, t in trained.items()]
    plots = evaluation.plot_curves({n: t["results"] for n, t in trained.items()}, s.out)
    common.report(s, title, markdown(BOUNDARY_HEADERS + (WC_HEADER,), rows), training_note(trained), data=trained,
                  plots=plots, images=next(iter(trained.values()))["results"]["num_images"])
    return trained
