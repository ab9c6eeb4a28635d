r"""Which errors of the predicted boundaries limit the instances (issue 14's diagnosis).

    python -m experiments.boundary_errors [--checkpoint synthetic] [--split test] [--scenes 40] \
        [--out runs/boundary_errors]

``--checkpoint`` takes anything ``Predictor.from_pretrained`` takes; the CRF runs with that predictor's own
options (lambda, robustness) and its instances are scored ad hoc and not joined (the repairs are measured on
the CRF's own output, Sec. 3.2). First table: the predicted boundary pixels by distance to the ground truth
(`oosis_jax.inference.boundary_errors`): per scene, share, median b, orientation accuracy. Second table: the
CRF on oracle inputs, each repairing one kind of error with the ground truth (same scenes, same sigma).
Writes ``table.md``, ``rows.json`` and ``boundaries.png`` (exact green, off by one orange, spurious red,
missed blue) to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from data import targets
from data.examples import synthetic_scenes
from data.registry import SYNTHETIC_SEEDS
from experiments import flags
from experiments.common import SYNTHETIC_SIZE
from oosis_jax.evaluation import evaluate
from oosis_jax.evaluation.tables import HELD_OUT_HEADERS, held_out_row, strict_json
from oosis_jax.inference import boundary_errors as errors
from oosis_jax.inference.crf_inputs import predicted_boundary, sigma_from_semantic
from oosis_jax.inference.instances import label_inputs

COLOURS = {"exact": (0, 170, 0), "off_by_one": (230, 170, 0), "spurious": (230, 0, 0), "missed": (0, 0, 230)}
COLOUR_NAMES = {"exact": "green", "off_by_one": "orange", "spurious": "red", "missed": "blue"}
# the picture's title: which colour is which kind of pixel (white: no boundary)
KEY = "boundary pixels: " + ", ".join(f"{COLOUR_NAMES[k]} {k.replace('_', ' ')}" for k in COLOURS)


def pixel_table(per_image: list[dict]) -> tuple[list[str], list[list]]:
    """Headers and rows of the first table from `errors.pixel_errors` of every image (None where a value is
    undefined: no pixel of the kind, or no orientation to check)."""
    n = len(per_image)
    predicted = sum(x[c] for x in per_image for c in errors.CATEGORIES)
    rows = []
    for name in (*errors.CATEGORIES, "missed"):
        count = sum(x[name] for x in per_image)
        share = 100.0 * count / max(predicted if name != "missed" else sum(x["gt"] for x in per_image), 1)
        values = np.concatenate([x.get(f"b_{name}", np.zeros(0)) for x in per_image])
        hits = sum(x.get(f"hits_{name}", 0) for x in per_image)
        rows.append([name, round(count / n, 1), round(share, 1),
                     round(float(np.median(values)), 2) if values.size else None,
                     round(100.0 * hits / count, 1) if f"hits_{name}" in per_image[0] and count else None])
    headers = ["pixels", "per scene", "% of predicted (missed: % of GT)", "median b", "orientation accuracy %"]
    return headers, rows


def picture(scenes, boundaries, truths, path: Path, count: int = 4) -> None:
    from oosis_jax import visualize

    images, titles = [], []
    for x, boundary, (gt_boundary, _) in list(zip(scenes, boundaries, truths))[:count]:
        canvas = np.full((*boundary.shape, 3), 255, np.uint8)
        for name, mask in errors.pixel_categories(boundary, gt_boundary).items():
            canvas[mask] = COLOURS[name]
        images += [x["image"], canvas]
        titles += ["input", KEY]
    visualize.save_panel(path, images, titles, ncols=2, tile_inches=4.0)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.boundary_errors",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="synthetic", help="shipped name, exported folder or workdir")
    parser.add_argument("--split", default="test", choices=SYNTHETIC_SEEDS, help="synthetic split")
    parser.add_argument("--scenes", type=flags.positive_int, default=40)
    parser.add_argument("--processes", type=flags.positive_int, default=None)
    parser.add_argument("--out", default="runs/boundary_errors", type=flags.folder)
    args = parser.parse_args(argv)
    predictor = flags.load_predictor("boundary_errors", args.checkpoint)  # one JAX device per core first
    flags.make_folder(parser, "--out", args.out)  # after the model: a bad --checkpoint leaves no folder
    out = Path(args.out)
    scenes = synthetic_scenes(args.split, args.scenes, SYNTHETIC_SIZE)
    heads = predictor.heads([x["image"] for x in scenes], progress=True)
    sigmas = [sigma_from_semantic(h["s"]) for h in heads]
    boundaries = [predicted_boundary(h["b"], sigma, robustness=predictor.robustness) for h, sigma in zip(heads, sigmas)]
    truths = [targets.boundary_targets(x["instance_map"], x["edges"]) for x in scenes]
    per_image = [errors.pixel_errors(bnd, h["b"], h["e"], gt_b, gt_e)
                 for bnd, h, (gt_b, gt_e) in zip(boundaries, heads, truths)]
    headers, rows = pixel_table(per_image)
    lines = [f"{args.scenes} `{args.split}` scenes, model `{args.checkpoint}`, CRF lambda {predictor.lam}, "
             f"{predictor.robustness}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in r) + " |" for r in rows]
    # the repairs change the CRF's input, not the b and e maps: their boundary APs are the network's in every row
    kept = [i for i, h in enumerate(HELD_OUT_HEADERS) if h not in ("boundary AP", "oriented AP")]
    oracle_rows, network = {}, None
    for repair in errors.REPAIRS:
        inputs = [(sigma, errors.oracle_inputs(bnd, h["e"], gt_b, gt_e, repair))
                  for sigma, bnd, h, (gt_b, gt_e) in zip(sigmas, boundaries, heads, truths)]
        predictions = label_inputs(inputs, heads, method=predictor.method, processes=args.processes,
                                   progress=False, lam=predictor.lam, mu=predictor.mu, robustness=predictor.robustness)
        results = evaluate(predictions, scenes, progress=False, boundaries=network is None)
        network = network or results["boundaries"]  # the same maps in every row: evaluated once
        row = held_out_row({**results, "boundaries": network})
        oracle_rows[repair] = {HELD_OUT_HEADERS[i]: row[i] for i in kept}
        print(f"{repair}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in oracle_rows[repair].items()), flush=True)
    lines += ["", f"The network's b and e maps (every row's): boundary AP {100 * network['plain']['AP']:.1f}, "
              f"oriented AP {100 * network['oriented']['AP']:.1f}.", "",
              "| repaired with the ground truth | " + " | ".join(HELD_OUT_HEADERS[i] for i in kept) + " |",
              "|" + "---|" * (len(kept) + 1)]
    lines += [f"| {repair} | " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values())
              + " |" for repair, row in oracle_rows.items()]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    pixels = [dict(zip(headers, r)) for r in rows]
    (out / "rows.json").write_text(strict_json({"pixels": pixels, "oracle": oracle_rows}, indent=1))
    picture(scenes, boundaries, truths, out / "boundaries.png")
    print("\n".join(lines))
    print(f"wrote {out / 'table.md'}, {out / 'rows.json'} and {out / 'boundaries.png'}")


if __name__ == "__main__":
    main()
