r"""Export a training run as a shipped model: weights, config and a model card with its held-out table.

    python -m experiments.export_model --workdir runs/shipped --name synthetic \
        --robustness min_area=30 --lam 40 --hardware "2-core x86-64 CPU"

Writes ``oosis_jax/weights/<name>/`` (``weights.npz``, ``config.json``, ``MODEL_CARD.md``). The card states
the run's configuration, steps, wall time (from ``metrics.jsonl``), the hardware, the commit, and the
held-out table (synthetic splits ``test`` and ``test2``, with the test-time views ``--augmentation`` and the
CRF options ``--lam`` and ``--robustness`` that the predictor then uses by default; choose them on the
``validation`` split with ``experiments.held_out``, not on the held-out scenes). ``--fit-scores`` also fits a
learned instance score (`oosis_jax.inference.scoring`) on ``--fit-scenes`` validation scenes with those options
and ships it; ``--fit-joins`` fits, on the same scenes and before the score, the model that joins the pieces of
an object cut by an occluder (`oosis_jax.inference.joining`) and ships it. ``--workdir`` may also be a folder
this script exported, or a shipped name, to ship the same weights with other options: the run's steps and
minutes then come from what it recorded in its ``config.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
from pathlib import Path

from data.examples import synthetic_scenes
from data.registry import SYNTHETIC_SEEDS, info
from experiments import flags
from experiments.common import SYNTHETIC_SIZE
from oosis_jax.evaluation import evaluate
from oosis_jax.evaluation.tables import HELD_OUT_HEADERS, held_out_row, markdown
from oosis_jax.inference import predictor
from oosis_jax.inference.augment import Augmentation
from oosis_jax.inference.exported import is_model_name
from oosis_jax.inference.instances import LAMBDA
from oosis_jax.inference.robustness import Robustness

SPLITS = ("test", "test2")


def run_facts(workdir: Path, step: int | None = None) -> dict:
    """For a training work directory, ``step`` (the checkpoint whose weights are exported: `loaded_for_export`)
    and the wall time up to it, from ``metrics.jsonl`` (pauses between sessions excluded: gaps of more than 10
    minutes between log lines are not counted). For a folder this script exported (``--workdir`` may be one, to
    ship the same weights with other options), the facts it recorded under ``export.run`` in its
    ``config.json``."""
    if not (workdir / "metrics.jsonl").exists():
        if (workdir / "checkpoints").is_dir():
            raise ValueError(f"{workdir} is a training work directory without its metrics.jsonl, from which the "
                             "model card's steps and wall time are read")
        if not (workdir / predictor.WEIGHTS_FILE).is_file():
            raise ValueError(f"{workdir} is neither a training work directory (checkpoints/ and metrics.jsonl) nor "
                             f"an exported model folder ({predictor.WEIGHTS_FILE})")
        try:
            facts = json.loads((workdir / predictor.CONFIG_FILE).read_text())["export"]["run"]
            return {"steps": int(facts["steps"]), "minutes": float(facts["minutes"])}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{workdir / predictor.CONFIG_FILE} records no steps and minutes of the run its weights "
                             "come from (export.run, written by export_model; Predictor.export writes it only when "
                             "given extra={'run': {'steps': ..., 'minutes': ...}}): export from the training work "
                             "directory instead") from err
    if step is None:
        raise ValueError(f"{workdir} is a training work directory: say which checkpoint step is exported")
    from oosis_jax.training.metrics_log import MetricsLog

    records = MetricsLog(str(workdir)).records()  # as training reads them: a line a kill cut short is skipped
    times = sorted(r["time"] for r in records if r["step"] <= step and isinstance(r.get("time"), (int, float)))
    seconds = sum(b - a for a, b in zip(times, times[1:]) if b - a < 600)
    return {"steps": step, "minutes": seconds / 60}


def loaded_for_export(workdir: Path, robustness: Robustness, lam: float,
                      augmentation: Augmentation) -> tuple[predictor.Predictor, dict]:
    """``(predictor, facts)``: the run's predictor with the options to ship, the paper's ad-hoc scores and its
    connected components, and the `run_facts` of the checkpoint its weights come from (the newest intact one,
    which is older than orbax's latest when that is damaged: `restore_run`). A learned score or join model an
    exported folder carries belongs to its old options, `fit_join_model` must see the pieces unjoined, and
    `fit_score_model` reads the ad-hoc score as a feature, so it must see predictions scored that way."""
    options = dict(robustness=robustness, lam=lam, augmentation=augmentation)
    if (workdir / "metrics.jsonl").exists():
        from oosis_jax.training.loop import restore_run

        model, config, step = restore_run(str(workdir))
        return predictor.Predictor(model, config, **options), run_facts(workdir, step)
    facts = run_facts(workdir)
    # options given are not read from the folder: its fitted models may be an earlier version's
    return predictor.Predictor.from_pretrained(workdir, join_model=None, score_model=None, **options), facts


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def held_out_table(pred: predictor.Predictor, count: int) -> str:
    """Markdown: one `held_out_row` per held-out split of `SPLITS` (``count`` scenes each)."""
    rows = []
    for split in SPLITS:
        scenes = synthetic_scenes(split, count, SYNTHETIC_SIZE)
        results = evaluate(pred.predict_many([x["image"] for x in scenes]), scenes)
        rows.append([f"{split} ({count}, seeds {SYNTHETIC_SEEDS[split]:,}..)", *held_out_row(results)])
    return markdown(("scenes", *HELD_OUT_HEADERS), rows)


SCENES, FIT_SCENES = 40, 200  # the defaults of --scenes and --fit-scenes


def _minutes(value: float) -> str:
    """A wall time in minutes as the card words it: whole minutes from 10 on, tenths below."""
    return f"{value:.0f}" if round(value, 1) >= 10 else f"{value:.1f}"


def card(name: str, config, facts: dict, hardware: str, table: str, robustness: Robustness, lam: float,
         history: str = "", prior_minutes: float = 0.0, scores: str = "",
         augmentation: Augmentation = Augmentation(), joins: str = "", scenes: int = SCENES,
         fit_scenes: int = FIT_SCENES) -> str:
    """The model card of export ``name``; ``scenes`` and ``fit_scenes`` as `main`'s ``--scenes`` and
    ``--fit-scenes`` (named in its "Reproduce" command where they are not the defaults)."""
    model = config.model
    history = f"\n- **Training history**: {history}" if history else ""
    origin = (f"initialised from `{config.pretrained}`, the project's own earlier run (see the training history)"
              if config.pretrained else "trained from scratch, no pretrained weights")
    minutes = facts["minutes"] + prior_minutes
    wall = f"{_minutes(minutes)} minutes" + (
        f" ({_minutes(facts['minutes'])} in this run, {_minutes(prior_minutes)} in the earlier runs it continues)"
        if prior_minutes else "")
    learned = bool(scores)
    fit = (" --fit-joins" if joins else "") + (" --fit-scores" if learned else "") + (
        f" --fit-scenes {fit_scenes}" if (joins or learned) and fit_scenes != FIT_SCENES else "") + (
        f" --scenes {scenes}" if scenes != SCENES else "")
    held_out_joins = " --joins learned" if joins else ""
    joins = joins or "the paper's connected components of the CRF labelling (Sec. 3.2)"
    scores = scores or "the paper's ad-hoc score (Sec. 5.4, `oosis_jax.inference.instances.adhoc_scores`)"
    scenes = (f"{config.synthetic_scenes} training scenes {config.synthetic_size}" if config.data_dir is None else
              f"the tfds build of its `data_dir` with settings {dict(config.dataset_config) or 'default'}")
    network = (f"PSPNet with stage blocks {model.stage_blocks}, width {model.width}, stem {model.stem_width}, "
               f"head {model.head_width}, output stride {model.output_stride}, decoder `{model.decoder}` (width "
               f"{model.decoder_width}), {model.head} heads, computing in {model.dtype} (parameters float32).")
    training = (f"run `{config.name}` (`python -m experiments.train --config PRESET --workdir DIR`), "
                f"{facts['steps']} of {config.num_steps} steps x batch {config.batch_size}, {config.optimizer} lr "
                f"{config.base_lr} (poly {config.lr_power}), crops {config.augment.crop_size}, "
                f"{scenes}.{history}")
    options = f"--robustness {robustness.to_text()} --lam {lam:g}"
    facts_flags = f"--hardware {shlex.quote(hardware)}" + (
        f" --prior-minutes {prior_minutes:g}" if prior_minutes else "") + (
        " --history '<the training history above>'" if history else "")
    return f"""# Model card: `{name}`

`Predictor.from_pretrained("{name}")` loads this folder: `weights.npz` (every parameter and batch statistic
by its path), `config.json` (the training configuration; its `export` key holds the CRF and scoring options
below).

- **Task**: occlusion-ordered semantic instance segmentation of the project's synthetic scenes
  (`data.synthetic`, classes: {", ".join(info("synthetic").class_names)}); {origin}.
- **Network**: {network}
- **Training**: {training}
- **Wall time**: {wall} on {hardware}; exported at commit `{commit()}`.
- **Heads at prediction**: test-time views `{augmentation.to_text()}` (`oosis_jax.inference.augment`; `none` is
  the paper's single pass).
- **CRF at prediction**: `crf.solve`, lambda {lam:g}, mu 100, robustness options
  `{json.dumps(dataclasses.asdict(robustness))}` (`oosis_jax.inference.robustness`).
- **Instances**: {joins}.
- **Instance scores**: {scores}.
- **Limits**: synthetic scenes only; on real photographs it has never seen a real object.

## Held-out scenes (120x160, not used in training or validation)

{table}
Reproduce: `python -m experiments.export_model --workdir RUN --name {name} {options}
--augmentation {augmentation.to_text()}{fit} {facts_flags}` (this card), or `python -m experiments.held_out
--checkpoint {name}={name} {options}
--augmentation {augmentation.to_text()}{held_out_joins} --scores {"learned" if learned else "adhoc"}`
(the lever table in RESULTS.md).
"""


def parser() -> argparse.ArgumentParser:
    """The command line of `main` (also what a card's "Reproduce" line is checked against)."""
    parser = argparse.ArgumentParser(prog="python -m experiments.export_model",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="a training work directory, a folder this script "
                        "exported or a model name")
    parser.add_argument("--name", type=model_name, required=True,  # no default: it was the shipped model's
                        help="writes oosis_jax/weights/NAME (then Predictor.from_pretrained(NAME) loads it); "
                             "an earlier export of that name is replaced (said so), the shipped 'synthetic' too")
    parser.add_argument("--robustness", type=flags.parsed_by(Robustness.parse),
                        default=Robustness(), help="CRF options the predictor uses by default (paper or KEY=VALUE,...)")
    parser.add_argument("--lam", type=flags.non_negative_float, default=LAMBDA,
                        help="Eq. (8) lambda the predictor uses by default")
    parser.add_argument("--augmentation", type=flags.parsed_by(Augmentation.parse),
                        default=Augmentation(), help="test-time views the predictor uses by default (none or "
                                                     "ITEM,...)")
    parser.add_argument("--hardware", required=True, help="where the run trained, e.g. '2-core x86-64 CPU'")
    parser.add_argument("--scenes", type=flags.positive_int, default=SCENES)
    parser.add_argument("--history", default="", help="how the run was trained, if not in one go (for the card)")
    parser.add_argument("--prior-minutes", type=flags.non_negative_float, default=0.0,
                        help="wall time of the earlier runs this one continues (its pretrained weights)")
    parser.add_argument("--fit-scores", action="store_true",
                        help="fit and ship a learned instance score on --fit-scenes validation scenes")
    parser.add_argument("--fit-joins", action="store_true", help="fit and ship the model that joins the pieces "
                        "of occluded objects on --fit-scenes validation scenes")
    parser.add_argument("--fit-scenes", type=flags.positive_int, default=FIT_SCENES)
    return parser


def model_name(text: str) -> str:
    """argparse type: a folder name under ``WEIGHTS_DIR`` (`is_model_name`)."""
    if not is_model_name(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a model name: a plain folder name, written to "
                                         f"{predictor.WEIGHTS_DIR}/NAME")
    return text


def main(argv=None):
    """Export ``--workdir`` as ``WEIGHTS_DIR/--name`` with its card; bad options, a work directory that is
    missing or damaged, and a weights folder this process cannot write end in one line before any work."""
    args = parser().parse_args(argv)
    out = predictor.WEIGHTS_DIR / args.name
    writable = out if out.exists() else predictor.WEIGHTS_DIR
    if not os.access(writable, os.W_OK | os.X_OK) or (out.exists() and not out.is_dir()):
        raise flags.UsageError("export_model", f"cannot write {out} (an installed package's folder is often "
                               "read-only): export from a checkout of the repository you may write to")
    workdir = predictor.model_folder(args.workdir)
    robustness, augmentation = args.robustness, args.augmentation
    with flags.loading("export_model", "--workdir", args.workdir):
        pred, facts = loaded_for_export(workdir, robustness, args.lam, augmentation)
    if pred.config.dataset != "synthetic":
        raise flags.UsageError("export_model", f"{workdir} was trained on {pred.config.dataset!r}; the model "
                               "card's held-out table is measured on synthetic scenes, so only synthetic runs are "
                               "exported here")
    scores = joins = ""
    if args.fit_joins or args.fit_scores:
        pred = pred.fit_finish(synthetic_scenes("validation", args.fit_scenes, SYNTHETIC_SIZE), args.fit_joins,
                               args.fit_scores)
        if args.fit_joins:
            joins = ("the CRF's connected components, with the pieces of an object cut by an occluder joined "
                     f"(`oosis_jax.inference.joining.JoinModel`, fitted on {args.fit_scenes} `validation` scenes "
                     f"with the CRF options above; threshold {pred.join_model.threshold:g})")
        if args.fit_scores:
            scores = (f"learned (`oosis_jax.inference.scoring.ScoreModel`), fitted on {args.fit_scenes} "
                      "`validation` scenes with the CRF options above" + (" and the joins" if joins else ""))
    table = held_out_table(pred, args.scenes)  # before anything is written: a failure leaves the old export
    if out.exists():
        print(f"export_model: replacing the earlier export in {out}")
    predictor.export(pred.model, pred.config, out,
                     extra={"lam": args.lam, "robustness": dataclasses.asdict(robustness),
                            "augmentation": dataclasses.asdict(augmentation),
                            "join_model": pred.join_model and pred.join_model.to_dict(),
                            "score_model": pred.score_model and pred.score_model.to_dict(), "run": facts})
    (out / "MODEL_CARD.md").write_text(card(args.name, pred.config, facts, args.hardware, table,
                                            robustness, args.lam, args.history, args.prior_minutes, scores,
                                            augmentation, joins, args.scenes, args.fit_scenes))
    print((out / "MODEL_CARD.md").read_text())


if __name__ == "__main__":
    main()
