"""Speed and memory of the CRF stage (paper Sec. 3.2-3.3): our numba max-flow vs PyMaxflow, same jump moves,
and ``crf.solve`` against ``crf.jump_moves`` (issue 15).

    python -m experiments.bench_crf [--sizes 615x2048 308x1024 154x512] [--scenes 3] [--adversarial 200x200]
        [--large 2000x3000] [--smoke]

Inputs are synthetic scenes (``data.synthetic.make_scene``) in two variants: ``gt`` (sigma = 1 on background
and 0 on instances, occ = ``data.targets.occlusion_map``) and ``noisy`` (sigma blurred and perturbed,
10% of the occlusion pairs dropped and spurious ones added, fixed seed), the latter resembling predictions;
``adversarial`` rows have random sigma and random O at half density (``adversarial_inputs``), the ``--large``
rows are one noisy image, timed without PyMaxflow. Every jump move of ``crf.jump_moves`` is solved by ours
(``crf.move_solver``, capacities built inside the max-flow's arrays) and by PyMaxflow, which must agree on the
flow. PyMaxflow gets the move's capacities as numpy arrays (``crf.move_graph``, built before its timing starts:
that code is ours, not the reference's) and is timed twice over: its graph build and solve (the ratios' PyMaxflow),
and its solve (``maxflow()``) alone. The solve time of our push-relabel (``method="push_relabel"``, on the numpy
graph) is listed for reference. "Per image" is the end-to-end ``crf.jump_moves`` wall time against the sum of the
PyMaxflow moves (build and solve); ``crf.solve`` is timed right after it on the same image. Peak memory is the
peak resident set of a fresh process that imports ``crf`` (and this module, never JAX) and labels the row's
last image with jump_moves or solve (VmHWM of /proc/self/status, Linux; in brackets the increase over the
resident set before labelling, the inputs already loaded). The machine may be shared: the solvers run in the
same process, interleaved, so their ratios are what to compare.

The second table measures the known behaviour of Sec. 3.3 on ground-truth inputs: images whose jump-move
labeling merges touching instances or leaves a band of an instance at a lower label, with weighted coverage
(Eq. 16) and OAIR recall / accuracy at IoU 0.5 (Sec. 4) of the resulting instances.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import multiprocessing
import sys
import time

import numpy as np

import crf
from experiments.flags import image_size, non_negative_int, parse_noting_given, positive_int, refuse_unused
from crf.maxflow import PUSH_RELABEL, cut_value, solve_grid
from crf.move_graph import BOUNDS, jump_move_graph
from crf.move_solver import MoveSolver
from tests.helpers.pymaxflow import pymaxflow_grid  # the test oracle itself: the timed graph is the tested one

NOISE_SEED = 12345


def scene_inputs(seed, height, width, variant):
    """``(sigma, occ, scene)`` of one synthetic scene; ``variant`` is ``"gt"`` or ``"noisy"``."""
    from scipy.ndimage import gaussian_filter

    from data.synthetic import make_scene
    from data.targets import occlusion_map

    scene = make_scene(seed, height, width)
    sigma = (scene["instance_map"] == 0).astype(np.float64)
    occ = occlusion_map(scene["instance_map"], scene["edges"])
    if variant == "noisy":
        rng = np.random.default_rng(NOISE_SEED + seed)
        sigma = np.clip(gaussian_filter(sigma, 2.0) + rng.normal(0.0, 0.1, sigma.shape), 0.0, 1.0)
        occ = occ & (rng.random(occ.shape) >= 0.1)
        spurious = rng.random(occ.shape) < 0.002
        spurious[:, 0, 0] = spurious[:, -1, 1] = spurious[0, :, 2] = spurious[-1, :, 3] = False
        occ = occ | spurious
    return sigma, occ, scene


def adversarial_inputs(seed, height, width):
    """Random sigma and random occlusion pairs at half density (issue 15's pathological input): thousands of
    one-pixel regions tied together by O, labels up to ~50."""
    rng = np.random.default_rng(seed)
    occ = rng.random((height, width, 4)) < 0.5
    occ[:, 0, 0] = occ[:, -1, 1] = occ[0, :, 2] = occ[-1, :, 3] = False
    return rng.random((height, width)), occ


def time_moves(sigma, occ, pymaxflow=True):
    """Seconds per move of ours (``crf.move_solver``, as ``crf.jump_moves`` runs it), of PyMaxflow's graph build
    and solve, and of its solve (``maxflow()``) alone, on the same jump moves (PyMaxflow's input, our capacities as
    numpy arrays, is built outside its timing); the number of moves whose flows agree, and the labeling each move
    started from (the last one is the result). Without ``pymaxflow`` only ours is timed (``theirs`` and
    ``solves`` are empty)."""
    labels = np.zeros(sigma.shape, dtype=np.int32)
    solver = MoveSolver(sigma, occ, 20.0, 100.0)
    ours, theirs, solves, agree, visited = [], [], [], 0, []
    while True:
        visited.append(labels.copy())
        start = time.perf_counter()
        move = solver.move(labels, 1, 1, BOUNDS["constant"])
        ours.append(time.perf_counter() - start)
        if pymaxflow:
            graph = jump_move_graph(labels, sigma, occ)
            start = time.perf_counter()
            pm_graph, _ = pymaxflow_grid(*graph[:3])
            built = time.perf_counter()
            pm_flow = pm_graph.maxflow()
            end = time.perf_counter()
            theirs.append(end - start)
            solves.append(end - built)
            flow = cut_value(graph.tedges, graph.right, graph.down, move)
            agree += abs(flow - pm_flow) <= 1e-9 * max(1.0, abs(pm_flow))
        if not move.any():
            return np.array(ours), np.array(theirs), np.array(solves), agree, visited
        labels += move


def _memory_mb(field):
    """A field of /proc/self/status in MB (Linux): VmRSS = resident now, VmHWM = peak resident."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise ValueError(f"{field} not found in /proc/self/status")


def _labelled_peak_rss(sigma, occ, method):
    """Run in a fresh (spawned) process, which imports this module (numpy, numba, ``crf`` and the little it
    needs to make inputs; never JAX): (resident MB before labelling, peak resident MB)."""
    crf.solve(np.full((3, 3), 0.2), np.zeros((3, 3, 4), bool))  # load the numba caches
    before = _memory_mb("VmRSS")
    getattr(crf, method)(sigma, occ)
    return before, _memory_mb("VmHWM")


def peak_memory_mb(sigma, occ, method="jump_moves"):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_labelled_peak_rss, sigma, occ, method).result()


def time_push_relabel(sigma, occ, labels_per_move):
    """Seconds per move of our push-relabel on the same graphs (build excluded)."""
    seconds = []
    for labels in labels_per_move:
        graph = jump_move_graph(labels, sigma, occ)
        start = time.perf_counter()
        solve_grid(graph.tedges, graph.right, graph.down, PUSH_RELABEL)
        seconds.append(time.perf_counter() - start)
    return seconds


def _inputs(seed, height, width, variant):
    if variant == "adversarial":
        return adversarial_inputs(seed, height, width)
    return scene_inputs(seed, height, width, variant)[:2]


def progress(table, headers, row):
    """A finished row of ``table`` on stderr while the others run (minutes each), its cells named by ``headers``:
    ``speed: size = 615x2048, inputs = gt, ...``. The tables themselves are printed at the end."""
    cells = ", ".join(f"{header} = {cell}" for header, cell in zip(headers, row))
    print(f"{table}: {cells}", file=sys.stderr, flush=True)


def speed_row(height, width, variant, scenes, pymaxflow=True):
    """One row of the speed table: per-move and per-image times of ours and PyMaxflow (jump moves), crf.solve
    per image and its ratio to crf.jump_moves (each image: jump_moves, then solve), peak memory of both; reported
    as `progress` once measured."""
    ours, theirs, solves, push_relabel, agree, image_jump, image_solve = [], [], [], [], 0, [], []
    for seed in range(scenes):
        sigma, occ = _inputs(seed, height, width, variant)
        o, t, pm_solve, a, visited = time_moves(sigma, occ, pymaxflow)
        if pymaxflow:
            push_relabel += time_push_relabel(sigma, occ, visited)
        start = time.perf_counter()
        labels = crf.jump_moves(sigma, occ)
        image_jump.append(time.perf_counter() - start)
        np.testing.assert_array_equal(labels, visited[-1])  # checked after the clock stops (1 % of its time)
        start = time.perf_counter()
        crf.solve(sigma, occ)
        image_solve.append(time.perf_counter() - start)
        ours.append(o)
        theirs.append(t)
        solves.append(pm_solve)
        agree += a
    moves = sum(len(o) for o in ours)
    ours, theirs, solves = np.concatenate(ours), np.concatenate(theirs), np.concatenate(solves)
    jump, solve = np.mean(image_jump), np.mean(image_solve)
    memory = []
    for method in ("jump_moves", "solve"):
        before, peak = peak_memory_mb(sigma, occ, method)
        memory.append(f"{peak:.0f} (+{peak - before:.0f})")
    if pymaxflow:
        per_image_theirs = theirs.sum() / scenes
        pm = (f"{1e3 * np.mean(push_relabel):.1f}", f"{1e3 * theirs.mean():.1f}", f"{1e3 * solves.mean():.1f}",
              f"{ours.sum() / theirs.sum():.3f}", f"{per_image_theirs:.3f}", f"{jump / per_image_theirs:.3f}",
              f"{agree}/{moves}")
    else:
        pm = ("-",) * 7
    row = [f"{height}x{width}", variant, f"{moves / scenes:.1f}", f"{1e3 * ours.mean():.1f}", *pm[:4], f"{jump:.3f}",
           *pm[4:], memory[0], f"{solve:.3f}", f"{solve / jump:.2f}", memory[1]]
    progress("speed", SPEED_HEADERS, row)
    return row


def speed_rows(sizes, scenes, variants, extra=()):
    """Rows for every size and variant, then the ``extra`` ``(height, width, variant, scenes, pymaxflow)``."""
    cases = [(height, width, variant, scenes, True) for height, width in sizes for variant in variants]
    return [speed_row(*case) for case in cases + list(extra)]


SPEED_HEADERS = ("size", "inputs", "moves/image", "ours ms/move", "(push-relabel solve ms/move)",
                 "PyMaxflow build+solve ms/move", "(PyMaxflow solve only ms/move)", "ours / PyMaxflow build+solve",
                 "jump_moves s/image", "PyMaxflow build+solve s/image", "ours / PyMaxflow build+solve", "equal flows",
                 "jump_moves peak RSS MB (+labelling)", "solve s/image", "solve / jump_moves",
                 "solve peak RSS MB (+labelling)")


def known_behaviour(labels, scene):
    """Counts of Sec. 3.3's local minima for one ground-truth scene, and WC / OAIR counts of its instances."""
    from oosis_jax.evaluation import metrics
    from data.targets import semantic_map

    gt, gt_edges = scene["instance_map"], np.asarray(scene["edges"]).reshape(-1, 2)
    pred, pred_edges = crf.instances(labels)
    n_gt, n_pred = int(gt.max()), int(pred.max())
    # The predicted instance holding most of each ground-truth instance, and its most common label there.
    overlap = np.zeros((n_gt + 1, n_pred + 1), np.int64)
    np.add.at(overlap, (gt.ravel(), pred.ravel()), 1)
    main = overlap[1:, 1:].argmax(axis=1) + 1 if n_pred else np.zeros(n_gt, int)
    merged = int(sum(main[a - 1] == main[b - 1] for a, b in gt_edges))
    mode_label = np.array([np.bincount(labels[gt == k]).argmax() for k in range(1, n_gt + 1)])
    band = (gt > 0) & (labels < np.concatenate([[0], mode_label])[gt])
    semantic = semantic_map(gt, scene["classes"])
    votes = np.zeros((n_pred + 1, int(semantic.max()) + 1), np.int64)
    np.add.at(votes, (pred.ravel(), semantic.ravel()), 1)
    pred_classes = votes[1:, 1:].argmax(axis=1) + 1
    oair = metrics.oair_counts(gt, scene["classes"], gt_edges, pred, pred_classes, np.ones(n_pred), pred_edges)
    return merged, int(band.sum()), metrics.weighted_coverage(gt, pred), oair


def behaviour_rows(count, height, width):
    from tqdm.auto import tqdm

    rows = []
    for name, solver in (("jump_moves", crf.jump_moves), ("expansion_moves", crf.expansion_moves)):
        merged_images = band_images = band_pixels = instance_pixels = 0
        coverage, counts = [], np.zeros(3, np.int64)
        for seed in tqdm(range(count), desc=name, leave=False):
            sigma, occ, scene = scene_inputs(seed, height, width, "gt")
            if scene["instance_map"].max() == 0:
                continue
            merged, band, wc, oair = known_behaviour(solver(sigma, occ), scene)
            merged_images += merged > 0
            band_images += band > 0
            band_pixels += band
            instance_pixels += int((scene["instance_map"] > 0).sum())
            coverage.append(wc)
            counts += oair
        rows.append([name, f"{len(coverage)}", f"{merged_images}", f"{band_images}",
                     f"{100 * band_pixels / max(instance_pixels, 1):.2f}", f"{100 * np.mean(coverage):.1f}",
                     f"{100 * counts[1] / max(counts[0], 1):.1f}", f"{100 * counts[2] / max(counts[1], 1):.1f}"])
    return rows


BEHAVIOUR_HEADERS = ("minimiser", "images", "with merged touching instances", "with a lower-label band",
                     "band pixels % of instance pixels", "WC %", "OAIR recall@0.5 %", "OAIR accuracy@0.5 %")


SCALING_HEADERS = ("images", "size", "workers", "wall s", "images / s", "speed-up", "per core")


def scaling_rows(count, height, width):
    """``crf.solve_many`` on ``count`` noisy images, one process and then every core, and on one thread per core
    (``threads=``: the solvers release the GIL): do they keep every core busy? Wall time includes
    starting the worker processes (``spawn``, numba caches loaded). Each row is reported as `progress` once
    measured."""
    inputs = [_inputs(seed, height, width, "noisy") for seed in range(count)]
    cores = crf.batch.usable_cores()
    runs = [(f"{n} process{'es' if n > 1 else ''}", n, lambda n=n: crf.solve_many(inputs, processes=n))
            for n in sorted({1, cores})]
    if cores > 1:
        runs.append((f"{cores} threads", cores, lambda: crf.solve_many(inputs, threads=cores)))
    rows, base = [], None
    for name, workers, run in runs:
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
        base = base or wall
        rows.append([count, f"{height}x{width}", name, round(wall, 2), round(count / wall, 2),
                     round(base / wall, 2), round(base / wall / workers, 2)])
        progress("solve_many", SCALING_HEADERS, rows[-1])
    return rows


# the options --smoke sets itself (dest -> flag): given with it, they are refused, not silently replaced
SMOKE_SETS = {"sizes": "--sizes", "scenes": "--scenes", "behaviour_scenes": "--behaviour-scenes",
              "behaviour_size": "--behaviour-size", "adversarial": "--adversarial", "large": "--large",
              "scaling": "--scaling"}


def main(argv=None):
    from oosis_jax.evaluation.tables import markdown

    p = argparse.ArgumentParser(prog="python -m experiments.bench_crf",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", type=image_size, default=[(615, 2048), (308, 1024), (154, 512)])
    p.add_argument("--scenes", type=positive_int, default=3, help="scenes per size and variant (speed table)")
    p.add_argument("--variants", nargs="+", default=["gt", "noisy"], choices=["gt", "noisy"])
    p.add_argument("--behaviour-scenes", type=positive_int, default=100, help="ground-truth scenes for the 2nd table")
    p.add_argument("--behaviour-size", type=image_size, default=(240, 320))
    p.add_argument("--adversarial", type=image_size, nargs="*", default=[(200, 200)],
                   help="sizes of the random sigma / random O row (one image each)")
    p.add_argument("--large", type=image_size, nargs="*", default=[(2000, 3000)],
                   help="sizes of the one-image noisy rows timed without PyMaxflow (memory)")
    p.add_argument("--scaling", type=non_negative_int, default=24,
                   help="noisy 615x2048 images for the solve_many table (0: skip)")
    p.add_argument("--smoke", action="store_true", help="a few seconds: tiny sizes, one scene")
    args, given = parse_noting_given(p, argv, SMOKE_SETS)
    if args.smoke:
        refuse_unused(p, given, SMOKE_SETS, "--smoke, which sets tiny sizes and one scene itself")
    if importlib.util.find_spec("maxflow") is None:  # the comparison's other solver
        p.error("PyMaxflow is not installed: the tables time it beside our solver; pip install -e '.[test]'")
    if args.smoke:
        args.sizes, args.scenes, args.behaviour_scenes, args.behaviour_size = [(60, 160)], 1, 3, (60, 80)
        args.adversarial, args.large, args.scaling = [], [], 0
    # load the numba caches outside the timings: crf.solve, and ours and PyMaxflow's graph of the move table
    crf.solve(np.full((3, 3), 0.2), np.zeros((3, 3, 4), bool))
    time_moves(*_inputs(0, 24, 32, "noisy")[:2])
    solve_grid(np.ones((2, 2, 2)), np.ones((2, 2, 2)), np.ones((2, 2, 2)), PUSH_RELABEL)
    extra = [(h, w, "adversarial", 1, True) for h, w in args.adversarial] + [(h, w, "noisy", 1, False)
                                                                            for h, w in args.large]
    speed = markdown(SPEED_HEADERS, speed_rows(args.sizes, args.scenes, args.variants, extra))
    behaviour = markdown(BEHAVIOUR_HEADERS, behaviour_rows(args.behaviour_scenes, *args.behaviour_size))
    print(f"\n## CRF speed (one core each; {args.scenes} scenes per row)\n\n{speed}")
    print(f"## Jump-move local minima on ground-truth inputs ({args.behaviour_size[0]}x{args.behaviour_size[1]})"
          f"\n\n{behaviour}")
    if args.scaling:
        scaling = markdown(SCALING_HEADERS, scaling_rows(args.scaling, 615, 2048))
        print(f"## crf.solve_many: one process vs every core\n\n{scaling}")
    return speed, behaviour


if __name__ == "__main__":
    main()
