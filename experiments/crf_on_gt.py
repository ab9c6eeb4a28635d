"""Tab. 4 / Fig. 10: the CRF (stage 2) fed with ground-truth boundaries and segmentation.

    python -m experiments.crf_on_gt [--dataset synthetic|kins|cocoa] [--smoke] [--checkpoint WORKDIR|FOLDER|synthetic]

Replaces the network's outputs by the ground truth (sigma from the GT semantic map, O from the GT occlusion
map, ``oosis_jax.inference.crf_inputs.gt_crf_inputs``), labels with the default CRF, and reports mask mAP, weighted
coverage, OAIR at IoU 0.5 and cycles; with ``--checkpoint`` also the row from predicted heads, as in Tab. 4,
and (beyond the paper) rows where the network's heads are kept but one CRF input is replaced by the ground
truth: sigma (the s head), the boundary map b, or b and e (the set O). They show which head limits the
instances. Writes ``runs/crf_on_gt/results.md`` and the OAIR curves of Fig. 10 (``oair_iou.png``,
``oair_confidence.png``).
"""

from __future__ import annotations

from data.registry import info
from experiments import common, flags
from oosis_jax.evaluation import tables

GT_ROW = "Joint-Labeling (GT bndry/segm)"
PREDICTED_ROW = "Joint-Labeling (predicted bndry/segm)"
# Rows with the network's heads where the named heads are replaced by the ground truth's.
MIXED_ROWS = {"Joint-Labeling (GT segm, predicted bndry)": ("s",),
              "Joint-Labeling (predicted segm, GT bndry, predicted orientation)": ("b",),
              "Joint-Labeling (predicted segm, GT bndry and orientation)": ("b", "e")}


def network_rows(heads, examples, s: flags.Setup, method) -> dict[str, dict]:
    """The predicted row and the `MIXED_ROWS` from a network's ``heads`` (one ``dict(s, b, e)`` per example),
    each labelled by the paper's CRF and evaluated (no boundary metrics)."""
    from oosis_jax import evaluation
    from oosis_jax.inference import heads as heads_lib
    from oosis_jax.inference import instances as prediction

    truth = prediction.ground_truth_heads_of(examples, info(s.dataset).num_classes)
    rows = {PREDICTED_ROW: heads}
    rows.update({name: heads_lib.mixed_heads_each(heads, truth, replaced) for name, replaced in MIXED_ROWS.items()})
    results = {}
    for name, row_heads in rows.items():
        labelled = prediction.label_heads(row_heads, method=method, processes=s.processes, progress=s.progress)
        results[name] = evaluation.evaluate(labelled, examples, boundaries=False, progress=False)
    return results


def run(s: flags.Setup, checkpoint=None) -> dict[str, dict]:
    """Evaluation results keyed by row name (GT row always; with ``checkpoint`` first the predicted row and
    the `MIXED_ROWS`)."""
    from oosis_jax import evaluation
    from oosis_jax.inference import instances as prediction

    examples = common.held_out_examples(s)
    method = common.default_method()
    results = {}
    if checkpoint:
        results.update(network_rows(common.heads(checkpoint, examples, s), examples, s, method))
    gt = prediction.label_ground_truth(examples, info(s.dataset).num_classes, method=method,
                                       processes=s.processes, progress=s.progress)
    results[GT_ROW] = evaluation.evaluate(gt, examples, boundaries=False, progress=False)
    return results


def main(argv=None):
    p = flags.parser(__doc__, "crf_on_gt")
    p.add_argument("--checkpoint", default=None,
                   help="network of the predicted and mixed rows (workdir, exported folder or shipped name)")
    args = p.parse_args(argv)
    s = flags.setup(args)
    from oosis_jax import evaluation

    results = run(s, common.checkpoint_predictor(args.checkpoint, s))
    table = tables.markdown(tables.SUMMARY_HEADERS, [tables.summary_row(n, r) for n, r in results.items()])
    plots = evaluation.plot_curves(results, s.out)
    notes = (f"CRF minimiser: {common.default_method()}, lambda = 20, mu = 100 for every row: the paper's CRF, also "
             "for a model whose card names other options (`experiments.held_out` uses those).")
    common.report(s, "Tab. 4 / Fig. 10: CRF on ground-truth boundaries and segmentation", table, notes,
                  data=results, plots=plots, images=results[GT_ROW]["num_images"])
    return results


if __name__ == "__main__":
    main()
