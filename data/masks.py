"""COCO masks of the KINS and COCOA readers: run-length (RLE) and polygon segmentations decoded and validated.

Masks are ``bool (H, W)`` arrays in image coordinates (row = y, column = x), with ``H, W`` the image size
recorded in the file's ``images`` entry. Polygons are rasterised by ``pycocotools.mask.frPyObjects``,
which clips them to the image: vertices outside the image are allowed and the part of the polygon outside
is dropped (a polygon entirely outside gives an empty mask). A malformed segmentation fails here with a message
naming it, never inside pycocotools (whose C decoder trusts its input: a run-length string whose counts overrun
the image writes past the buffer).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from pycocotools import mask as mask_utils

from data.annotations import integer, is_finite_number, require

FAR = 4  # polygons are clipped to the image grown by FAR image sizes on every side (``polygon_mask``)
MAX_COORDINATE = 1e300  # beyond it the differences of `_clip_polygon` overflow float64 (and pycocotools hangs)


def _decode(rle) -> np.ndarray:
    """``pycocotools.mask.decode`` as ``bool``, without its numpy-2 ``__array__(copy=...)`` deprecation noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def _polygon_list(polygons: object, where: str) -> list[list[float]]:
    """Validated polygons as a list of flat ``[x0, y0, x1, y1, ...]`` lists (>= 3 finite points each).

    Accepts one flat polygon (COCOA regions) or a list of them (COCO, KINS: several parts per object). A part
    of fewer than 3 points covers no area: it is left out with a warning naming it (COCO files hold a few),
    the object's other parts stay; an odd number of coordinates is a malformed file (``ValueError``).
    """
    if not isinstance(polygons, list):
        raise ValueError(f"{where}: polygons must be a list, got {type(polygons).__name__}")
    if polygons and not isinstance(polygons[0], list):
        polygons = [polygons]
    out = []
    for k, poly in enumerate(polygons):
        if not isinstance(poly, list):
            raise ValueError(f"{where}: polygon {k} must be a flat list of coordinates")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly):
            raise ValueError(f"{where}: polygon {k} holds non-numeric coordinates")
        if len(poly) % 2:
            raise ValueError(f"{where}: polygon {k} needs an even number of coordinates, got {len(poly)}")
        if len(poly) < 6:
            warnings.warn(f"{where}: polygon {k} has {len(poly) // 2} point(s), no area; left out of the mask",
                          stacklevel=3)
            continue
        if not all(is_finite_number(v) for v in poly):
            raise ValueError(f"{where}: polygon {k} holds non-finite coordinates")
        if max(abs(v) for v in poly) > MAX_COORDINATE:
            raise ValueError(f"{where}: polygon {k} holds coordinates beyond +-{MAX_COORDINATE:g} px")
        out.append([float(v) for v in poly])
    return out


def _clip_polygon(poly: list[float], x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """The part of a flat polygon inside the box ``[x0, x1] x [y0, y1]`` (Sutherland-Hodgman, exact)."""
    points = list(zip(poly[0::2], poly[1::2]))
    for axis, bound, keep_above in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        inside = [(p[axis] >= bound) if keep_above else (p[axis] <= bound) for p in points]
        clipped = []
        for k, (p, p_in) in enumerate(zip(points, inside)):
            q, q_in = points[k - 1], inside[k - 1]
            if p_in != q_in:  # the edge q -> p crosses the bound
                t = (bound - q[axis]) / (p[axis] - q[axis])
                crossing = [q[0] + t * (p[0] - q[0]), q[1] + t * (p[1] - q[1])]
                crossing[axis] = bound
                clipped.append(tuple(crossing))
            if p_in:
                clipped.append(p)
        points = clipped
        if not points:
            break
    return [v for p in points for v in p]


def polygon_mask(polygons: object, height: int, width: int, where: str) -> np.ndarray:
    """Union of the polygons as ``bool (height, width)``, clipped to the image; ``[]`` gives an empty mask.

    pycocotools rasterises the polygons within the image frame. Its work (and memory) grows with the
    polygon's perimeter, so a polygon reaching more than ``FAR`` image sizes outside the image is first
    clipped to that box (exactly, Sutherland-Hodgman); nearer polygons are passed unchanged, so the masks
    equal those of every other pycocotools user.
    """
    polys = []
    x0, y0, x1, y1 = -FAR * width, -FAR * height, (FAR + 1) * width, (FAR + 1) * height
    for poly in _polygon_list(polygons, where):
        xs, ys = poly[0::2], poly[1::2]
        if min(xs) < x0 or min(ys) < y0 or max(xs) > x1 or max(ys) > y1:
            poly = _clip_polygon(poly, x0, y0, x1, y1)
        if len(poly) >= 6:
            polys.append(poly)
    if not polys:
        return np.zeros((height, width), dtype=bool)
    return _decode(mask_utils.merge(mask_utils.frPyObjects(polys, height, width)))


def _compressed_counts(counts: str, where: str) -> np.ndarray:
    """Run lengths (``int64``) of a COCO compressed RLE string, validated.

    Format (pycocotools ``rleToString``): each run is written in 5-bit groups, least significant first, as
    characters ``chr(48 + code)``; bit 0x20 of a code says more groups follow, bit 0x10 of the last group
    makes the run negative; from the fourth run on, the value is the difference to the run two before.
    """
    if not counts.isascii():
        raise ValueError(f"{where}: RLE string holds non-ASCII characters")
    codes = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    bad = (codes < 0) | (codes >= 64)
    if bad.any():
        raise ValueError(f"{where}: RLE string holds the invalid character {counts[int(np.argmax(bad))]!r}")
    if codes.size == 0:
        return codes
    last = (codes & 0x20) == 0  # the last group of a run
    if not last[-1]:
        raise ValueError(f"{where}: RLE string ends inside a run length")
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    if (ends - starts).max() >= 7:
        raise ValueError(f"{where}: RLE string holds a run length longer than 7 characters")
    shift = 5 * (np.arange(codes.size) - np.repeat(starts, ends - starts + 1))
    values = np.add.reduceat((codes & 0x1F) << shift, starts)
    values -= np.where(codes[ends] & 0x10, np.left_shift(1, shift[ends] + 5), 0)
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    if (runs < 0).any():
        raise ValueError(f"{where}: RLE string decodes to a negative run length")
    return runs


def rle_mask(rle: object, height: int, width: int, where: str) -> np.ndarray:
    """Decode a COCO RLE (compressed string or uncompressed list ``counts``) to ``bool (height, width)``.

    The RLE's ``size`` must equal ``[height, width]`` and its runs must add up to ``height * width``.
    """
    require(rle, ["size", "counts"], where)
    size = rle["size"]
    if not isinstance(size, list) or len(size) != 2 or [integer(v, f"{where}.size") for v in size] != [height, width]:
        raise ValueError(f"{where}: RLE size {size!r} differs from the image size [{height}, {width}]")
    counts = rle["counts"]
    if isinstance(counts, str):
        runs = _compressed_counts(counts, where)
        encoded = {"size": [height, width], "counts": counts.encode("ascii")}
    elif isinstance(counts, list):
        runs = np.asarray([integer(v, f"{where}.counts") for v in counts], dtype=np.int64)
        if (runs < 0).any():
            raise ValueError(f"{where}: RLE counts must be >= 0")
        encoded = None
    else:
        raise ValueError(f"{where}: RLE counts must be a string or a list, got {type(counts).__name__}")
    if int(runs.sum()) != height * width:
        raise ValueError(f"{where}: RLE runs cover {int(runs.sum())} pixels, the image has {height * width}")
    if encoded is None:
        encoded = mask_utils.frPyObjects({"size": [height, width], "counts": runs.tolist()}, height, width)
    return _decode(encoded)


def segmentation_mask(segmentation: object, height: int, width: int, where: str) -> np.ndarray:
    """A COCO ``segmentation`` value as ``bool (height, width)``: an RLE object, a list of RLE objects (their
    union) or polygon list(s)."""
    if isinstance(segmentation, Mapping):
        return rle_mask(segmentation, height, width, where)
    if isinstance(segmentation, list) and segmentation and all(isinstance(s, Mapping) for s in segmentation):
        return np.logical_or.reduce([rle_mask(s, height, width, f"{where}[{k}]") for k, s in enumerate(segmentation)])
    if isinstance(segmentation, list):
        return polygon_mask(segmentation, height, width, where)
    raise ValueError(f"{where}: segmentation must be an RLE object or polygon list, got {type(segmentation).__name__}")
