"""Trained models and CRF options on held-out synthetic scenes: one row each (the issue's lever table).

    python -m experiments.held_out --checkpoint shipped=runs/shipped --checkpoint demo=runs/demo/train_cpu \
        --robustness paper --robustness high=0.3,min_segment=4,min_area=30 --out runs/held_out

The network heads of every checkpoint are computed once per scene set (cached as ``heads_<name>.npz`` in
``--out``); each ``--robustness`` setting (``paper`` = all off, else ``KEY=VALUE`` pairs of
`oosis_jax.robustness.Robustness`) then only reruns the CRF. Scene sets: the demo's 40 held-out scenes
(seeds 2,000,000..) and ``--second`` others (seeds 3,000,000..), both 120x160 as the demo.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from data.synthetic import make_scene
from oosis_jax import evaluation, prediction
from oosis_jax.robustness import Robustness

SCENE_SETS = {"demo": 2_000_000, "other": 3_000_000}
SIZE = (120, 160)


def parse_robustness(text: str) -> Robustness:
    """``"paper"`` or ``"high=0.3,min_segment=4,min_area=30"`` -> `Robustness`."""
    if text == "paper":
        return Robustness()
    fields = {}
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        if key not in ("high", "min_segment", "min_foreground", "min_support", "min_area"):
            raise ValueError(f"unknown robustness option {key!r} in {text!r}")
        fields[key] = float(value) if key in ("high", "min_foreground", "min_support") else int(value)
    return Robustness(**fields)


def scene_set(name: str, count: int) -> list[dict]:
    return [make_scene(SCENE_SETS[name] + i, *SIZE) for i in range(count)]


def cached_heads(checkpoint: str, tag: str, scenes: list[dict], out: Path) -> list[dict]:
    """Head probabilities of ``checkpoint`` on ``scenes``, from ``out/heads_<tag>.npz`` when present."""
    path = out / f"heads_{tag}.npz"
    if path.exists():
        with np.load(path) as f:
            if len(f["b"]) == len(scenes):
                return [{"s": f["s"][i], "b": f["b"][i], "e": f["e"][i]} for i in range(len(scenes))]
    from oosis_jax import predict, train

    model, _ = train.restore_model(checkpoint)
    heads = [predict.head_probabilities(model, x["image"]) for x in scenes]
    np.savez_compressed(path, **{k: np.stack([h[k] for h in heads]) for k in ("s", "b", "e")})
    return heads


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=WORKDIR")
    parser.add_argument("--robustness", action="append", default=None, metavar="paper|KEY=VALUE,...")
    parser.add_argument("--lam", type=float, action="append", default=None, help="Eq. (8) lambda (repeatable)")
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--sets", default="demo,other")
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument("--out", default="runs/held_out")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = args.robustness or ["paper"]
    rows = []
    for set_name in args.sets.split(","):
        scenes = scene_set(set_name, args.scenes)
        for spec in args.checkpoint:
            name, _, workdir = spec.partition("=")
            heads = cached_heads(workdir, f"{name}_{set_name}", scenes, out)
            for text, lam in [(t, lam) for t in settings for lam in args.lam or [prediction.LAMBDA]]:
                start = time.time()
                preds = prediction.label_heads(heads, processes=args.processes, progress=False, lam=lam,
                                               robustness=parse_robustness(text))
                results = evaluation.evaluate(preds, scenes, progress=False)
                b = results["boundaries"]
                row = dict(set=set_name, model=name, robustness=text, lam=lam, crf_seconds=round(time.time() - start, 1),
                           wc=100 * results["weighted_coverage"], recall=100 * results["oair_iou"]["recall"][0],
                           accuracy=100 * results["oair_iou"]["accuracy"][0], mAP=100 * results["mask"]["mAP"],
                           boundary_ap=100 * b["plain"]["AP"], oriented_ap=100 * b["oriented"]["AP"],
                           instances_per_scene=results["num_pred_instances"] / len(scenes),
                           gt_per_scene=results["num_gt_instances"] / len(scenes))
                rows.append(row)
                print(" | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    with open(out / "rows.jsonl", "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"appended {len(rows)} rows to {os.path.join(out, 'rows.jsonl')}")


if __name__ == "__main__":
    main()
