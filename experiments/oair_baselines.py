r"""Tab. 1 / Fig. 9 / Fig. 11: OAIR and % of instances on cycles, our CRF vs ordering baselines, +/- decycling.

    python -m experiments.oair_baselines [--dataset synthetic|kins|cocoa] [--smoke] \
        [--checkpoint WORKDIR|FOLDER|synthetic]
                                         [--depth-noise 0.3] [--vote-noise 2.0]

The baselines (``oosis_jax.evaluation.baselines``) order GIVEN instances: the ground-truth masks always, and our
network's predicted masks with ``--checkpoint`` (so every method orders the same masks). Rows:
- Joint-Labeling (ours): the CRF order (on GT masks: the CRF fed with ground truth, Tab. 4's setting);
- bottom-y nearer, larger nearer: the pre-deep-learning heuristics;
- noisy depth: the synthetic per-instance depth with log-normal noise of relative spread ``--depth-noise``
  (the monocular-depth baselines of Sec. 5.5; synthetic only, the real datasets have no depth);
- pairwise boundary vote: each touching pair decided independently from oriented boundary evidence (GT
  heads degraded by ``oosis_jax.inference.heads.noisy_heads`` of strength ``--vote-noise``, or the network's
  heads), which can create cycles like the paper's pairwise classifiers, alone and after random decycling
  (Sec. 5.6, Fig. 11).
Writes ``runs/oair_baselines/results.md`` and OAIR plots per instance source.
"""

from __future__ import annotations

import numpy as np

from data.registry import info
from experiments import common, flags
from oosis_jax.evaluation import tables
from oosis_jax.evaluation.results import remove_curves
from oosis_jax.inference import heads as heads_lib

OURS = "Joint-Labeling (ours)"
SOURCES = ("GT masks", "predicted masks")  # where the instances come from; each has its own table and plots


def ordered(instance_map, classes, scores, edges) -> dict:
    return {"instance_map": np.asarray(instance_map), "classes": np.asarray(classes),
            "scores": np.asarray(scores, np.float64), "edges": np.asarray(edges, np.int64).reshape(-1, 2)}


def has_depths(examples) -> bool:
    """Whether the ground truth knows instance depths (synthetic scenes; KINS and COCOA carry NaN ones)."""
    return any(np.isfinite(np.asarray(x.get("depths", []), np.float64)).any() for x in examples)


def baseline_orderings(masks: dict, example: dict, heads: dict, depth_noise: float | None, seed: int) -> dict:
    """Name -> ordered instances for one image. ``masks``: the instances to order (instance_map, classes,
    scores); ``heads``: dict(b, e) for the pairwise vote; ``example``: the ground truth (for depth);
    ``depth_noise``: None leaves out the noisy-depth baseline (a dataset without depths, `has_depths`); so does
    an example without ``depths``."""
    from oosis_jax.evaluation import baselines
    from oosis_jax.evaluation import decycle

    inst, n = masks["instance_map"], len(masks["classes"])
    out = {"bottom-y nearer": baselines.bottom_y_edges(inst), "larger nearer": baselines.area_edges(inst)}
    if depth_noise is not None and "depths" in example:
        depth_map = np.concatenate([[np.nan], example["depths"]])[example["instance_map"]]
        depths = baselines.instance_depths(inst, depth_map)
        finite = np.isfinite(depths)
        depths[finite] = baselines.noisy_instance_depths(depths[finite], depth_noise, seed)
        out[f"noisy depth (log-normal, sigma {depth_noise:g})"] = baselines.depth_edges(inst, depths)
    vote = baselines.pairwise_vote_edges(inst, heads["b"], heads["e"])
    out["pairwise boundary vote"] = vote
    out["pairwise boundary vote + random decycling"] = decycle.random_decycle(n, vote, seed=seed)
    return {name: ordered(inst, masks["classes"], masks["scores"], edges) for name, edges in out.items()}


def sources(s: flags.Setup, examples, checkpoint, vote_noise: float):
    """Instance source name -> (ours: list of predictions, masks, heads) where masks/heads are per image."""
    from oosis_jax.inference import instances as prediction

    gt_ours = prediction.label_ground_truth(examples, info(s.dataset).num_classes, method=common.default_method(),
                                            processes=s.processes, progress=s.progress)
    gt_masks = [ordered(x["instance_map"], x["classes"], np.ones(len(x["classes"])), x["edges"]) for x in examples]
    n = info(s.dataset).num_classes
    gt_heads = [heads_lib.noisy_heads(x, n, vote_noise, seed=i) for i, x in enumerate(examples)]
    found = {SOURCES[0]: (gt_ours, gt_masks, gt_heads)}
    if checkpoint:
        preds = common.predict(checkpoint, examples, s)
        found[SOURCES[1]] = (preds, [ordered(p.instance_map, p.classes, p.scores, p.edges) for p in preds],
                             [{"b": p.b, "e": p.e} for p in preds])
    return found


def run(s: flags.Setup, checkpoint=None, depth_noise: float = 0.3, vote_noise: float = 2.0) -> dict:
    """Source -> method -> `evaluation.evaluate` results."""
    from oosis_jax import evaluation

    examples = common.held_out_examples(s)
    depth_noise = depth_noise if has_depths(examples) else None
    results = {}
    for source, (ours, masks, heads) in sources(s, examples, checkpoint, vote_noise).items():
        per_method = {OURS: list(ours)}
        for i, (m, x, h) in enumerate(zip(masks, examples, heads)):
            for name, o in baseline_orderings(m, x, h, depth_noise, seed=i).items():
                per_method.setdefault(name, []).append(o)
        results[source] = {name: evaluation.evaluate(preds, examples, boundaries=False, progress=False)
                           for name, preds in per_method.items()}
    return results


def main(argv=None):
    p = flags.parser(__doc__, "oair_baselines")
    p.add_argument("--checkpoint", default=None,
                   help="also order a network's predicted masks (workdir, exported folder or shipped name)")
    p.add_argument("--depth-noise", type=flags.non_negative_float, default=0.3,
                   help="log-normal sigma of the depth baseline")
    p.add_argument("--vote-noise", type=flags.non_negative_float, default=2.0,
                   help="degradation of the GT heads for the vote")
    args = p.parse_args(argv)
    s = flags.setup(args)
    from oosis_jax import evaluation

    network = common.checkpoint_predictor(args.checkpoint, s)
    results = run(s, network, args.depth_noise, args.vote_noise)
    text, plots = "", []
    for source in set(SOURCES) - set(results):  # an earlier run's pictures of a source this run has not
        remove_curves(s.out / source.replace(" ", "_"))
    for source, by_method in results.items():
        rows = [tables.summary_row(name, r) for name, r in by_method.items()]
        text += f"## Instances: {source}\n\n" + tables.markdown(tables.SUMMARY_HEADERS, rows) + "\n"
        folder = s.out / source.replace(" ", "_")
        plots += evaluation.plot_curves(by_method, folder)
    notes = ("mAP and WC depend only on the masks, so every baseline row of one source shares them; OAIR "
             "accuracy and cycles show the ordering. On GT masks the baselines recover every pair by construction, "
             "while Joint-Labeling orders its own instances (the CRF on ground-truth inputs): its recall, mAP and "
             "WC are not comparable to theirs there, only its accuracy and cycles." +
             ("" if any(n.startswith("noisy depth") for n in results[SOURCES[0]]) else
              " No noisy-depth row: this dataset has no depths."))
    common.report(s, "Tab. 1 / Fig. 9 / Fig. 11: ordering baselines and cycles", text, notes, data=results,
                  plots=plots, images=results[SOURCES[0]][OURS]["num_images"])
    return results


if __name__ == "__main__":
    main()
