"""Render one synthetic occlusion scene: image, visible instance masks, classes, depths and occlusion edges.

Rendering: every object has one depth (metres from the camera). Objects are painted far to near into the
instance map, which is a z-buffer for per-object constant depth: a pixel shows the nearest object covering it.
Objects that end up with fewer than ``MIN_VISIBLE_PIXELS`` visible pixels are removed and the map repainted
without them (removing an object only uncovers pixels of others, so one repaint suffices).

Edge rule: (a, b) is an occlusion edge iff some visible pixel of a and some visible pixel of b are
4-neighbours and a is nearer than b. With a z-buffer every visible contact between two objects is a depth
discontinuity where the nearer object hides the farther one, so the edges are physically consistent: each
goes from a smaller to a larger depth, and the edge graph is acyclic.
"""

from __future__ import annotations

import numpy as np

from data.synthetic import layout as layout_lib
from data.synthetic import textures
from data.targets import touching_pairs

MIN_VISIBLE_PIXELS = 12
PALETTE_SIZE = 6


def _rasterise(p: layout_lib.Placement, cam: layout_lib.Camera):
    """Part map of one placed object on its clipped bounding box: (y0, x0, u, v, parts) or None if off-image.

    ``u`` float32 (1, w) and ``v`` float32 (h, 1) are the local metric coordinates of the pixel centres,
    ``parts`` int8 (h, w) the shape's part map there.
    """
    ax, ay, scale = cam.anchor(p.x, p.depth, p.lift)
    u0, u1, v0, v1 = p.shape.extent
    x0, x1 = max(0, int(np.floor(ax + u0 * scale))), min(cam.width, int(np.ceil(ax + u1 * scale)) + 1)
    y0, y1 = max(0, int(np.floor(ay - v1 * scale))), min(cam.height, int(np.ceil(ay - v0 * scale)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    u = ((np.arange(x0, x1, dtype=np.float32) + 0.5 - ax) / scale)[None, :]
    v = ((ay - np.arange(y0, y1, dtype=np.float32) - 0.5) / scale)[:, None]
    parts = p.shape.parts(u, v)
    if not parts.any():
        return None
    return y0, x0, u, v, parts


def _paint_ids(shape, rasters, order):
    """int32 instance map with object ``order[i]`` painted as id i + 1, far to near in the given order."""
    inst = np.zeros(shape, np.int32)
    for new_id, k in enumerate(order, start=1):
        y0, x0, _, _, parts = rasters[k]
        view = inst[y0:y0 + parts.shape[0], x0:x0 + parts.shape[1]]
        view[parts > 0] = new_id
    return inst


def _check_args(seed, height, width):
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 8:
            raise ValueError(f"{name} must be an int >= 8, got {value!r}")


def make_scene(seed: int, height: int, width: int) -> dict:
    """One deterministic synthetic occlusion scene (``docs/contracts.md``).

    Args:
      seed: non-negative int; the same seed and size always give the same scene.
      height, width: image size in pixels (>= 8). An instance needs ``MIN_VISIBLE_PIXELS`` visible pixels
        at any size, so small images hold fewer: about 7 % of the scenes are empty at 120x160, 8 % at 40x48,
        12-14 % at 24x32, 50 % at 16x16 and 92 % at 8x8 (and a narrow image, e.g. 500x8, has almost none).

    Returns:
      dict with
        ``image``: uint8 (height, width, 3) RGB;
        ``instance_map``: int32 (height, width), 0 = background, 1..N visible instances;
        ``classes``: int32 (N,), class ids 1..5 indexing ``CLASS_NAMES`` (car, person, frame, sign, star);
        ``depths``: float32 (N,), distinct distances from the camera in metres;
        ``edges``: int32 (M, 2), rows (a, b): a occludes b (edge rule in the module docstring), sorted.
    """
    _check_args(seed, height, width)
    rng = np.random.default_rng(seed)
    cam = layout_lib.random_camera(rng, height, width)
    placements = layout_lib.layout(rng, cam)
    palette = rng.uniform(0, 255, (PALETTE_SIZE, 3))
    image = textures.background(rng, height, width, palette, cam.horizon)
    looks = [(textures.object_colours(rng, palette), textures.object_pattern(rng)) for _ in placements]

    rasters = [_rasterise(p, cam) for p in placements]
    depth = _distinct(np.array([p.depth for p in placements], np.float32))
    far_to_near = [k for k in np.argsort(-depth, kind="stable") if rasters[k] is not None]
    inst = _paint_ids((height, width), rasters, far_to_near)
    area = np.bincount(inst.ravel(), minlength=len(far_to_near) + 1)[1:]
    if (area < MIN_VISIBLE_PIXELS).any():
        far_to_near = [k for k, a in zip(far_to_near, area) if a >= MIN_VISIBLE_PIXELS]
        inst = _paint_ids((height, width), rasters, far_to_near)

    # Final ids in random order, so that an id says nothing about depth.
    n = len(far_to_near)
    ids = rng.permutation(n).astype(np.int32) + 1
    inst = np.concatenate([[0], ids])[inst].astype(np.int32)
    objects = np.array(far_to_near, np.int64)[np.argsort(ids)] if n else np.zeros(0, np.int64)

    for new_id, k in enumerate(objects, start=1):
        y0, x0, u, v, parts = rasters[k]
        h, w = parts.shape
        visible = inst[y0:y0 + h, x0:x0 + w] == new_id
        rows, cols = np.nonzero(visible)
        colours, pattern = looks[k]
        texture = pattern(u[0, cols], v[rows, 0])
        image[y0:y0 + h, x0:x0 + w][visible] = colours[parts[rows, cols]] + 40 * texture[:, None]

    depths = depth[objects]
    pairs = touching_pairs(inst)
    nearer_first = depths[pairs[:, 0] - 1] < depths[pairs[:, 1] - 1]
    edges = np.where(nearer_first[:, None], pairs, pairs[:, ::-1])
    edges = edges[np.lexsort((edges[:, 1], edges[:, 0]))].astype(np.int32)
    return {
        "image": np.clip(image, 0, 255).astype(np.uint8),
        "instance_map": inst,
        "classes": np.array([placements[k].class_id for k in objects], np.int32),
        "depths": depths,
        "edges": edges.reshape(-1, 2),
    }


def _distinct(depths: np.ndarray) -> np.ndarray:
    """float32 depths made strictly distinct (ties broken upward by one float32 step), keeping their order."""
    out = depths.astype(np.float32).copy()
    order = np.argsort(out, kind="stable")
    for i in range(1, len(order)):
        if out[order[i]] <= out[order[i - 1]]:
            out[order[i]] = np.nextafter(out[order[i - 1]], np.float32(np.inf))
    return out
