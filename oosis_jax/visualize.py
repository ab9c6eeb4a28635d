"""Pictures of instances, their occlusion order and oriented occlusion boundaries (numpy + matplotlib, no JAX).

- ``relative_depth_map``: the paper's Fig. 1 view of an occlusion order: an instance is brighter than every
  neighbour it occludes (order labels of Sec. 5.1 scaled to [0, 1]).
- ``oriented_boundary_rgb``: the paper's Fig. 4 colour scheme for o = [b * e, 1 - b] (Eq. 3): left cyan,
  top yellow, right magenta, bottom black, on white; intensity by b.
- ``instance_overlay`` (with ``label_instances``), ``depth_map_rgb`` and ``save_panel`` for PNG panels;
  ``DEPTH_KEY`` and ``BOUNDARY_KEY`` are the keys of the depth and boundary colours for their captions.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from data.targets import order_labels

# Colours of the directions (left, right, top, bottom), as in the paper's Fig. 4.
DIRECTION_COLOURS = np.array([[0, 255, 255], [255, 0, 255], [255, 255, 0], [0, 0, 0]], np.float64)
# What the colours of `depth_map_rgb` (plasma over [0.15, 1]) and `oriented_boundary_rgb` mean.
DEPTH_KEY = ("depth by occlusion layer: each object is brighter than those it occludes (yellow: the top layer), "
             "darkest (purple) = occludes nothing, not necessarily far; black = background; white = outlines; "
             "objects not linked by occlusions are not ordered")
BOUNDARY_KEY = ("boundaries: on the occluding object, coloured by the side of the object it occludes: cyan left, "
                "magenta right, yellow top, black bottom (mixed at corners); paler = less likely")
PALETTE_LEVELS = 8  # per channel: instance colours are the 8**3 - 2 grid colours other than black and white


def relative_depth_map(instance_map, edges) -> np.ndarray:
    """float32 (H, W) relative depth in [0, 1]: order label / largest label (Sec. 5.1), 0 on background.

    Every instance is strictly brighter than each instance it occludes (and than the background).
    Raises ``ValueError`` for bad input or cyclic ``edges`` (see ``targets.order_labels``).
    """
    return relative_depth_maps([(instance_map, edges)])[0]


def relative_depth_maps(pairs) -> list[np.ndarray]:
    """`relative_depth_map` of each ``(instance_map, edges)`` pair on one scale: the largest order label of
    them all maps to 1, so one colour is one layer in every map (a prediction drawn beside its ground truth)."""
    labels = [order_labels(instance_map, edges) for instance_map, edges in pairs]
    top = max((int(label.max(initial=0)) for label in labels), default=0)
    return [(label / top if top else label).astype(np.float32) for label in labels]


def depth_map_rgb(depth, cmap: str = "plasma", instance_map=None) -> np.ndarray:
    """uint8 (H, W, 3) colour picture of a relative depth map (float (H, W) in [0, 1], 0 = background, as
    `relative_depth_map` gives; ``ValueError`` for another dtype, such as an int label map, shape or range).

    Instances (depth > 0) take colours of ``cmap`` over [0.15, 1] so the lowest layer stays distinct from
    the black background (`DEPTH_KEY` for the default plasma: higher in the occlusion order is brighter). With
    ``instance_map`` (the map's instances, int (H, W)) their outlines are white (`instance_contours`), so that
    touching instances of one layer stay apart.
    """
    from matplotlib import colormaps

    d = np.asarray(depth)
    if d.dtype.kind != "f":
        raise ValueError(f"depth must be a float relative depth map in [0, 1] (relative_depth_map), got {d.dtype}")
    d = d.astype(np.float64)
    if d.ndim != 2 or not np.isfinite(d).all() or d.min(initial=0) < 0 or d.max(initial=0) > 1:
        raise ValueError(f"depth must be a finite (H, W) map in [0, 1], got shape {d.shape}")
    rgb = colormaps[cmap](0.15 + 0.85 * d)[..., :3] * 255
    rgb[d == 0] = 0
    if instance_map is not None:
        if np.shape(instance_map) != d.shape:
            raise ValueError(f"instance_map must have the depth map's shape {d.shape}, got {np.shape(instance_map)}")
        rgb[instance_contours(instance_map)] = 255
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
    """uint8 (H, W, 3): ``image`` (uint8 (H, W, 3), at least one pixel) blended with one colour per instance of
    ``instance_map`` (int (H, W), 0 = background), instance contours in white (the instance's pixels next to
    another id, on every side; an instance that thin stays coloured); background pixels unchanged."""
    image = np.asarray(image)
    inst = np.asarray(instance_map)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if inst.shape != image.shape[:2] or inst.dtype.kind not in "iu" or inst.min(initial=0) < 0:
        raise ValueError(f"instance_map must be a non-negative int map of shape {image.shape[:2]}, "
                         f"got {inst.dtype} {inst.shape}")
    if not inst.size:
        raise ValueError(f"image and instance_map are empty: {image.shape[0]}x{image.shape[1]} pixels")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    ids, rank = np.unique(inst, return_inverse=True)  # sparse ids (e.g. 90210) get colours by rank
    rank = rank.reshape(inst.shape) + (ids[0] != 0)  # background keeps rank 0
    colours = instance_colours(len(ids))[rank].astype(np.float64)
    out = image.astype(np.float64)
    fg = inst > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    out[instance_contours(inst)] = 255
    return np.round(out).astype(np.uint8)


def instance_contours(instance_map) -> np.ndarray:
    """bool (H, W): the pixels of each instance of ``instance_map`` (int (H, W), 0 = background) next to another
    id, on every side; an instance that would be all outline (at most 2 px thick) keeps none."""
    inst = np.asarray(instance_map)
    contour = np.zeros(inst.shape, bool)
    if not inst.size:
        return contour
    _, rank = np.unique(inst, return_inverse=True)
    rank = rank.reshape(inst.shape)
    across, down = inst[:, :-1] != inst[:, 1:], inst[:-1, :] != inst[1:, :]
    contour[:, :-1] |= across
    contour[:, 1:] |= across
    contour[:-1, :] |= down
    contour[1:, :] |= down
    contour &= inst > 0
    size, edge = np.bincount(rank.ravel()), np.bincount(rank[contour], minlength=rank.max(initial=0) + 1)
    return contour & (edge < size)[rank]


def label_instances(rgb, instance_map, texts, order=None, font_size: int = 8) -> np.ndarray:
    """uint8 (H, W, 3): ``rgb`` (uint8 (H, W, 3)) with ``texts[k - 1]`` written in white on a dark box, centred
    on instance k's innermost pixel (the farthest from its outline and from the image's edge; first in raster
    order on ties) and moved inside the image where it would cross an edge. ``instance_map`` is int (H, W) with
    ids 0 (background) to ``len(texts)``; an instance without pixels or with an empty text gets no label.

    Labels never cover each other: they are placed in ``order`` (ids, e.g. by descending score; default: id
    order), and one that would meet an earlier label moves up or down by its height (at most twice), else is
    left out."""
    from PIL import Image, ImageDraw, ImageFont
    from scipy import ndimage

    rgb, inst = np.asarray(rgb), np.asarray(instance_map)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if inst.shape != rgb.shape[:2] or inst.dtype.kind not in "iu":
        raise ValueError(f"instance_map must be an int map of shape {rgb.shape[:2]}, got {inst.dtype} {inst.shape}")
    if inst.size and (inst.min() < 0 or inst.max() > len(texts)):
        raise ValueError(f"instance_map's ids must lie in [0, {len(texts)}] (one text per instance), got "
                         f"[{inst.min()}, {inst.max()}]")
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=font_size)
    height, width = inst.shape
    boxes, placed = ndimage.find_objects(inst, max_label=len(texts)), []
    for k in range(1, len(texts) + 1) if order is None else order:
        box = boxes[k - 1]
        if box is None or not str(texts[k - 1]):
            continue
        inner = ndimage.distance_transform_edt(np.pad(inst[box] == k, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(np.argmax(inner), inner.shape)
        left, top, right, bottom = draw.textbbox((0, 0), str(texts[k - 1]), font=font)
        w, h = right - left + 2, bottom - top + 2
        x0 = min(max(int(x) + box[1].start - w // 2, 0), max(width - w, 0))
        for shift in (0, h, -h, 2 * h, -2 * h):
            y0 = min(max(int(y) + box[0].start - h // 2 + shift, 0), max(height - h, 0))
            if not any(x0 < a + b_w and a < x0 + w and y0 < c + b_h and c < y0 + h for a, c, b_w, b_h in placed):
                break
        else:
            continue  # no free place near the instance: left out rather than covering a label
        placed.append((x0, y0, w, h))
        draw.rectangle((x0, y0, x0 + w - 1, y0 + h - 1), fill=(0, 0, 0))
        draw.text((x0 + 1 - left, y0 + 1 - top), str(texts[k - 1]), fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def _panel_rgb(img, title) -> np.ndarray:
    """uint8 (H, W, 3) of one `save_panel` image; ``ValueError`` naming ``title`` for an image it cannot show
    as it is."""
    img = np.asarray(img)
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"save_panel: the image {title!r} must be (H, W) or (H, W, 3), got shape {img.shape}")
    if img.size == 0:
        raise ValueError(f"save_panel: the image {title!r} is empty, shape {img.shape}")
    if img.ndim == 3 and img.dtype == np.uint8:
        return img
    kind = "map" if img.ndim == 2 else "image"
    if img.dtype.kind != "f":
        raise ValueError(f"save_panel: the {kind} {title!r} must be " + ("" if img.ndim == 2 else "uint8 or ")
                         + f"float in [0, 1], got {img.dtype}")
    if not np.isfinite(img).all():
        raise ValueError(f"save_panel: the {kind} {title!r} has non-finite values")
    if img.min() < 0 or img.max() > 1:
        raise ValueError(f"save_panel: the {kind} {title!r} must be float in [0, 1], got {img.dtype} "
                         f"in [{img.min()}, {img.max()}]")
    rgb = np.round(img.astype(np.float64) * 255).astype(np.uint8)
    return rgb if img.ndim == 3 else np.repeat(rgb[..., None], 3, -1)


def _wrap(text: str, width: float, measure) -> list[str]:
    """``text``'s lines (its own, then broken between words, or inside a word too long) no wider than
    ``width`` by ``measure`` (str -> width), so that neighbouring titles never overlap."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            joined = f"{line} {word}" if line else word
            if measure(joined) <= width:
                line = joined
                continue
            if line:
                lines.append(line)
            line = word
            while len(line) > 1 and measure(line) > width:
                cut = max([k for k in range(1, len(line)) if measure(line[:k]) <= width], default=1)
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def save_panel(path, images, titles, ncols: int | None = None, tile_inches: float | None = None,
               dpi: int = 100, caption: str | None = None) -> str:
    """Save images in a grid (rows of ``ncols``, default all in one row), each under its title, as one PNG;
    return its path.

    ``images``: uint8 (H, W, 3) or float (H, W, 3) in [0, 1] pictures, or float (H, W) maps in [0, 1] (shown in
    grey), non-empty and finite; ``titles``: one str per image, wrapped to the tile's width. Images of several
    sizes (a dataset's photos) each sit at the top left of a white tile of the largest height and width. Each
    tile is exactly H x W PNG pixels (one per image pixel), or with ``tile_inches`` round(tile_inches * dpi)
    pixels wide at the tile's aspect ratio (nearest neighbour when enlarged, the area mean when shrunk, so thin
    lines stay). ``caption`` (e.g. a colour key) is written under the grid. ``ValueError`` naming the title of a
    bad image (another shape or dtype, values outside [0, 1] that would be clipped, NaN) and for bad
    counts or sizes. Parent folders are created; a ``path`` without a suffix gets ``.png``, and the path
    returned is the file written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.transforms import IdentityTransform
    from PIL import Image

    images, titles = list(images), list(titles)
    if not images or len(images) != len(titles):
        raise ValueError(f"need one title per image and at least one image, got {len(images)} images, "
                         f"{len(titles)} titles")
    if ncols is not None and ncols < 1 or tile_inches is not None and not tile_inches > 0 or dpi < 1:
        raise ValueError(f"ncols, tile_inches and dpi must be positive, got {ncols}, {tile_inches}, {dpi}")
    rgbs = []
    for img, title in zip(images, titles):
        if not isinstance(title, str):
            raise ValueError(f"save_panel: titles must be str, got {title!r}")
        rgbs.append(_panel_rgb(img, title))
    h, w = max(x.shape[0] for x in rgbs), max(x.shape[1] for x in rgbs)
    rgbs = [np.pad(x, ((0, h - x.shape[0]), (0, w - x.shape[1]), (0, 0)), constant_values=255) for x in rgbs]
    tw = max(1, round(tile_inches * dpi)) if tile_inches else w
    th = max(1, round(tw * h / w)) if tile_inches else h
    if (tw, th) != (w, h):
        resample = Image.Resampling.NEAREST if tw >= w else Image.Resampling.BOX
        rgbs = [np.asarray(Image.fromarray(x).resize((tw, th), resample)) for x in rgbs]
    ncols = min(ncols or len(rgbs), len(rgbs))
    gap, pad = max(4, round(0.2 * dpi)), max(2, round(0.05 * dpi))  # between columns; around titles and rows
    fig = Figure(dpi=dpi)
    renderer = FigureCanvasAgg(fig).get_renderer()
    font = FontProperties(size=9)

    def measure(text):
        return renderer.get_text_width_height_descent(text, font, ismath=False)[0]

    def block(text, wrap, ha="center"):  # a text of wrapped lines and its height in pixels
        item = fig.text(0, 0, "\n".join(_wrap(text, wrap, measure)), fontproperties=font, parse_math=False,
                        transform=IdentityTransform(), ha=ha, va="bottom")
        return item, int(np.ceil(item.get_window_extent(renderer).height))

    heads = [block(t, tw + gap - pad) for t in titles]
    rows = [heads[i:i + ncols] for i in range(0, len(heads), ncols)]
    row_h = [max(height for _, height in row) + pad + th + pad for row in rows]  # title, image, space
    width = ncols * (tw + gap)
    foot, foot_h = block(caption, width - gap, ha="left") if caption else (None, 0)
    height = sum(row_h) + (foot_h + pad if caption else 0)
    fig.set_size_inches((width + 0.5) / dpi, (height + 0.5) / dpi)  # Agg truncates to whole pixels
    for r, row in enumerate(rows):
        bottom = height - sum(row_h[:r + 1]) + pad  # of this row's images
        for c, (head, _) in enumerate(row):
            x0 = c * (tw + gap) + gap // 2
            head.set_position((x0 + tw / 2, bottom + th + pad / 2))
            fig.figimage(rgbs[r * ncols + c], xo=x0, yo=bottom, origin="upper")
    if foot is not None:
        foot.set_position((gap // 2, pad / 2))
    path = os.fspath(path) + ("" if os.path.splitext(os.fspath(path))[1] else ".png")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
