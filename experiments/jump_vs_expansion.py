r"""Supplement Sec. 2: jump moves vs expansion moves for the energy of Eq. (8).

    python -m experiments.jump_vs_expansion [--dataset synthetic|kins|cocoa] [--smoke] \
        [--checkpoint WORKDIR|FOLDER|synthetic]

Runs each minimiser on the same CRF inputs (ground-truth sigma and O, or the heads of a trained network with
``--checkpoint``) in this process, one image at a time, and reports the mean energy reached, how often it is
the lowest of all methods, the mean time per image, the mean highest label used, and mask/OAIR metrics of the
resulting instances. Writes ``runs/jump_vs_expansion/results.md`` and ``energy.png`` (energy per image).
"""

from __future__ import annotations

import numpy as np

from data.registry import info
from experiments import common, flags
from oosis_jax.evaluation import tables


def methods() -> dict:
    """Name -> minimiser ``f(sigma, occ, lam, mu) -> int32 (H, W)``: the paper's two, plus ``crf.solve``."""
    import crf

    found = {"jump moves (paper)": crf.jump_moves, "expansion moves": crf.expansion_moves}
    if hasattr(crf, "solve"):
        found["crf.solve (project default)"] = crf.solve
    return found


def crf_problems(examples, s: flags.Setup, checkpoint):
    """``(inputs, heads)``: per image a ``(sigma, occ)`` pair and the ``dict(s, b, e)`` it came from."""
    from oosis_jax.inference import crf_inputs
    from oosis_jax.inference import instances as prediction

    if checkpoint:
        heads = common.heads(checkpoint, examples, s)
        inputs = [crf_inputs.predicted_crf_inputs(h["s"], h["b"], h["e"]) for h in heads]
    else:
        heads = prediction.ground_truth_heads_of(examples, info(s.dataset).num_classes)
        inputs = [crf_inputs.gt_crf_inputs(x["instance_map"], x["edges"]) for x in examples]
    return inputs, heads


def run(s: flags.Setup, checkpoint=None) -> tuple[dict, dict]:
    """``(per_method, results)``: energies/times/label counts per image, and `evaluation.evaluate` results."""
    import crf
    from oosis_jax import evaluation
    from oosis_jax.inference import instances as prediction

    examples = common.held_out_examples(s)
    inputs, heads = crf_problems(examples, s, checkpoint)
    per_method, results = {}, {}
    for name, minimise in methods().items():
        minimise(*inputs[0])  # warmed up (untimed): the first call of a process pays numba's dispatch and loading
        energies, seconds, labels_used, predictions = [], [], [], []
        for (sigma, occ), h in zip(inputs, heads):
            labels, took = common.timed(minimise, sigma, occ)
            energies.append(crf.energy(labels, sigma, occ))
            seconds.append(took)
            labels_used.append(int(labels.max(initial=0)))
            predictions.append(prediction.assemble(labels, h["s"], h["b"], h["e"]))
        per_method[name] = {"energy": np.array(energies), "seconds": np.array(seconds),
                            "labels": np.array(labels_used)}
        results[name] = evaluation.evaluate(predictions, examples, boundaries=False, progress=False)
    return per_method, results


def table(per_method: dict, results: dict) -> str:
    best = np.min(np.stack([m["energy"] for m in per_method.values()]), axis=0)
    rows = []
    for name, m in per_method.items():
        r = results[name]
        rows.append([name, f"{np.mean(m['energy']):.1f}", tables.percent(np.mean(m["energy"] <= best + 1e-6)),
                     f"{1000 * np.mean(m['seconds']):.2f}", f"{np.mean(m['labels']):.2f}",
                     tables.percent(r["mask"]["mAP"]), tables.percent(r["weighted_coverage"]),
                     tables.percent(r["oair_iou"]["recall"][0]), tables.percent(r["oair_iou"]["accuracy"][0])])
    headers = ("Minimiser", "mean energy (Eq. 8)", "% images at lowest energy", "ms / image", "mean highest label",
               "mAP", "WC", "OAIR recall@0.5", "OAIR accuracy@0.5")
    return tables.markdown(headers, rows)


def plot(per_method: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference = next(iter(per_method.values()))["energy"]
    order = np.argsort(reference)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, m in per_method.items():
        ax.plot(m["energy"][order], marker=".", linestyle="-", label=name)
    ax.set_xlabel("image (sorted by the jump-move energy)")
    ax.set_ylabel("energy reached (Eq. 8)")
    ax.set_title("Jump vs expansion moves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = flags.parser(__doc__, "jump_vs_expansion")
    p.add_argument("--checkpoint", default=None,
                   help="a network's heads instead of ground truth (workdir, exported folder or shipped name)")
    args, given = flags.parse_noting_given(p, argv, ["processes"])
    flags.refuse_unused(p, given, {"processes": "--processes"},
                        "jump_vs_expansion (one process: each minimiser is timed alone on the same core)")
    s = flags.setup(args)
    per_method, results = run(s, common.checkpoint_predictor(args.checkpoint, s))
    plot_path = s.out / "energy.png"
    plot(per_method, plot_path)
    source = "network heads" if args.checkpoint else "ground-truth sigma and O"
    common.report(s, "Supplement Sec. 2: jump vs expansion moves", table(per_method, results),
                  f"CRF inputs: {source}; lambda = 20, mu = 100; single process, each minimiser warmed up on the "
                  "first image (untimed).",
                  data={"per_method": per_method, "results": results}, plots=[plot_path],
                  images=next(iter(results.values()))["num_images"])
    return per_method, results


if __name__ == "__main__":
    main()
