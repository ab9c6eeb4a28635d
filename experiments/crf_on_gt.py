"""Tab. 4 / Fig. 10: the CRF (stage 2) fed with ground-truth boundaries and segmentation.

    python -m experiments.crf_on_gt [--dataset synthetic|kins|cocoa] [--smoke] [--checkpoint WORKDIR]

Replaces the network's outputs by the ground truth (sigma from the GT semantic map, O from the GT occlusion
map, ``oosis_jax.crf_inputs.gt_crf_inputs``), labels with the default CRF, and reports mask mAP, weighted
coverage, OAIR at IoU 0.5 and cycles; with ``--checkpoint`` also the row from predicted heads, as in Tab. 4.
Writes ``runs/crf_on_gt/results.md`` and the OAIR curves of Fig. 10 (``oair_iou.png``, ``oair_confidence.png``).
"""

from __future__ import annotations

from experiments import common

GT_ROW = "Joint-Labeling (GT bndry/segm)"
PREDICTED_ROW = "Joint-Labeling (predicted bndry/segm)"


def run(s: common.Setup, checkpoint: str | None = None) -> dict[str, dict]:
    """Evaluation results keyed by row name (GT row always, predicted row with ``checkpoint``)."""
    from oosis_jax import evaluation, prediction

    examples = common.held_out_examples(s)
    method = common.default_method()
    results = {}
    if checkpoint:
        from oosis_jax import train

        model, _ = train.restore_model(checkpoint)
        predictions = common.predict(model, examples, s, method=method)
        results[PREDICTED_ROW] = evaluation.evaluate(predictions, examples, boundaries=False, progress=False)
    gt = prediction.label_ground_truth(examples, common.num_classes(s.dataset), method=method,
                                       processes=s.processes, progress=not s.smoke)
    results[GT_ROW] = evaluation.evaluate(gt, examples, boundaries=False, progress=False)
    return results


def main(argv=None):
    p = common.parser(__doc__, "crf_on_gt")
    p.add_argument("--checkpoint", default=None, help="training workdir for the predicted row")
    args = p.parse_args(argv)
    s = common.setup(args)
    from oosis_jax import evaluation

    results = run(s, args.checkpoint)
    table = common.markdown(common.SUMMARY_HEADERS, [common.summary_row(n, r) for n, r in results.items()])
    plots = evaluation.plot_curves(results, s.out)
    notes = f"CRF minimiser: {common.method_name(common.default_method())}, lambda = 20, mu = 100."
    common.report(s, "Tab. 4 / Fig. 10: CRF on ground-truth boundaries and segmentation", table, notes,
                  data=results, plots=plots)
    return results


if __name__ == "__main__":
    main()
