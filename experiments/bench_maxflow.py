"""Which max-flow for which CRF move: Boykov-Kolmogorov alone, push-relabel alone and the default (``crf.hybrid``:
BK handing long-path graphs over to push-relabel), on the same jump-move graphs.

    python -m experiments.bench_maxflow [--synthetic 615x2048] [--scenes 3] [--predicted 700x900] [--views shipped 2x]
        [--predicted-scenes 1]
    python -m experiments.bench_maxflow --smoke      # seconds: tiny inputs, one tiny predicted scene

Inputs: the ``gt`` and ``noisy`` synthetic scenes and the ``adversarial`` random input of
``experiments/bench_crf.py``, and ``predicted``: the shipped synthetic model's CRF inputs (its test-time views and
robustness options, ``Predictor.from_pretrained("synthetic")``) for synthetic scenes of ``--predicted`` size,
seen with the shipped views (``shipped``: 2x, capped by ``max_pixels``, so 1x at 700x900) and with uncapped 2x
views (``2x``, as before that cap). For every jump move of ``crf.jump_moves`` on each image, the move's graph
(``crf.move_graph``, built outside the timing) is solved by each method through ``crf.maxflow.solve_grid``; the
three cuts must have the same value. "moves/image": jump moves per image; "handed over (all moves)": the moves
where the default's BK gave up, of all the row's moves (every image); "BK's cut found (all moves)": the moves where
the method returned exactly BK's sink side (where several minimum cuts tie exactly, floating-point rounding may
make the algorithms pick different ones), also counted over all the row's images. The machine may be shared:
the methods run in the same process, interleaved, so compare their ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from experiments.flags import image_size, parse_noting_given, positive_int, refuse_unused
from crf.boykov_kolmogorov import Workspace, boykov_kolmogorov
from crf.hybrid import STOP_PATH, default_stop_steps
from crf.maxflow import AUTO, BOYKOV_KOLMOGOROV, PUSH_RELABEL, _residual_graph, cut_value, solve_grid
from crf.move_graph import BOUNDS, jump_move_graph
from crf.move_solver import MoveSolver
from experiments.bench_crf import adversarial_inputs, scene_inputs

METHODS = (("BK", BOYKOV_KOLMOGOROV), ("push-relabel", PUSH_RELABEL), ("default", AUTO))
HEADERS = ("input", "size", "images", "moves/image", "handed over (all moves)", "BK s/image", "push-relabel s/image",
           "default s/image", "default / BK", "default / push-relabel", "slowest move BK / default s",
           "BK's cut found (all moves): push-relabel / default")


def predicted_inputs(height: int, width: int, views, scenes: int):
    """``{views: [(sigma, occ, lam)]}``: the shipped model's CRF inputs for ``scenes`` synthetic scenes, with
    each of ``views`` ("shipped" or "2x")."""
    from data.synthetic.scene import make_scene
    from oosis_jax import Predictor
    from oosis_jax.inference import crf_inputs

    shipped = Predictor.from_pretrained("synthetic")
    images = [make_scene(seed, height, width)["image"] for seed in range(scenes)]
    out = {}
    for name in views:
        augmentation = shipped.augmentation if name == "shipped" else dataclasses.replace(
            shipped.augmentation, scales=(2.0,), max_pixels=None)
        heads = shipped.replace(augmentation=augmentation).heads(images, label_grid=True)
        out[name] = [(*crf_inputs.predicted_crf_inputs(h["s"], h["b"], h["e"], robustness=shipped.robustness),
                       shipped.lam) for h in heads]
    return out


def handed_over(graph) -> bool:
    """Whether the default solver's BK gives up on this graph (``crf.hybrid``)."""
    res, tcap, excess, _ = _residual_graph(graph.tedges, graph.right, graph.down, False)
    n = excess.shape[0]
    return not boykov_kolmogorov(res, excess - tcap, graph.tedges.shape[1], *Workspace(n).arrays(n),
                                 default_stop_steps(n), STOP_PATH)[1]


def time_image(sigma, occ, lam) -> tuple[dict, int, int, dict]:
    """Per-move seconds of each method on the jump moves of one image, the number of moves, of moves handed
    over, and of moves where each other method found BK's very cut; raises if a cut's value differs."""
    solver = MoveSolver(sigma, occ, lam, 100.0)
    labels = np.zeros(sigma.shape, np.int32)
    seconds = {name: [] for name, _ in METHODS}
    same = {name: 0 for name, _ in METHODS[1:]}
    handed = 0
    while True:
        graph = jump_move_graph(labels, sigma, occ, lam, 100.0)
        cuts = []
        for name, method in METHODS:
            start = time.perf_counter()
            cuts.append(solve_grid(graph.tedges, graph.right, graph.down, method)[1])
            seconds[name].append(time.perf_counter() - start)
        values = [cut_value(graph.tedges, graph.right, graph.down, cut) for cut in cuts]
        if not np.allclose(values, values[0], rtol=1e-9, atol=1e-9):
            raise AssertionError(f"the methods' cut values differ on move {len(seconds['BK'])}: {values}")
        for (name, _), cut in zip(METHODS[1:], cuts[1:]):
            same[name] += np.array_equal(cut, cuts[0])
        handed += handed_over(graph)
        move = solver.move(labels, 1, 1, BOUNDS["constant"])
        if not move.any():
            return seconds, len(seconds["BK"]), handed, same
        labels += move


def row(name: str, images: list) -> list:
    totals = {method: 0.0 for method, _ in METHODS}
    moves = handed = 0
    slowest = (0.0, 0.0)
    same = {name: 0 for name, _ in METHODS[1:]}
    for sigma, occ, lam in images:
        seconds, count, over, equal = time_image(sigma, occ, lam)
        moves, handed = moves + count, handed + over
        same = {name: same[name] + equal[name] for name in same}
        for method in totals:
            totals[method] += sum(seconds[method])
        k = int(np.argmax(seconds["BK"]))
        slowest = max(slowest, (seconds["BK"][k], seconds["default"][k]))
    per = {method: total / len(images) for method, total in totals.items()}
    return [name, "x".join(map(str, images[0][0].shape)), len(images), f"{moves / len(images):.1f}",
            f"{handed}/{moves}", f"{per['BK']:.3f}", f"{per['push-relabel']:.3f}", f"{per['default']:.3f}",
            f"{per['default'] / per['BK']:.2f}", f"{per['default'] / per['push-relabel']:.2f}",
            f"{slowest[0]:.2f} / {slowest[1]:.2f}", f"{same['push-relabel']} / {same['default']}"]


# the options --smoke sets itself (dest -> flag): given with it, they are refused, not silently replaced
SMOKE_SETS = {"synthetic": "--synthetic", "scenes": "--scenes", "adversarial": "--adversarial",
              "predicted": "--predicted", "views": "--views", "predicted_scenes": "--predicted-scenes"}


def main(argv=None) -> str:
    from oosis_jax.evaluation.tables import markdown

    p = argparse.ArgumentParser(prog="python -m experiments.bench_maxflow", description=__doc__.split("\n\n")[0])
    p.add_argument("--synthetic", type=image_size, default=(615, 2048), help="size of the gt and noisy scenes")
    p.add_argument("--scenes", type=positive_int, default=3, help="images per gt and per noisy row")
    p.add_argument("--adversarial", type=image_size, default=(200, 200))
    p.add_argument("--predicted", type=image_size, default=(700, 900), help="scene size of the predicted rows")
    p.add_argument("--views", nargs="*", default=["shipped", "2x"], choices=["shipped", "2x"],
                   help="views of the predicted rows (none: skip them)")
    p.add_argument("--predicted-scenes", type=positive_int, default=1,
                   help="images per predicted row (2x: ~6 min each)")
    p.add_argument("--smoke", action="store_true", help="seconds: tiny inputs, one tiny predicted scene")
    args, given = parse_noting_given(p, argv, SMOKE_SETS)
    if args.smoke:
        refuse_unused(p, given, SMOKE_SETS, "--smoke, which sets tiny inputs and one tiny predicted scene itself")
        args.synthetic, args.scenes, args.adversarial, args.predicted = (60, 160), 1, (30, 30), (48, 64)
        args.views, args.predicted_scenes = ["shipped"], 1
    solve_grid(np.ones((2, 2, 2)), np.ones((2, 2, 2)), np.ones((2, 2, 2)))  # load the numba caches first
    solve_grid(np.ones((2, 2, 2)), np.ones((2, 2, 2)), np.ones((2, 2, 2)), PUSH_RELABEL)
    rows = []
    for variant in ("gt", "noisy"):
        images = [(*scene_inputs(seed, *args.synthetic, variant)[:2], 20.0) for seed in range(args.scenes)]
        rows.append(row(variant, images))
    rows.append(row("adversarial", [(*adversarial_inputs(0, *args.adversarial), 20.0)]))
    predicted = predicted_inputs(*args.predicted, args.views, args.predicted_scenes) if args.views else {}
    for name, images in predicted.items():
        rows.append(row(f"predicted, {name} views", images))
    table = markdown(HEADERS, rows)
    print(f"\n## Max-flow per jump move: BK, push-relabel, the default\n\n{table}")
    return table


if __name__ == "__main__":
    main()
