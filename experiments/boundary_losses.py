"""Tab. 3b: losses of the b head: weighted CE (Eq. 4, w = 0.9) vs Dice++, Tversky++ and Combo (Sec. 5.6).

    python -m experiments.boundary_losses [--dataset synthetic|kins|cocoa] [--smoke] [--steps N]
                                          [--train-minutes M] [--variants NAME ...]

One model per loss (parameters of Sec. 5.6: gamma = 2, Tversky alpha = 0.8, beta = 0.2, Combo alpha = 0.1,
the defaults of ``oosis_jax.training.losses.LossConfig``); reports the AP of the b head alone (boundary detection),
the oriented AP and ODS, and (beyond the paper) the CRF's weighted coverage. Writes
``runs/boundary_losses/results.md`` and the precision-recall plot.
"""

from __future__ import annotations

from experiments import common, flags, variants
from oosis_jax.evaluation import tables

LOSSES = {"Dice++": "dice++", "Tversky++": "tversky++", "ComboLoss": "combo", "WeightedCE": "wce"}
VARIANTS = {name: variants.variant("loss", boundary_loss=loss) for name, loss in LOSSES.items()}


def main(argv=None):
    args = variants.parse_training_args(variants.add_training_args(
        flags.parser(__doc__, "boundary_losses", default_limit=30), minutes=6.0, variants=VARIANTS), argv)
    s = flags.setup(args)
    from oosis_jax import evaluation

    trained = variants.train_variants(s, VARIANTS, args)
    rows = [[name, tables.percent(t["results"]["boundaries"]["plain"]["AP"]),
             tables.percent(t["results"]["boundaries"]["oriented"]["AP"]),
             tables.percent(t["results"]["boundaries"]["oriented"]["ODS"]), variants.weighted_coverage(t["results"])]
            for name, t in trained.items()]
    plots = evaluation.plot_curves({n: t["results"] for n, t in trained.items()}, s.out)
    headers = ("Loss", "b AP", "oriented AP", "oriented ODS", variants.WC_HEADER)
    common.report(s, "Tab. 3b: b-head losses", tables.markdown(headers, rows),
                  variants.training_note(trained), data=trained, plots=plots,
                  images=next(iter(trained.values()))["results"]["num_images"])
    return trained


if __name__ == "__main__":
    main()
