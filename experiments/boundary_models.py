"""Tab. 3a: our disentangled boundary model (b, e heads, Eq. 3-4) vs the entangled P2ORM-style head.

    python -m experiments.boundary_models [--dataset synthetic|kins|cocoa] [--smoke] [--steps N]
                                          [--train-minutes M] [--variants NAME ...]

Trains the same PSPNet twice, once with the disentangled s/b/e heads and once with one entangled 5-way
softmax over {occludes left, right, top, bottom, no boundary} (Eq. 1-2), and reports oriented occlusion
boundary ODS/OIS/AP (NMS-applied, POR curves, Sec. 5.6) and plain boundary AP on held-out images.
Writes ``runs/boundary_models/results.md`` and the precision-recall plot.
"""

from __future__ import annotations

from experiments import variants

VARIANTS = {"P2ORM-style entangled head": variants.variant("model", head="entangled"),
            "Ours (disentangled b, e)": variants.variant("model", head="disentangled"),
            # Beyond the paper (issue 14): the disentangled heads on full-resolution decoder features.
            variants.DECODER_VARIANT: variants.variant("model", decoder="unet")}


def main(argv=None):
    return variants.compare_boundary_variants(argv, __doc__, "boundary_models",
                                            "Tab. 3a: oriented occlusion boundary model", VARIANTS)


if __name__ == "__main__":
    main()
