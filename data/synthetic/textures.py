"""Cheap procedural appearance for the synthetic scenes: object textures and a cluttered background.

The background has its own colour edges (horizon, buildings, bushes, road marks) that are not occlusion
boundaries, and objects draw their colours from the same scene palette as the clutter, so an occlusion
boundary cannot be found from colour edges alone. All arrays are float32 RGB in [0, 255] before clipping.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float, channels: int = 1) -> np.ndarray:
    """float32 (height, width, channels) value noise in [-1, 1]: coarse uniform noise on a grid of ``cell``
    pixels, bilinearly interpolated (first along columns on the coarse rows, then along rows)."""
    gh, gw = int(height / cell) + 2, int(width / cell) + 2
    coarse = rng.uniform(-1, 1, (gh, gw, channels)).astype(np.float32)
    x = np.arange(width, dtype=np.float32) / cell
    ix = x.astype(np.int64)
    tx = (x - ix)[None, :, None]
    coarse_rows = coarse[:, ix] * (1 - tx) + coarse[:, ix + 1] * tx  # (gh, width, channels)
    y = np.arange(height, dtype=np.float32) / cell
    iy = y.astype(np.int64)
    ty = (y - iy)[:, None, None]
    return coarse_rows[iy] * (1 - ty) + coarse_rows[iy + 1] * ty


def object_colours(rng: np.random.Generator, palette: np.ndarray) -> np.ndarray:
    """float32 (4, 3) colours of the parts 0..3 of one object (row 0 unused): a main colour that is a
    scene palette colour half of the time, a free secondary colour, and a dark colour."""
    main = palette[rng.integers(len(palette))] if rng.random() < 0.5 else rng.uniform(0, 255, 3)
    second = rng.uniform(0, 255, 3)
    dark = main * rng.uniform(0.15, 0.4) + rng.uniform(0, 40, 3)
    return np.stack([np.zeros(3), main, second, dark]).astype(np.float32)


def object_pattern(rng: np.random.Generator) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A random texture in object coordinates (metres): ``f(u, v) -> float32`` values in about [-1, 1]
    (plain, stripes, checks or spots, with a vertical shading ramp)."""
    kind = rng.integers(4)
    fu, fv = rng.uniform(0.8, 5.0, 2) * rng.choice([-1, 1], 2)
    phase = rng.uniform(0, 2 * np.pi)
    shade = rng.uniform(-0.3, 0.3)

    def pattern(u, v):
        if kind == 0:
            base = np.zeros_like(u)
        elif kind == 1:
            base = np.cos(2 * np.pi * (fu * u + fv * v) + phase)
        elif kind == 2:
            base = np.sign(np.sin(2 * np.pi * fu * u + phase) * np.sin(2 * np.pi * fv * v))
        else:
            base = (np.cos(2 * np.pi * fu * u + phase) * np.cos(2 * np.pi * fv * v) > 0.5) * 2.0 - 1.0
        return (0.8 * base + shade * v).astype(np.float32)

    return pattern


def _paint_box(image, rng, y0, y1, x0, x1, colour):
    """Paint an axis-aligned box (clipped) with a flat colour plus a random window/stripe pattern."""
    h, w = image.shape[:2]
    y0, y1, x0, x1 = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
    if y0 >= y1 or x0 >= x1:
        return
    region = image[y0:y1, x0:x1]
    region[:] = colour
    period = int(rng.integers(4, 14))
    if rng.random() < 0.6:  # windows
        yy, xx = np.ogrid[y0:y1, x0:x1]
        windows = ((yy - y0) % period < period // 2) & ((xx - x0) % period < period // 2)
        region[windows] = colour * 0.55 + 60


def _paint_ellipse(image, cy, cx, ry, rx, colour):
    h, w = image.shape[:2]
    y0, y1 = max(0, int(cy - ry)), min(h, int(cy + ry) + 1)
    x0, x1 = max(0, int(cx - rx)), min(w, int(cx + rx) + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    image[y0:y1, x0:x1][inside] = colour


def background(rng: np.random.Generator, height: int, width: int, palette: np.ndarray, horizon: float) -> np.ndarray:
    """float32 (height, width, 3) background: sky above ``horizon``, ground below, smooth colour noise and
    clutter (buildings with windows, bushes, road marks) drawn from ``palette`` (float (P, 3))."""
    sky, ground = rng.uniform(60, 230, 3), rng.uniform(30, 180, 3)
    rows = np.arange(height, dtype=np.float32)[:, None, None]
    blend = np.clip((rows - horizon) / max(2.0, 0.02 * height) + 0.5, 0, 1)
    image = np.broadcast_to(sky * (1 - blend) + ground * blend, (height, width, 3)).astype(np.float32)
    image = image + 35 * smooth_noise(rng, height, width, cell=max(4.0, width / rng.uniform(6, 20)), channels=3)
    for _ in range(rng.integers(2, 7)):  # buildings standing on the horizon
        bw, bh = rng.uniform(0.05, 0.3) * width, rng.uniform(0.1, 0.6) * max(horizon, 1)
        bx = rng.uniform(-0.1, 1.0) * width
        _paint_box(image, rng, int(horizon - bh), int(horizon + 2), int(bx), int(bx + bw),
                   palette[rng.integers(len(palette))])
    for _ in range(rng.integers(2, 9)):  # bushes and blobs, anywhere
        r = rng.uniform(0.02, 0.12) * height
        _paint_ellipse(image, rng.uniform(0, height), rng.uniform(0, width), r, r * rng.uniform(0.6, 2.5),
                       palette[rng.integers(len(palette))] + rng.uniform(-30, 30, 3))
    for _ in range(rng.integers(0, 4)):  # road marks: thin slanted bands below the horizon
        y = rng.uniform(horizon, height)
        thick = rng.integers(1, 4)
        slope = rng.uniform(-0.3, 0.3)
        cols = np.arange(width)
        rows_at = (y + slope * (cols - width / 2)).astype(np.int64)
        for t in range(thick):
            ok = (rows_at + t >= 0) & (rows_at + t < height)
            image[rows_at[ok] + t, cols[ok]] = rng.uniform(180, 255)
    return image
