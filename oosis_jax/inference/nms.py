"""Non-maximum suppression of boundary probability maps (Sec. 3.1: "To thin occlusion boundaries, we apply
non-maximum suppression. We also discard boundaries below a threshold of 0.1").

The method of structured edge detection (Dollar & Zitnick's ``edgesNms``), written with numpy/scipy: the
boundary normal at each pixel is estimated from the second derivatives of a smoothed copy of the map, and a
pixel survives only when it is not smaller than the map interpolated one pixel away on either side along
that normal. A ridge blurred across several pixels becomes a 1-pixel line.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BOUNDARY_THRESHOLD = 0.1  # Sec. 3.1


def check_probabilities(values: np.ndarray, name: str) -> None:
    """``ValueError`` naming ``name`` unless the float array ``values`` (any shape) is non-empty, finite and in
    [0, 1]; makes no copy."""
    if values.size == 0:
        raise ValueError(f"{name} is empty: shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or inf")
    if values.min() < 0 or values.max() > 1:
        raise ValueError(f"{name} must lie in [0, 1], got {values.min()}..{values.max()}")


def check_probability_map(b, name: str = "b") -> np.ndarray:
    b = np.asarray(b)
    if b.ndim != 2 or not np.issubdtype(b.dtype, np.floating):
        raise ValueError(f"{name} must be a float (H, W) array, got {b.dtype} {b.shape}")
    check_probabilities(b, name)
    return b.astype(np.float64)


def _gradient(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.gradient`` of a 2-D array along y and x, 0 along an axis of one pixel (a one-row image is flat
    across its rows)."""
    return tuple(np.gradient(a, axis=axis) if a.shape[axis] > 1 else np.zeros_like(a) for axis in (0, 1))


def normal_angles(b, smoothing: float = 1.0) -> np.ndarray:
    """float64 (H, W): angle in [0, pi) of the boundary normal (x right, y down) of a float (H, W) map.

    From the Hessian of the map smoothed with a Gaussian of std ``smoothing`` pixels: across a ridge the
    curvature is strongest along the normal, so the normal is the eigenvector of the Hessian's eigenvalue of
    largest magnitude (negative on the ridge, positive on its flanks). The closed form of edgesNms,
    ``atan(Oyy * sign(-Oxy) / Oxx)``, degenerates on exactly axis-aligned ridges, hence the eigenvectors.
    """
    smooth = ndimage.gaussian_filter(np.asarray(b, np.float64), smoothing, mode="nearest")
    oy, ox = _gradient(smooth)
    oyy, _ = _gradient(oy)
    oxy, oxx = _gradient(ox)
    larger_eigenvector = 0.5 * np.arctan2(2.0 * oxy, oxx - oyy)
    mean, radius = (oxx + oyy) / 2, np.hypot((oxx - oyy) / 2, oxy)
    larger_is_stronger = np.abs(mean + radius) >= np.abs(mean - radius)
    return np.mod(larger_eigenvector + np.where(larger_is_stronger, 0.0, np.pi / 2), np.pi)


def boundary_nms(b, smoothing: float = 1.0) -> np.ndarray:
    """Thinned boundary map: float64 (H, W), ``b`` where it is a local maximum across the boundary, else 0.

    ``b`` is float (H, W) in [0, 1]. A pixel is kept when ``b`` is >= the bilinear interpolation of ``b`` at
    distance 1 on both sides along the normal of `normal_angles` (ties keep both); pixels at the image edge are
    kept as any other (P2ORM's ``edge_nms`` damps 5 px there: ``docs/datasets_and_metrics.md``). Raises
    ``ValueError`` for a wrong shape/dtype, an empty map, NaN or values outside [0, 1].
    """
    b = check_probability_map(b)
    theta = normal_angles(b, smoothing)
    rows, cols = np.indices(b.shape, dtype=np.float64)
    dy, dx = np.sin(theta), np.cos(theta)
    keep = b > 0
    for sign in (1.0, -1.0):
        neighbour = ndimage.map_coordinates(b, [rows + sign * dy, cols + sign * dx], order=1, mode="nearest")
        keep &= b >= neighbour - 1e-12
    return np.where(keep, b, 0.0)


def thin_boundaries(b, threshold: float = BOUNDARY_THRESHOLD, smoothing: float = 1.0) -> np.ndarray:
    """bool (H, W): boundary pixels after `boundary_nms` whose probability is >= ``threshold`` (Sec. 3.1)."""
    return boundary_nms(b, smoothing) >= threshold
