"""Speed and memory of the CRF stage (paper Sec. 3.2-3.3): our numba max-flow vs PyMaxflow, same jump moves.

    python -m experiments.bench_crf [--sizes 615x2048 308x1024 154x512] [--scenes 3] [--smoke]

Inputs are synthetic scenes (``data.synthetic.make_scene``) in two variants: ``gt`` (sigma = 1 on background
and 0 on instances, occ = ``data.targets.occlusion_map``) and ``noisy`` (sigma blurred and perturbed,
10% of the occlusion pairs dropped and spurious ones added, fixed seed), the latter resembling predictions.
Every jump move of ``crf.jump_moves`` is built once (``crf.move_graph``) and solved by both max-flows, which
must agree on the flow; "per move" includes building the capacities, and for PyMaxflow also its graph build.
The solve time of our push-relabel (``method="push_relabel"``) on the same graphs is listed for reference.
"Per image" is the end-to-end ``crf.jump_moves`` wall time against the sum of the PyMaxflow moves. Peak
memory is the peak resident set of a fresh process that imports only ``crf`` and labels the row's last image
(VmHWM of /proc/self/status, Linux; in brackets the increase over the resident set before labelling). The machine
may be shared: both solvers run in the same process, interleaved, so their ratio is what to compare.

The second table measures the known behaviour of Sec. 3.3 on ground-truth inputs: images whose jump-move
labeling merges touching instances or leaves a band of an instance at a lower label, with weighted coverage
(Eq. 16) and OAIR recall / accuracy at IoU 0.5 (Sec. 4) of the resulting instances.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import time

import numpy as np

import crf
from crf.jump import jump_move
from crf.maxflow import PUSH_RELABEL, cut_value, solve_grid
from crf.move_graph import jump_move_graph
from crf.moves import best_move
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


def time_moves(sigma, occ):
    """Per-move seconds of ours and of PyMaxflow on the same jump-move graphs, the number of moves whose
    flows agree, and the labeling each move started from (the last one is the result)."""
    labels = np.zeros(sigma.shape, dtype=np.int64)
    ours, theirs, agree, visited = [], [], 0, []
    while True:
        visited.append(labels.copy())
        start = time.perf_counter()
        graph = jump_move_graph(labels, sigma, occ)
        built = time.perf_counter() - start
        move = best_move(graph)
        ours.append(time.perf_counter() - start)
        flow = cut_value(graph.tedges, graph.right, graph.down, move)
        start = time.perf_counter()
        pm_graph, _ = pymaxflow_grid(*graph[:3])
        pm_flow = pm_graph.maxflow()
        theirs.append(built + time.perf_counter() - start)
        agree += abs(flow - pm_flow) <= 1e-9 * max(1.0, abs(pm_flow))
        if not move.any():
            return np.array(ours), np.array(theirs), agree, visited
        labels += move


def _memory_mb(field):
    """A field of /proc/self/status in MB (Linux): VmRSS = resident now, VmHWM = peak resident."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise ValueError(f"{field} not found in /proc/self/status")


def _labelled_peak_rss(sigma, occ):
    """Run in a fresh process that imports only crf: (resident MB before labelling, peak resident MB)."""
    jump_move(np.zeros((2, 2), np.int64), np.zeros((2, 2)), np.zeros((2, 2, 4), bool))  # load the numba cache
    before = _memory_mb("VmRSS")
    crf.jump_moves(sigma, occ)
    return before, _memory_mb("VmHWM")


def peak_memory_mb(sigma, occ):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_labelled_peak_rss, sigma, occ).result()


def time_push_relabel(sigma, occ, labels_per_move):
    """Seconds per move of our push-relabel on the same graphs (build excluded)."""
    seconds = []
    for labels in labels_per_move:
        graph = jump_move_graph(labels, sigma, occ)
        start = time.perf_counter()
        solve_grid(graph.tedges, graph.right, graph.down, PUSH_RELABEL)
        seconds.append(time.perf_counter() - start)
    return seconds


def speed_rows(sizes, scenes, variants):
    rows = []
    for height, width in sizes:
        for variant in variants:
            ours, theirs, push_relabel, agree, image_ours = [], [], [], 0, []
            for seed in range(scenes):
                sigma, occ, _ = scene_inputs(seed, height, width, variant)
                o, t, a, visited = time_moves(sigma, occ)
                push_relabel += time_push_relabel(sigma, occ, visited)
                start = time.perf_counter()
                np.testing.assert_array_equal(crf.jump_moves(sigma, occ), visited[-1])
                image_ours.append(time.perf_counter() - start)
                ours.append(o)
                theirs.append(t)
                agree += a
            moves = sum(len(o) for o in ours)
            ours, theirs = np.concatenate(ours), np.concatenate(theirs)
            per_image_theirs = theirs.sum() / scenes
            before, peak = peak_memory_mb(sigma, occ)
            rows.append([f"{height}x{width}", variant, f"{moves / scenes:.1f}", f"{1e3 * ours.mean():.1f}",
                         f"{1e3 * np.mean(push_relabel):.1f}", f"{1e3 * theirs.mean():.1f}",
                         f"{theirs.sum() / ours.sum():.2f}", f"{np.mean(image_ours):.3f}", f"{per_image_theirs:.3f}",
                         f"{per_image_theirs / np.mean(image_ours):.2f}", f"{agree}/{moves}",
                         f"{peak:.0f} (+{peak - before:.0f})"])
            print(rows[-1], flush=True)
    return rows


SPEED_HEADERS = ("size", "inputs", "moves/image", "ours ms/move", "(push-relabel solve ms/move)", "PyMaxflow ms/move",
                 "ratio",
                 "ours s/image", "PyMaxflow s/image", "ratio", "equal flows", "peak RSS MB (+labelling)")


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


def _size(text):
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def main(argv=None):
    from oosis_jax.evaluation.tables import markdown

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", type=_size, default=[(615, 2048), (308, 1024), (154, 512)])
    p.add_argument("--scenes", type=int, default=3, help="scenes per size and variant (speed table)")
    p.add_argument("--variants", nargs="+", default=["gt", "noisy"], choices=["gt", "noisy"])
    p.add_argument("--behaviour-scenes", type=int, default=100, help="ground-truth scenes for the 2nd table")
    p.add_argument("--behaviour-size", type=_size, default=(240, 320))
    p.add_argument("--smoke", action="store_true", help="a few seconds: tiny sizes, one scene")
    args = p.parse_args(argv)
    if args.smoke:
        args.sizes, args.scenes, args.behaviour_scenes, args.behaviour_size = [(60, 160)], 1, 3, (60, 80)
    crf.jump_moves(np.ones((2, 2)), np.zeros((2, 2, 4), bool))  # load the numba caches outside the timings
    solve_grid(np.ones((2, 2, 2)), np.ones((2, 2, 2)), np.ones((2, 2, 2)), PUSH_RELABEL)
    speed = markdown(SPEED_HEADERS, speed_rows(args.sizes, args.scenes, args.variants))
    behaviour = markdown(BEHAVIOUR_HEADERS, behaviour_rows(args.behaviour_scenes, *args.behaviour_size))
    print(f"\n## CRF speed (one core each; {args.scenes} scenes per row)\n\n{speed}")
    print(f"## Jump-move local minima on ground-truth inputs ({args.behaviour_size[0]}x{args.behaviour_size[1]})"
          f"\n\n{behaviour}")
    return speed, behaviour


if __name__ == "__main__":
    main()
