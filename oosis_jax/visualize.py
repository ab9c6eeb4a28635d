"""Pictures of instances, their occlusion order and oriented occlusion boundaries (numpy + matplotlib, no JAX).

- ``relative_depth_map``: the paper's Fig. 1 view of an occlusion order: an instance is brighter than every
  neighbour it occludes (order labels of Sec. 5.1 scaled to [0, 1]).
- ``oriented_boundary_rgb``: the paper's Fig. 4 colour scheme for o = [b * e, 1 - b] (Eq. 3): left cyan,
  top yellow, right magenta, bottom black, on white; intensity by b.
- ``instance_overlay``, ``depth_map_rgb`` and ``save_panel`` for PNG panels.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from data.targets import order_labels

# Colours of the directions (left, right, top, bottom), as in the paper's Fig. 4.
DIRECTION_COLOURS = np.array([[0, 255, 255], [255, 0, 255], [255, 255, 0], [0, 0, 0]], np.float64)
PALETTE_LEVELS = 8  # per channel: instance colours are the 8**3 - 2 grid colours other than black and white


def relative_depth_map(instance_map, edges) -> np.ndarray:
    """float32 (H, W) relative depth in [0, 1]: order label / largest label (Sec. 5.1), 0 on background.

    Every instance is strictly brighter than each instance it occludes (and than the background).
    Raises ``ValueError`` for bad input or cyclic ``edges`` (see ``targets.order_labels``).
    """
    labels = order_labels(instance_map, edges)
    top = labels.max()
    return (labels / top if top else labels).astype(np.float32)


def depth_map_rgb(depth, cmap: str = "plasma") -> np.ndarray:
    """uint8 (H, W, 3) colour picture of a relative depth map (float (H, W) in [0, 1], 0 = background).

    Instances (depth > 0) take colours of ``cmap`` over [0.15, 1] so the lowest layer stays distinct from
    the black background.
    """
    from matplotlib import colormaps

    d = np.asarray(depth, np.float64)
    if d.ndim != 2 or not np.isfinite(d).all() or d.min(initial=0) < 0 or d.max(initial=0) > 1:
        raise ValueError(f"depth must be a finite (H, W) map in [0, 1], got shape {d.shape}")
    rgb = colormaps[cmap](0.15 + 0.85 * d)[..., :3] * 255
    rgb[d == 0] = 0
    return np.round(rgb).astype(np.uint8)


def oriented_boundary_rgb(b, e) -> np.ndarray:
    """uint8 (H, W, 3) picture of oriented boundaries: white * (1 - b) + b * sum_d e_d * colour_d.

    Args:
      b: float or bool (H, W) in [0, 1]; boundary probability Pr(B_p = 1) or the target B.
      e: float (H, W, 4) >= 0; orientation distribution over (left, right, top, bottom) (rows sum to 1 where
        b > 0; the target E of supplement Sec. 1.3 is all zero off the boundary, which is fine there).
    """
    b = np.asarray(b)
    e = np.asarray(e, np.float64)
    if b.ndim != 2 or e.shape != b.shape + (4,):
        raise ValueError(f"b must be (H, W) and e (H, W, 4), got {b.shape} and {e.shape}")
    b = b.astype(np.float64)
    if not (np.isfinite(b).all() and np.isfinite(e).all()) or b.min(initial=0) < 0 or b.max(initial=0) > 1:
        raise ValueError("b must be finite in [0, 1] and e finite")
    if e.min(initial=0) < 0 or not np.allclose(e.sum(-1)[b > 0], 1, atol=1e-3):
        raise ValueError("e must be >= 0 with rows summing to 1 wherever b > 0")
    rgb = (1 - b)[..., None] * 255 + b[..., None] * (e @ DIRECTION_COLOURS)
    return np.round(np.clip(rgb, 0, 255)).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    """uint8 (PALETTE_LEVELS**3 - 2, 3): the RGB grid's colours but black (background) and white (contours),
    ordered greedily so that each is as far as possible (Euclidean RGB) from black, white and every one before it:
    the first n of them are well apart for any n."""
    levels = np.linspace(0, 255, PALETTE_LEVELS)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    far = np.minimum(np.linalg.norm(grid, axis=1), np.linalg.norm(grid - 255, axis=1))
    order = []
    for _ in range(len(grid) - 2):  # black and white stay at distance 0: never chosen
        order.append(int(np.argmax(far)))
        far = np.minimum(far, np.linalg.norm(grid - grid[order[-1]], axis=1))
    return np.round(grid[order]).astype(np.uint8)


def instance_colours(num: int) -> np.ndarray:
    """uint8 (num + 1, 3) colours of instance ids 0..num: row 0 (background) black, the others `_palette`'s in
    order, distinct for up to 510 instances (then repeating), never black or white."""
    palette = _palette()
    out = np.zeros((num + 1, 3), np.uint8)
    out[1:] = palette[np.arange(num) % len(palette)]
    return out


def instance_overlay(image, instance_map, alpha: float = 0.5) -> np.ndarray:
    """uint8 (H, W, 3): ``image`` (uint8 (H, W, 3)) blended with one colour per instance of ``instance_map``
    (int (H, W), 0 = background), instance contours in white (the instance's pixels next to another id, on every
    side; an instance that thin stays coloured); background pixels unchanged."""
    image = np.asarray(image)
    inst = np.asarray(instance_map)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if inst.shape != image.shape[:2] or inst.dtype.kind not in "iu" or inst.min(initial=0) < 0:
        raise ValueError(f"instance_map must be a non-negative int map of shape {image.shape[:2]}, "
                         f"got {inst.dtype} {inst.shape}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    ids, rank = np.unique(inst, return_inverse=True)  # sparse ids (e.g. 90210) get colours by rank
    rank = rank.reshape(inst.shape) + (ids[0] != 0)  # background keeps rank 0
    colours = instance_colours(len(ids))[rank].astype(np.float64)
    out = image.astype(np.float64)
    fg = inst > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    contour = np.zeros(inst.shape, bool)  # an instance's pixels next to another id, on every side
    across, down = inst[:, :-1] != inst[:, 1:], inst[:-1, :] != inst[1:, :]
    contour[:, :-1] |= across
    contour[:, 1:] |= across
    contour[:-1, :] |= down
    contour[1:, :] |= down
    contour &= fg
    size, edge = np.bincount(rank.ravel(), minlength=len(ids) + 1), np.bincount(rank[contour], minlength=len(ids) + 1)
    contour &= (edge < size)[rank]  # an instance that would be all outline (at most 2 px thick) keeps its colour
    out[contour] = 255
    return np.round(out).astype(np.uint8)


def save_panel(path, images, titles, ncols: int | None = None, tile_inches: float | None = None,
               dpi: int = 100) -> str:
    """Save images side by side (rows of ``ncols``) with titles as one PNG; return its path.

    ``images``: uint8 (H, W, 3) pictures or float (H, W) maps in [0, 1] (shown in grey; ``ValueError`` naming
    the title for a map of another kind or range, which would be clipped), all of the size of the first;
    ``titles``: one str per image. Each tile is ``tile_inches`` wide, or by default as wide as the image at
    ``dpi`` (one PNG pixel per image pixel). Parent folders are created; a ``path`` without a suffix gets
    ``.png``, and the path returned is the file written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = list(images)
    titles = list(titles)
    if not images or len(images) != len(titles):
        raise ValueError(f"need one title per image and at least one image, got {len(images)} images, "
                         f"{len(titles)} titles")
    ncols = ncols or len(images)
    nrows = -(-len(images) // ncols)
    h, w = np.asarray(images[0]).shape[:2]
    tile_w = tile_inches or w / dpi
    fig = Figure(figsize=(ncols * (tile_w + 0.2), nrows * (tile_w * h / w + 0.5)))
    FigureCanvasAgg(fig)
    for i, (img, title) in enumerate(zip(images, titles)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        img = np.asarray(img)
        if img.ndim == 2:
            if not np.issubdtype(img.dtype, np.floating) or not (img.size and 0 <= img.min() and img.max() <= 1):
                raise ValueError(f"save_panel: the map {title!r} must be float in [0, 1], got {img.dtype} "
                                 f"in [{img.min(initial=0)}, {img.max(initial=0)}]")
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    path = os.fspath(path) + ("" if os.path.splitext(os.fspath(path))[1] else ".png")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
