"""Test-time augmentation of the network heads (beyond the paper; off by default).

The heads of an image are averaged over views: the image resized by each of ``scales`` (bilinear) and, with
``flip``, also mirrored left-right. Each view's heads are mapped back to the image's own pixel grid before
averaging (bilinear resampling; a mirrored view's ``e`` swaps its left and right bins), so the average of
``s``, ``b`` and ``e`` stays a probability map of the same contract as one forward pass. Upscaling gives the
stride-4 network more pixels per small object; measured in RESULTS.md ("Making predicted instances usable").

With ``shift = k``, every view is also seen shifted by k pixels down and right (the view padded by repeating
its first row and column, its heads cropped back): the stride-4 network then samples each object at another
phase of its grid, and the average of the two is less tied to where an object happens to fall on it.

With ``max_pixels``, an upscaling view of a large image is scaled less (never below 1): a view has at most
that many pixels. The views exist to give the stride-4 network more pixels per small object; a large image
already has them, and its upscaled views would cost the network and (with ``view_grid``) the CRF far more:
the CRF's time grows faster than its grid (more jump moves, each a max-flow over the whole grid).

With ``view_grid``, stage 2 labels the image on the grid of the largest view instead (`label_shape`): the
heads of every view are averaged there, so the boundary is thinned (NMS) and labelled at the resolution the
network saw, and only the final labelling comes back to the image's grid
(`oosis_jax.inference.instances.label_heads`' ``shapes``). Resampling b before NMS blurs the boundary between
two touching objects, and a gap of one pixel merges them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from oosis_jax.models.config import check_types

# e's bins are (left, right, top, bottom): a mirrored view swaps left and right.
MIRRORED_BINS = [1, 0, 2, 3]


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Views whose heads are averaged: every scale in ``scales`` (> 0; 1.0 = the image as given), each also
    mirrored when ``flip``, and each of those also shifted by ``shift`` pixels (> 0; 0 = no shifted views).
    The default, one unmirrored view at scale 1, is the paper's single pass. ``view_grid``: stage 2 labels on
    the grid of the largest scale (`label_shape`), not the image's. ``max_pixels``: None, or the most pixels
    an upscaled view may have (`view_scale`)."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    view_grid: bool = False
    shift: int = 0
    max_pixels: int | None = None

    def __post_init__(self):
        check_types(self)  # flip="false" (JSON) used to turn flipping on, scales="12" to read as (1.0, 2.0)
        if not self.scales or not all(s > 0 for s in self.scales):
            raise ValueError(f"scales must be a non-empty list of positive numbers, got {self.scales}")
        if self.shift < 0:
            raise ValueError(f"shift must be a whole number of pixels >= 0, got {self.shift!r}")
        if self.max_pixels is not None and self.max_pixels < 4:
            raise ValueError(f"max_pixels must be None or a whole number >= 4, got {self.max_pixels!r}")

    @property
    def views(self) -> list[tuple[float, bool]]:
        """``(scale, mirrored)`` of every view."""
        return [(s, m) for s in self.scales for m in ((False, True) if self.flip else (False,))]

    @property
    def shifts(self) -> tuple[int, ...]:
        """The shifts (pixels down and right) each of `views` is seen at."""
        return (0, self.shift) if self.shift else (0,)

    def view_scale(self, shape: tuple[int, int], scale: float) -> float:
        """The scale an image of ``shape`` = (H, W) is seen at for the view of ``scale``: ``scale`` itself, or
        for ``scale > 1`` with ``max_pixels`` set, lowered (to no less than 1) until the view has at most
        ``max_pixels`` pixels (`view_shape` rounds its sides; a side of 1 pixel still becomes 2, so a view of
        such an image can pass the cap)."""
        if self.max_pixels is None or scale <= 1:
            return scale
        height, width = shape[0], shape[1]
        capped = min(scale, math.sqrt(self.max_pixels / (height * width)))
        if math.prod(view_shape(shape, capped)) > self.max_pixels:  # rounded up past the cap: the largest scale
            # whose sides, rounded up by at most half a pixel each, keep (H s + 1/2) (W s + 1/2) <= max_pixels
            half = (height + width) / 4
            capped = (math.sqrt(half**2 - height * width * (0.25 - self.max_pixels)) - half) / (height * width)
        return max(1.0, capped)

    def label_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """The grid ``(h, w)`` stage 2 labels an image of ``shape`` = (H, W) on: the largest view's with
        ``view_grid``, else ``shape`` itself."""
        return view_shape(shape, self.view_scale(shape, max(self.scales))) if self.view_grid else tuple(shape)

    def to_text(self) -> str:
        """The inverse of `parse`."""
        if self == Augmentation():
            return "none"
        return (f"scales={':'.join(_shortest(s) for s in self.scales)}" + (",flip" if self.flip else "")
                + (f",shift={self.shift}" if self.shift else "") + (",view_grid" if self.view_grid else "")
                + (f",max_pixels={self.max_pixels}" if self.max_pixels is not None else ""))

    @classmethod
    def parse(cls, text: str) -> "Augmentation":
        """``"none"`` or comma-separated items ``scales=S1:S2:...``, ``flip``, ``shift=K``, ``view_grid`` and
        ``max_pixels=N``, e.g. ``"scales=1.25,flip"``."""
        if text == "none":
            return cls()
        fields = {}
        for item in text.split(","):
            key, sep, value = item.partition("=")
            if key in fields:
                raise ValueError(f"augmentation item {key} is given twice in {text!r}")
            try:
                if key == "scales" and sep:
                    fields["scales"] = tuple(float(v) for v in value.split(":"))
                elif key in ("shift", "max_pixels") and sep:
                    fields[key] = int(value)
                elif key in ("flip", "view_grid") and not sep:
                    fields[key] = True
                else:
                    raise ValueError("expected scales=S1:S2:..., flip, shift=K, view_grid or max_pixels=N")
            except ValueError as err:
                raise ValueError(f"augmentation item {item!r}: {err}") from err
        return cls(**fields)


def _shortest(number: float) -> str:
    """The shortest text that reads back as ``number`` ("2" for 2.0, "1.2345678" kept whole: ``{:g}`` rounds)."""
    text = repr(float(number))
    return text.removesuffix(".0")


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 (h, w, 3): ``image`` (uint8 (H, W, 3)) resized bilinearly to ``shape`` = (h, w)."""
    if image.shape[:2] == tuple(shape):
        return image
    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.BILINEAR))


def resize_map(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 (h, w, ...): a float (H, W) or (H, W, K) map resampled to ``shape`` = (h, w) by bilinear
    interpolation at the new pixel centres (no anti-alias blur: a one-pixel boundary stays sharp)."""
    values = np.asarray(values, np.float32)
    if values.shape[:2] == tuple(shape):
        return values
    factors = (shape[0] / values.shape[0], shape[1] / values.shape[1]) + (1.0,) * (values.ndim - 2)
    return ndimage.zoom(values, factors, order=1, mode="nearest", grid_mode=True)


def view_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """The size ``(h, w)`` of an image of ``shape`` = (H, W) seen at ``scale`` (each side at least 2 pixels)."""
    return tuple(max(2, round(n * scale)) for n in shape[:2])


def _cover(new: int, old: int) -> tuple[np.ndarray, np.ndarray]:
    """The cells of a length-``old`` axis each of ``new`` equal pixels over the same extent covers: int (new, K)
    indices and float (new, K) overlap lengths (0 for padding entries); K = old / new when that is whole."""
    starts = np.arange(new) * old / new
    ends = np.arange(1, new + 1) * old / new
    most = old // new if old % new == 0 else old // new + 2
    cells = np.floor(starts).astype(np.int64)[:, None] + np.arange(most)[None]
    overlap = np.clip(np.minimum(ends[:, None], cells + 1) - np.maximum(starts[:, None], cells), 0.0, None)
    return np.minimum(cells, old - 1), overlap


def resample_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``labels`` (int (h, w), >= 0, larger = nearer as the CRF's) on a ``shape`` = (H, W) grid over the same
    extent: each pixel takes the label covering most of its area, a tie going to the larger (nearer) label.
    Every value is one of ``labels``; it commutes with mirroring and transposing. (Sampling at the pixel
    centres instead, which at 2x fall on the cells' edges, took the lower-right cell: a one-cell seam survived
    or vanished with the parity of its column, and a mirrored image gave other instances.)"""
    labels = np.asarray(labels)
    (rows, row_w), (cols, col_w) = (_cover(new, old) for new, old in zip(shape[:2], labels.shape))
    picks = [(labels[rows[:, a]][:, cols[:, b]], row_w[:, a, None] * col_w[None, :, b])
             for a in range(rows.shape[1]) for b in range(cols.shape[1])]
    best, best_area = picks[0][0], np.full(picks[0][0].shape, -1.0)
    for label, _ in picks:
        area = sum(np.where(other == label, weight, 0.0) for other, weight in picks)
        better = (area > best_area + 1e-9) | ((area > best_area - 1e-9) & (label > best))
        best, best_area = np.where(better, label, best), np.where(better, area, best_area)
    return best.astype(labels.dtype, copy=False)


def view_image(image: np.ndarray, scale: float, mirrored: bool, shift: int = 0) -> np.ndarray:
    """The view ``(scale, mirrored)`` of a uint8 (H, W, 3) image (`view_shape`), with ``shift`` rows and columns
    of its own first row and column prepended (``(h + shift, w + shift, 3)``)."""
    view = resize_image(image, view_shape(image.shape[:2], scale))
    view = view[:, ::-1] if mirrored else view
    if shift:
        view = np.pad(view, ((shift, 0), (shift, 0), (0, 0)), mode="edge")
    return np.ascontiguousarray(view)


def heads_back(heads: dict, shape: tuple[int, int], mirrored: bool, shift: int = 0) -> dict:
    """A view's heads ``dict(s, b, e)`` cropped of its ``shift``, unmirrored and on the grid ``shape`` (the
    image's: the inverse of `view_image`)."""
    s, b, e = (heads[k][shift:, shift:] for k in ("s", "b", "e"))
    if mirrored:
        s, b, e = s[:, ::-1], b[:, ::-1], e[:, ::-1][..., MIRRORED_BINS]
    return {"s": resize_map(s, shape), "b": resize_map(b, shape), "e": resize_map(e, shape)}


def augmented_heads(heads_of: Callable[[list[np.ndarray]], list[dict]], images: Sequence[np.ndarray],
                    augmentation: Augmentation, label_grid: bool = False) -> list[dict]:
    """Per image, the mean over ``augmentation.views`` of ``heads_of``'s ``dict(s, b, e)`` (float32) on each
    image's own grid, or with ``label_grid`` on the grid stage 2 labels it on (`Augmentation.label_shape`).
    ``heads_of`` maps a list of uint8 (H, W, 3) images to their heads (one network pass)."""
    if augmentation.views == [(1.0, False)] and augmentation.shifts == (0,):
        return heads_of(list(images))
    shapes = [augmentation.label_shape(image.shape[:2]) if label_grid else image.shape[:2] for image in images]
    total = [None] * len(images)
    for scale, mirrored in augmentation.views:
        for shift in augmentation.shifts:
            views = heads_of([view_image(image, augmentation.view_scale(image.shape[:2], scale), mirrored, shift)
                              for image in images])
            for i, (shape, heads) in enumerate(zip(shapes, views)):
                back = heads_back(heads, shape, mirrored, shift)
                total[i] = back if total[i] is None else {k: total[i][k] + back[k] for k in back}
    count = len(augmentation.views) * len(augmentation.shifts)
    return [{k: v / count for k, v in heads.items()} for heads in total]
