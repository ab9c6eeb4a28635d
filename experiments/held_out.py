r"""Trained models and CRF options on held-out synthetic scenes: one row each (the lever table of RESULTS.md).

    python -m experiments.held_out --checkpoint shipped=synthetic --checkpoint demo=runs/demo/train_cpu \
        --robustness paper --robustness min_area=30 --lam 20 --lam 40 --out runs/held_out

``--checkpoint NAME=WHAT`` takes anything ``Predictor.from_pretrained`` takes (a shipped name, an exported
folder, a training work directory; a bare ``WHAT`` is named by its last path component). The heads of every
model are computed once per scene set (cached as ``heads_<name>_<split>.npz`` in ``--out``, and computed again
when the model's files have changed since); each ``--robustness`` setting (``paper`` = all off, else
``KEY=VALUE,...`` of `oosis_jax.inference.robustness.Robustness`) and ``--lam`` then only reruns the CRF.
Scene sets: ``test`` (the demo's held-out scenes) and ``test2`` (others like them), 120x160. ``--scores
learned`` scores the instances with each model's learned `oosis_jax.inference.scoring.ScoreModel` (exported
models only) instead of the paper's ad-hoc score; ``--joins learned`` first joins the pieces of objects cut by
an occluder with each model's `oosis_jax.inference.joining.JoinModel` (exported models only; none by
default: the paper's connected components). ``--augmentation`` sets the test-time views of the heads
(`oosis_jax.inference.augment`; the cache file name then ends in its text) instead of each model's own.
``--failures`` adds to each row what became of the ground-truth instances and pairs, and how many of the
predicted edges between matched instances are true (`oosis_jax.evaluation.failures`, % of each outcome).
``--true-heads b,e`` (repeatable; ``none`` by default) feeds the CRF the ground truth's heads named in place of
the model's (`oosis_jax.inference.heads.mixed_heads_each`): which head limits a model (the heads must lie on the
image's grid, so not with ``view_grid``).

The CRF options default to the paper's stage 2 (``--robustness paper --lam 20``, ad-hoc scores, connected
components), not to a model card's (the views default to each model's own): a card's own table comes from the
command it states, with its options spelled out. The rows are printed under their column names and appended
to ``--out``/``rows.jsonl``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from data.examples import synthetic_scenes
from data.registry import check_synthetic_split, info
from experiments import flags
from experiments.common import SYNTHETIC_SIZE
from oosis_jax.evaluation import evaluate
from oosis_jax.evaluation.failures import failure_summary
from oosis_jax.evaluation import tables
from oosis_jax.evaluation.tables import HELD_OUT_HEADERS, held_out_row
from oosis_jax.inference.augment import Augmentation
from oosis_jax.inference.instances import LAMBDA, ground_truth_heads_of
from oosis_jax.inference.robustness import Robustness


def model_stamp(model: str) -> str:
    """What identifies the weights and options ``model`` (anything ``Predictor.from_pretrained`` takes) names
    now: its resolved folder and the size and modification time of its ``config.json`` and weights file, or of
    every file of a run's checkpoints (a resumed run's new steps change it); ``"missing"`` for no folder."""
    from oosis_jax.inference.predictor import CONFIG_FILE, WEIGHTS_FILE, model_folder

    folder = model_folder(model).resolve()
    if not folder.is_dir():
        return "missing"
    files = [folder / CONFIG_FILE, folder / WEIGHTS_FILE, *sorted((folder / "checkpoints").rglob("*"))]
    return f"{folder}|" + ";".join(f"{f.relative_to(folder)}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                                   for f in files if f.is_file())


def cached_heads(model: str, tag: str, scenes: list[dict], out: Path, augmentation=None) -> list[dict]:
    """Head probabilities of ``model`` on ``scenes`` (on the grid stage 2 labels at, `Predictor.heads`'
    ``label_grid``), from ``out/heads_<tag>.npz`` when it was made for as many scenes by the same weights
    (`model_stamp`), else computed and saved there; with an ``augmentation``
    (`oosis_jax.inference.augment.Augmentation`) instead of the model's own setting."""
    path, stamp = out / f"heads_{tag}.npz", model_stamp(model)
    if path.exists():
        with np.load(path) as f:  # each f[key] reads (and decompresses) the whole array: once per key
            stacked = {key: f[key] for key in ("s", "b", "e", "model") if key in f}
        if len(stacked["b"]) == len(scenes) and str(stacked.get("model")) == stamp:
            return [{key: stacked[key][i] for key in ("s", "b", "e")} for i in range(len(scenes))]
        print(f"{path}: made by other weights or for other scenes; computing the heads of {model} again")
    from oosis_jax import Predictor

    options = {} if augmentation is None else {"augmentation": augmentation}
    with flags.loading("held_out", "--checkpoint", model):  # only the loading: an inference error is not one
        predictor = Predictor.from_pretrained(model, **options)
    heads = predictor.heads([x["image"] for x in scenes], progress=False, label_grid=True)
    np.savez_compressed(path, model=np.array(stamp), **{k: np.stack([h[k] for h in heads]) for k in ("s", "b", "e")})
    return heads


def existing_folder(model: str) -> Path:
    """The folder of ``model`` (`model_folder`); `flags.UsageError` when there is none."""
    from oosis_jax.inference.predictor import model_folder

    folder = model_folder(model)
    if not folder.is_dir():
        raise flags.UsageError("held_out", f"--checkpoint {model!r} is neither a model name nor an existing model or "
                               "run folder")
    return folder


def learned_option(model: str, key: str):
    """The learned ``key`` (``"score_model"``: a `ScoreModel`; ``"join_model"``: a `JoinModel`) that ``model``
    (anything ``Predictor.from_pretrained`` takes) was exported with, read from its ``config.json`` without
    loading the network."""
    from oosis_jax.inference.predictor import EXPORT_KEYS, WEIGHTS_FILE, exported_options

    folder = existing_folder(model)
    others = tuple(k for k in EXPORT_KEYS if k != key)  # only this one is read
    option = exported_options(folder, skip=others).get(key) if (folder / WEIGHTS_FILE).exists() else None
    if option is None:
        raise flags.UsageError("held_out", f"{model!r} has no learned {key} (export it with export_model "
                               "--fit-scores / --fit-joins)")
    return option


def with_true_heads(heads: list[dict], truth: list[dict], replaced: tuple[str, ...], model: str) -> list[dict]:
    """``heads`` (one dict of s, b, e per scene) with the heads named in ``replaced`` taken from ``truth``
    (`ground_truth_heads_of` the same scenes, None when nothing is replaced); ``model`` names the heads' model in
    the error for heads that do not lie on their scene's grid."""
    from oosis_jax.inference.heads import mixed_heads_each

    try:
        return mixed_heads_each(heads, truth, replaced)
    except ValueError as error:
        raise flags.UsageError("held_out", f"--true-heads: {model}: {error}; use an augmentation without "
                               "view_grid") from error


def parse_true_heads(text: str) -> tuple[str, ...]:
    """``"none"`` -> ``()``, ``"b,e"`` -> ``("b", "e")``; unknown heads are an error."""
    from oosis_jax.inference.heads import HEADS

    replaced = () if text == "none" else tuple(text.split(","))
    unknown = [h for h in replaced if h not in HEADS]
    if unknown or len(set(replaced)) != len(replaced):
        raise flags.UsageError("held_out", f"--true-heads {text!r}: give 'none' or distinct heads among "
                               f"{', '.join(HEADS)}")
    return replaced


def failure_columns(summary: dict) -> dict:
    """A `failure_summary` as row fields: "instances <outcome>", "pairs <outcome>" and "edges <outcome>", in %."""
    return {f"{kind} {outcome}": 100 * share for kind in ("instances", "pairs", "edges")
            for outcome, share in summary[kind].items()}


def named(spec: str) -> tuple[str, str]:
    """``(NAME, WHAT)`` of a ``--checkpoint`` value: ``NAME=WHAT``, or a bare ``WHAT`` named by its last path
    component."""
    name, _, model = spec.partition("=")
    return (name, model) if model else (Path(spec).name or spec, spec)


def json_line(row: dict) -> str:
    """``row`` as one strict JSON line: a NaN (e.g. accuracy or pair shares of a set without pairs) or an
    infinity is null."""
    return tables.strict_json(row) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.held_out",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", required=True, metavar="[NAME=]WHAT",
                        help="a model (repeatable); NAME labels its rows and cache files (default: WHAT's last part)")
    parser.add_argument("--robustness", action="append", default=None, metavar="paper|KEY=VALUE,...",
                        type=flags.parsed_by(lambda text: (Robustness.parse(text), text)))
    parser.add_argument("--lam", type=flags.non_negative_float, action="append", default=None,
                        help="Eq. (8) lambda (repeatable)")
    parser.add_argument("--scenes", type=flags.positive_int, default=40)
    parser.add_argument("--sets", default="test,test2")
    parser.add_argument("--processes", type=flags.positive_int, default=None)
    parser.add_argument("--scores", choices=("adhoc", "learned"), default="adhoc")
    parser.add_argument("--joins", choices=("none", "learned"), default="none")
    parser.add_argument("--augmentation", default=None, type=flags.parsed_by(Augmentation.parse),
                        metavar="none|scales=S1:S2,flip,shift=K,view_grid,max_pixels=N",
                        help="test-time views of the heads (default: each model's exported setting)")
    parser.add_argument("--failures", action="store_true", help="add the outcome of every ground-truth instance "
                        "and pair, and of every predicted edge, to each row (oosis_jax.evaluation.failures)")
    parser.add_argument("--true-heads", action="append", default=None, metavar="none|HEAD,...",
                        help="heads (s, b, e) the CRF gets from the ground truth instead of the model (repeatable)")
    parser.add_argument("--out", default="runs/held_out", type=flags.folder)
    args = parser.parse_args(argv)
    from oosis_jax.devices import use_cpu_cores
    from oosis_jax.inference.instances import label_heads
    from oosis_jax.inference.predictor import BATCH_SIZE, finish

    use_cpu_cores(BATCH_SIZE)  # one JAX device per core: the predictors split their batches over them

    flags.make_folder(parser, "--out", args.out)
    out = Path(args.out)
    settings = args.robustness or [(Robustness(), "paper")]
    augmentation = args.augmentation
    true_heads = [(parse_true_heads(text), text) for text in args.true_heads or ["none"]]
    models = [named(spec) for spec in args.checkpoint]
    names = [name for name, _ in models]
    if len(set(names)) < len(names):  # rows and cached heads are told apart by name
        parser.error(f"--checkpoint names {sorted({n for n in names if names.count(n) > 1})} more than once: "
                     "give each model its own NAME=")
    splits = args.sets.split(",")
    for split in splits:
        try:
            check_synthetic_split(split)
        except ValueError as err:
            parser.error(f"--sets {args.sets}: {err}")
    learned = {}  # model -> (score model, join model): each model's folder and options, before the first row
    for _, model in models:
        existing_folder(model)
        learned[model] = tuple(learned_option(model, key) if wanted else None for key, wanted in
                               (("score_model", args.scores == "learned"), ("join_model", args.joins == "learned")))
    rows = []
    for split in splits:
        scenes = synthetic_scenes(split, args.scenes, SYNTHETIC_SIZE)
        truth = (ground_truth_heads_of(scenes, info("synthetic").num_classes)
                 if any(replaced for replaced, _ in true_heads) else None)
        for name, model in models:
            tag = f"{name}_{split}" + (f"_{augmentation.to_text()}" if augmentation else "")
            heads = cached_heads(model, tag, scenes, out, augmentation)
            score_model, join_model = learned[model]
            fed = {true_text: with_true_heads(heads, truth, replaced, name) for replaced, true_text in true_heads}
            options = [(t, s, lam) for t in fed for s in settings for lam in args.lam or [LAMBDA]]
            for true_text, (robustness, text), lam in options:
                start = time.time()
                predictions = label_heads(fed[true_text], processes=args.processes, progress=False, lam=lam,
                                          robustness=robustness, shapes=[x["image"].shape[:2] for x in scenes])
                predictions = [finish(p, x["image"], join_model, score_model) for p, x in zip(predictions, scenes)]
                results = evaluate(predictions, scenes, progress=False)
                rows.append(dict(set=split, model=name, robustness=text, lam=lam, scores=args.scores, joins=args.joins,
                                 augmentation=augmentation.to_text() if augmentation else "model's own",
                                 true_heads=true_text,
                                 crf_seconds=round(time.time() - start, 1),
                                 **dict(zip(HELD_OUT_HEADERS, held_out_row(results)))))
                if args.failures:
                    rows[-1].update(failure_columns(failure_summary(predictions, scenes)))
                if len(rows) == 1:  # the columns, once
                    print(" | ".join(rows[-1]), flush=True)
                print(" | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in rows[-1].values()),
                      flush=True)
                with open(out / "rows.jsonl", "a") as f:  # each row as it is made: a later failure keeps it
                    f.write(json_line(rows[-1]))
    print(f"appended {len(rows)} rows to {out / 'rows.jsonl'}")


if __name__ == "__main__":
    main()
