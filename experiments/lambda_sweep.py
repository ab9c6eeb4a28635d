r"""Tab. 6 / Fig. 12: the smoothness weight lambda of Eq. (8): 50, 40, 20 (the paper's choice), 10, 5.

    python -m experiments.lambda_sweep [--dataset synthetic|kins|cocoa] [--smoke] \
        [--checkpoint WORKDIR|FOLDER|synthetic] [--noise 1.0]

CRF inputs: the heads of a trained network (``--checkpoint``), or, without one, ground-truth heads degraded
by blur and noise (``oosis_jax.inference.heads.noisy_heads``, strength ``--noise``) so that lambda has
something to smooth. Reports mask mAP, weighted coverage and OAIR at IoU 0.5 per lambda, and draws the
labelled instances of a few scenes for every lambda (``lambda_scenes.png``, as Fig. 12). Writes ``runs/lambda_sweep/``.
"""

from __future__ import annotations

from data.registry import info
from experiments import common, flags
from oosis_jax.evaluation import tables
from oosis_jax.inference import heads as heads_lib

LAMBDAS = (50.0, 40.0, 20.0, 10.0, 5.0)


def heads_for(examples, s: flags.Setup, checkpoint, noise: float) -> list[dict]:
    """Per image ``dict(s, b, e)``: the network's (with ``checkpoint``) or degraded ground truth."""
    if checkpoint:
        return common.heads(checkpoint, examples, s)
    n = info(s.dataset).num_classes
    return [heads_lib.noisy_heads(x, n, noise, seed=i) for i, x in enumerate(examples)]


def run(s: flags.Setup, checkpoint=None, noise: float = 1.0, lambdas=LAMBDAS):
    """``(examples, predictions, results)``, the last two keyed by lambda."""
    from oosis_jax import evaluation
    from oosis_jax.inference import instances as prediction

    examples = common.held_out_examples(s)
    heads = heads_for(examples, s, checkpoint, noise)
    predictions, results = {}, {}
    for lam in lambdas:
        predictions[lam] = prediction.label_heads(heads, method=common.default_method(), processes=s.processes,
                                                  progress=s.progress, lam=lam)
        results[lam] = evaluation.evaluate(predictions[lam], examples, boundaries=False, progress=False)
    return examples, predictions, results


def draw(examples, predictions: dict, path, num_scenes: int = 3) -> str:
    """One row per scene: the image, then the predicted instances for each lambda (Fig. 12)."""
    from oosis_jax import visualize

    images, titles = [], []
    for i, x in enumerate(examples[:num_scenes]):
        images.append(x["image"])
        titles.append(f"scene {i}")
        for lam, preds in predictions.items():
            images.append(visualize.instance_overlay(x["image"], preds[i].instance_map))
            titles.append(f"lambda = {lam:g} ({len(preds[i].classes)} inst.)")
    return visualize.save_panel(path, images, titles, ncols=len(predictions) + 1, tile_inches=2.6)


def main(argv=None):
    p = flags.parser(__doc__, "lambda_sweep")
    p.add_argument("--checkpoint", default=None,
                   help="network whose heads feed the CRF (workdir, exported folder or shipped name)")
    p.add_argument("--noise", type=flags.non_negative_float, default=1.0,
                   help="noise (logit std) of the degraded GT heads")
    args = p.parse_args(argv)
    s = flags.setup(args)
    network = common.checkpoint_predictor(args.checkpoint, s)
    examples, predictions, results = run(s, network, args.noise)
    rows = [tables.summary_row(f"Joint-Labeling (lambda = {lam:g})", r) for lam, r in results.items()]
    picture = draw(examples, predictions, s.out / "lambda_scenes.png")
    source = f"network heads from {args.checkpoint}" if args.checkpoint else \
        f"ground-truth heads blurred and perturbed with noise std {args.noise}"
    common.report(s, "Tab. 6 / Fig. 12: effect of lambda", tables.markdown(tables.SUMMARY_HEADERS, rows),
                  f"CRF inputs: {source}; mu = 100; minimiser {common.default_method()}.",
                  data={str(k): v for k, v in results.items()}, plots=[picture], images=len(examples))
    return results


if __name__ == "__main__":
    main()
