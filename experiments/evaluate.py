"""Evaluate a checkpoint (or the CRF on ground truth) on a dataset split: every metric of the paper.

    python -m experiments.evaluate --checkpoint WORKDIR --dataset synthetic --split test --out DIR
    python -m experiments.evaluate --gt --dataset kins --split test --data-dir DIR --out DIR

``--dataset`` defaults to the one the checkpoint was trained on (synthetic with ``--gt``). Writes
``results.json`` (all numbers and curves), ``results.md`` (tables in %) and PNG plots (OAIR curves
over IoU and confidence thresholds, boundary precision-recall) to ``--out``. The split streams through
(``--chunk-size`` images at a time, a few KB kept per image), so a whole KINS test split fits in memory.
The split is read from its tfds build in ``--data-dir``. A synthetic build is made there on first use: with the
default settings 2000/200/200 scenes of 224-288 x 448-576 pixels (about 200 MB, 1.5 min on 2 cores); e.g.
``--dataset-config num_train=0 num_validation=0 num_test=50`` builds only 50 test scenes. These are not the
120x160 scenes of the table scripts and the shipped model's card (`experiments.held_out`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from crf.batch import usable_cores
from data.examples import progress, readable
from data.registry import info
from experiments import flags
from oosis_jax import evaluation
from oosis_jax.evaluation import boundaries as boundary_eval, tables
from oosis_jax.evaluation.results import WorkerFailure
from oosis_jax.inference import instances as prediction

# what a run writes into --out (`evaluation.plot_curves` the three plots): removed first, so that no earlier
# run's file passes for this run's
OUTPUTS = ("results.json", "results.md", "oair_iou.png", "oair_confidence.png", "boundary_pr.png")


def parse_args(argv=None):
    """The command line, checked before any work: the options ``--gt`` does not use are refused, the tiles are
    checked (`flags.check_tile_arguments`) and ``--out`` is created."""
    parser = argparse.ArgumentParser(prog="python -m experiments.evaluate",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add_source_arguments(parser)
    flags.add_dataset_arguments(parser, default=None)
    parser.add_argument("--limit", type=flags.positive_int, default=None, help="evaluate the first N examples only")
    flags.add_crf_arguments(parser)
    parser.add_argument("--max-dist", type=flags.positive_float, default=None,
                        help=f"boundary matching radius, fraction of the image diagonal (default "
                             f"{boundary_eval.MAX_DIST}; not with --gt, which has no boundary maps to match)")
    args, given = flags.parse_noting_given(parser, argv, list(flags.TILE_OPTIONS))
    if args.gt and args.max_dist is not None:
        parser.error("--max-dist sets the boundary metric, which --gt does not compute (the CRF's ground-truth "
                     "inputs have no boundary probability maps)")
    if args.gt:
        flags.refuse_unused(parser, given, flags.TILE_OPTIONS,
                            "--gt (the CRF labels the ground truth; no network runs)")
    else:
        flags.check_tile_arguments(parser, args)
    flags.make_folder(parser, "--out", args.out)
    args.max_dist = boundary_eval.MAX_DIST if args.max_dist is None else args.max_dist
    if args.gt and args.dataset is None:
        args.dataset = "synthetic"
    return args


def _predictor(args):
    """The network's `Predictor` (None with ``--gt``), loaded before the examples so that a bad ``--checkpoint``
    is one line before any work (`flags.load_predictor`), and checked to know ``--dataset``'s classes; without
    ``--dataset``, the dataset it was trained on."""
    if args.gt:
        return None
    from oosis_jax.inference import network as predict

    predictor = flags.load_predictor("evaluate", args.checkpoint, method=args.method,
                                     processes=args.processes, tile_size=args.tile_size,
                                     tile_overlap=args.tile_overlap)
    args.dataset = args.dataset or predictor.config.dataset
    if predictor.config.dataset != args.dataset:
        raise flags.UsageError("evaluate", f"--checkpoint {args.checkpoint} was trained on "
                               f"{predictor.config.dataset!r}, not on --dataset {args.dataset!r} (its classes differ)")
    if predictor.config.model.num_classes != info(args.dataset).num_classes:  # trained on other data (sources=...)
        raise flags.UsageError("evaluate", f"--checkpoint {args.checkpoint} predicts "
                               f"{predictor.config.model.num_classes} classes, --dataset {args.dataset!r} has "
                               f"{info(args.dataset).num_classes}")
    print(f"network on {predict.device_summary()}")
    return predictor


def _predictions(args, predictor, examples, unreadable) -> Iterator[tuple[dict, object]]:
    """``(example, Prediction or oosis_jax.ImageFailure)`` for each readable example, ``args.chunk_size`` at a
    time: of ``predictor``, or of the CRF on the ground truth when it is None; an example that cannot be read is
    appended to ``unreadable`` as ``(position, reason)`` (`data.examples.readable`)."""
    total = len(examples)
    examples = readable(examples, unreadable)
    if predictor is None:
        pairs = prediction.label_ground_truth_iter(examples, info(args.dataset).num_classes, args.chunk_size,
                                                   method=args.method, processes=args.processes, progress=False)
    else:
        pairs = predictor.predict_keyed(((x, x["image"]) for x in examples), args.chunk_size, progress=False,
                                        chunk_progress=True)
    yield from progress(pairs, total, unreadable, "CRF on ground truth" if predictor is None else "predict")


def main(argv=None):
    """Evaluate the split image by image (`evaluation.Evaluator`: memory holds one chunk and a few KB per
    image); an image the prediction or its evaluation fails on, or an example of the build that cannot be read
    (named by its position), is left out and named, and the exit status is then 1."""
    args = parse_args(argv)
    dataset_config = flags.dataset_config("evaluate", args)
    predictor = _predictor(args)
    args.split = flags.split_of(args)
    examples = flags.split_examples("evaluate", args, dataset_config)
    out = Path(args.out)
    for stale in OUTPUTS:  # an earlier run's files must not pass for this run's (e.g. a boundary plot of a model)
        (out / stale).unlink(missing_ok=True)
    name = "Joint-Labeling (GT bndry/segm)" if args.gt else "Joint-Labeling"
    evaluator = evaluation.Evaluator(boundaries=not args.gt, max_dist=args.max_dist,
                                     processes=args.processes or usable_cores())
    failures, unreadable = [], []
    for example, item in _predictions(args, predictor, examples, unreadable):
        if isinstance(item, prediction.ImageFailure):
            failures.append(f"image {int(example['image_id'])}: {item.reason}")
            continue
        try:
            evaluator.add(item, example)
        except WorkerFailure:  # an earlier image's boundary counts failed: the evaluator cannot go on
            raise
        except ValueError as err:  # this image's pair cannot be evaluated: named by the dataset's id, not its place
            reason = str(err).removeprefix(f"image {evaluator.position}: ")
            failures.append(f"image {int(example['image_id'])}: evaluation: {reason}")
    failures += [reason for _, reason in unreadable]  # no image id: the reason names the example's position
    if not len(evaluator):
        raise SystemExit("evaluate: every image failed:\n" + "\n".join(failures))
    print(f"evaluate: mask mAP (pycocotools) and the curves of {len(evaluator)} images", flush=True)
    results = evaluator.result()
    source = "ground truth (--gt)" if args.gt else args.checkpoint
    results.update(dataset=args.dataset, split=args.split, method=args.method, model=name, failed_images=failures,
                   checkpoint=None if args.gt else args.checkpoint, data_dir=args.data_dir, limit=args.limit,
                   dataset_config=dataset_config, max_dist=args.max_dist)
    (out / "results.json").write_text(tables.strict_json(results, indent=1))
    table = evaluation.markdown_table(results, name)
    (out / "results.md").write_text(f"# {args.dataset} {args.split}: {source}\n\n{table}")
    evaluation.plot_curves({name: results}, out)
    print(table)
    print(f"wrote {out}/results.json, results.md and plots")
    if failures:
        print("\n".join(f"FAILED {failure}" for failure in failures), file=sys.stderr)
        raise SystemExit(f"{len(failures)} of {len(examples)} images failed and are not in the results (see above)")


if __name__ == "__main__":
    main()
