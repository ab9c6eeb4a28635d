"""Evaluate a checkpoint (or the CRF on ground truth) on a dataset split: every metric of the paper.

    python -m experiments.evaluate --checkpoint WORKDIR --dataset synthetic --split test --out DIR
    python -m experiments.evaluate --gt --dataset kins --split test --data-dir DIR --out DIR

Writes ``results.json`` (all numbers and curves), ``results.md`` (tables in %) and PNG plots (OAIR curves
over IoU and confidence thresholds, boundary precision-recall) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from data import examples as eval_data
from data.registry import info
from experiments import flags
from oosis_jax import evaluation
from oosis_jax.evaluation import boundaries as boundary_eval
from oosis_jax.inference import instances as prediction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add_source_arguments(parser)
    flags.add_dataset_arguments(parser)
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N examples only")
    flags.add_crf_arguments(parser)
    parser.add_argument("--max-dist", type=float, default=boundary_eval.MAX_DIST,
                        help="boundary matching radius, fraction of the image diagonal")
    args = parser.parse_args(argv)
    args.split = flags.split_of(args)
    return args


def main(argv=None):
    args = parse_args(argv)
    examples = eval_data.load_examples(args.dataset, args.split, args.data_dir, args.limit,
                                       **flags.parse_key_values(args.dataset_config))
    num_classes = info(args.dataset).num_classes
    if args.gt:
        name = "Joint-Labeling (GT bndry/segm)"
        predictions = prediction.label_ground_truth(examples, num_classes, method=args.method,
                                                    processes=args.processes)
    else:
        from oosis_jax import Predictor
        from oosis_jax.inference import network as predict

        name = "Joint-Labeling"
        predictor = Predictor.from_pretrained(args.checkpoint, method=args.method, processes=args.processes,
                                              tile_size=args.tile_size, tile_overlap=args.tile_overlap)
        print(f"network on {predict.device_summary()}")
        predictions = predictor.predict_many([x["image"] for x in examples])
    results = evaluation.evaluate(predictions, examples, boundaries=not args.gt, max_dist=args.max_dist)
    results.update(dataset=args.dataset, split=args.split, method=args.method, model=name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    table = evaluation.markdown_table(results, name)
    (out / "results.md").write_text(f"# {args.dataset} {args.split}\n\n{table}")
    evaluation.plot_curves({name: results}, out)
    print(table)
    print(f"wrote {out}/results.json, results.md and plots")


if __name__ == "__main__":
    main()
