"""Tab. 5: joint vs separate transposed-convolution upsampling of the b and e logits.

    python -m experiments.upsampling [--dataset synthetic|kins|cocoa] [--smoke] [--steps N] [--train-minutes M]
                                     [--variants NAME ...]

"Joint" upsamples b and e with one kernel spanning their channels (supplement Fig. 1b), "separate" upsamples
every channel on its own. Reports oriented boundary ODS/OIS/AP and plain boundary AP on held-out images.
Writes ``runs/upsampling/results.md`` and the precision-recall plot.
"""

from __future__ import annotations

from experiments import variants

VARIANTS = {"Separate b & e": variants.variant("model", upsample="separate"),
            "Joint b & e": variants.variant("model", upsample="joint"),
            # Beyond the paper (issue 14): b and e decided on full-resolution decoder features, no upsampling layer.
            variants.DECODER_VARIANT: variants.variant("model", decoder="unet")}


def main(argv=None):
    return variants.compare_boundary_variants(argv, __doc__, "upsampling",
                                            "Tab. 5: joint vs separate upsampling of b and e", VARIANTS)


if __name__ == "__main__":
    main()
