"""Tab. 5: joint vs separate transposed-convolution upsampling of the b and e logits.

    python -m experiments.upsampling [--dataset synthetic|kins|cocoa] [--smoke] [--steps N] [--train-minutes M]

"Joint" upsamples b and e with one kernel spanning their channels (supplement Fig. 1b), "separate" upsamples
every channel on its own. Reports oriented boundary ODS/OIS/AP and plain boundary AP on held-out images.
Writes ``runs/upsampling/results.md`` and the precision-recall plot.
"""

from __future__ import annotations

import dataclasses

from experiments import common

VARIANTS = {
    "Separate b & e": lambda c: c.replace(model=dataclasses.replace(c.model, upsample="separate")),
    "Joint b & e": lambda c: c.replace(model=dataclasses.replace(c.model, upsample="joint")),
}


def main(argv=None):
    args = common.add_training_args(common.parser(__doc__, "upsampling", default_limit=30)).parse_args(argv)
    s = common.setup(args)
    from oosis_jax import evaluation

    trained = common.train_variants(s, VARIANTS, args)
    rows = [common.boundary_row(name, t["results"]) for name, t in trained.items()]
    plots = evaluation.plot_curves({n: t["results"] for n, t in trained.items()}, s.out)
    common.report(s, "Tab. 5: joint vs separate upsampling of b and e",
                  common.markdown(common.BOUNDARY_HEADERS, rows), common.training_note(trained), data=trained,
                  plots=plots)
    return trained


if __name__ == "__main__":
    main()
