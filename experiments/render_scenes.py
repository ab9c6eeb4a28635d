"""Render synthetic scenes with their ground truth as PNG panels.

    python -m experiments.render_scenes --out runs/demo --num 6 [--images DIR]

Each panel shows the image, the instances (overlay, class names in the title), the relative depth map of the
occlusion order (paper Fig. 1: an instance is brighter than every neighbour it occludes) and the oriented
occlusion boundaries B, E (paper Fig. 4 colours), over a caption saying what the colours mean
(``visualize.DEPTH_KEY``, ``visualize.BOUNDARY_KEY``). ``--images DIR`` also writes each scene's plain image
(``scene_SEED.png``, the input alone), e.g. to try ``experiments.predict --images DIR`` on.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

from PIL import Image
from tqdm import tqdm

from experiments.common import SYNTHETIC_SIZE
from experiments.flags import folder, make_folder, non_negative_int, positive_int
from data import synthetic
from oosis_jax import visualize
from data import targets


def render_scene(seed: int, height: int, width: int, path: str, image_path: str | None = None) -> str:
    """Render scene ``seed`` at (height, width) with its ground-truth pictures into the PNG ``path``, and the
    scene's image alone into ``image_path`` when given."""
    scene = synthetic.make_scene(seed, height, width)
    if image_path is not None:
        Image.fromarray(scene["image"]).save(image_path)
    inst, edges = scene["instance_map"], scene["edges"]
    b, e = targets.boundary_targets(inst, edges)
    depth = visualize.relative_depth_map(inst, edges)
    counts = Counter(synthetic.CLASS_NAMES[c - 1] for c in scene["classes"])
    summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "no objects"
    layers = int(targets.order_labels(inst, edges).max())
    images = [scene["image"], visualize.instance_overlay(scene["image"], inst),
              visualize.depth_map_rgb(depth, instance_map=inst), visualize.oriented_boundary_rgb(b, e)]
    titles = [f"scene {seed} ({height}x{width})", f"instances: {summary}",
              f"relative depth ({len(edges)} occlusions, {layers} layers)", "oriented occlusion boundaries"]
    return visualize.save_panel(path, images, titles, ncols=2,
                                caption=f"{visualize.DEPTH_KEY}\n{visualize.BOUNDARY_KEY}")


def main(argv=None) -> list[str]:
    parser = argparse.ArgumentParser(prog="python -m experiments.render_scenes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/scenes", help="output folder for the PNG panels (default runs/scenes)")
    parser.add_argument("--num", type=positive_int, default=6, help="number of scenes")
    parser.add_argument("--first-seed", type=non_negative_int, default=1, help="seed of the first scene")
    # the size of the demo's and the shipped model's scenes: its predictions of these images are what the demo
    # shows (at 256x512, the earlier default, it cut the 18 objects of one scene into 56 pieces)
    parser.add_argument("--height", type=positive_int, default=SYNTHETIC_SIZE[0],
                        help=f"scene height (default {SYNTHETIC_SIZE[0]}, the shipped model's scenes)")
    parser.add_argument("--width", type=positive_int, default=SYNTHETIC_SIZE[1],
                        help=f"scene width (default {SYNTHETIC_SIZE[1]})")
    parser.add_argument("--images", default=None, metavar="DIR", type=folder,
                        help="also write each scene's plain image here (inputs for experiments.predict)")
    args = parser.parse_args(argv)
    if args.images is not None:
        if os.path.abspath(args.images) == os.path.abspath(args.out):  # same file names: panels would replace images
            parser.error(f"--images {args.images} must be another folder than --out")
        make_folder(parser, "--images", args.images)
    seeds = range(args.first_seed, args.first_seed + args.num)
    paths = [render_scene(seed, args.height, args.width, os.path.join(args.out, f"scene_{seed:04d}.png"),
                          None if args.images is None else os.path.join(args.images, f"scene_{seed:04d}.png"))
             for seed in tqdm(seeds, desc="rendering scenes")]
    print(f"wrote {len(paths)} panels to {os.path.abspath(args.out)}:")
    for p in paths:
        print(f"  {p}")
    if args.images is not None:
        print(f"and their {len(paths)} images to {os.path.abspath(args.images)}")
    return paths


if __name__ == "__main__":
    main()
