"""Tab. 2: unambiguous instance segmentation quality of our method (mask mAP@[.5:.95] and weighted coverage).

    python -m experiments.instance_quality [--dataset synthetic|kins|cocoa] [--smoke] [--checkpoint WORKDIR]
                                           [--steps N] [--train-minutes M]

Uses the model of ``--checkpoint`` (e.g. ``runs/demo/train_cpu``) or trains one. mAP needs confidences; as
in Tab. 2 (where Panoptic-Mask2Former is scored both ways) we report our ad-hoc score of Sec. 5.4 and the
same score for every instance (its ties ranked in the split's image order, then by instance id: pycocotools'
stable sort), and (beyond the paper) the learned score of a model exported with one
(`oosis_jax.inference.scoring`); WC does not depend on scores. Writes ``runs/instance_quality/results.md``.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from experiments import common, flags, variants
from oosis_jax.evaluation import tables
from oosis_jax.training.loop import restore_run

HEADERS = ("Model", "mAP .5:.95", "AP50", "AP75", "WC")


def rows_for(predictions, examples, score_model=None) -> list[list]:
    """Table rows for our predictions (with the ad-hoc scores of `instances.assemble`) with one score for all
    instances, with the ad-hoc score, and with ``score_model``'s (a `scoring.ScoreModel`) when given."""
    from oosis_jax import evaluation
    from oosis_jax.evaluation import coco_map as coco_eval
    from oosis_jax.inference.scoring import rescore

    wc = tables.percent(evaluation.evaluate(predictions, examples, boundaries=False,
                                            progress=False)["weighted_coverage"])
    scored = {"same score": [dataclasses.replace(p, scores=np.ones_like(p.scores)) for p in predictions],
              "ad-hoc score, Sec. 5.4": predictions}
    if score_model is not None:
        scored["learned score, beyond the paper"] = [rescore(p, score_model) for p in predictions]
    rows = []
    for name, scored_predictions in scored.items():
        m = coco_eval.mask_map(scored_predictions, examples)
        rows.append([f"Joint-Labeling ({name})", tables.percent(m["mAP"]), tables.percent(m["AP50"]),
                     tables.percent(m["AP75"]), wc])
    return rows


def main(argv=None):
    p = variants.add_training_args(flags.parser(__doc__, "instance_quality"))
    p.add_argument("--checkpoint", default=None, help="training workdir, exported folder or shipped model name")
    args = variants.parse_training_args(p, argv, ("checkpoint", "--checkpoint (its model is not trained here)"))
    s = flags.setup(args)
    if args.checkpoint:
        if os.path.isdir(os.path.join(args.checkpoint, "checkpoints")):  # a run: say which step is evaluated
            with flags.loading(s.program, "--checkpoint", args.checkpoint):
                model, config, step = restore_run(args.checkpoint)
            predictor, origin = common.predictor(model, s, config), f"{step} steps"
        else:
            predictor = common.checkpoint_predictor(args.checkpoint, s)
            origin = "history in its model card"
        note = (f"Model: {args.checkpoint} ({origin}; CRF lambda {predictor.lam:g}, {predictor.robustness}). "
                f"Hardware: {common.hardware()}.")
    else:
        config = common.train_config(s, name="instance_quality", checkpoint_every=1 if s.smoke else 50)
        config = config.replace(num_steps=2 if s.smoke else (args.steps or config.num_steps))
        model, seconds, steps = common.train_model(config, s.out / "train",
                                                   None if s.smoke else 60 * args.train_minutes, program=s.program)
        note = (f"Model trained here: {steps} steps x batch {config.batch_size}, {seconds / 60:.1f} min. "
                f"Hardware: {common.hardware()}.")
        predictor = common.predictor(model, s, config)
    examples = common.held_out_examples(s)
    predictions = predictor.replace(score_model=None).predict_many([x["image"] for x in examples],
                                                                    progress=s.progress)
    rows = rows_for(predictions, examples, predictor.score_model)
    common.report(s, "Tab. 2: unambiguous instance segmentation quality", tables.markdown(HEADERS, rows), note,
                  images=len(examples))
    return rows


if __name__ == "__main__":
    main()
