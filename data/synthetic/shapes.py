"""Object classes of the synthetic scenes: random shapes drawn in object-local metric coordinates.

Every class is a function ``rng -> Shape``. A shape lives in local coordinates (u, v) in metres: u is the
lateral offset from the object's anchor (positive to the right of the image), v the height above the
anchor (positive up). ``Shape.parts(u, v)`` rasterises it on broadcastable float grids and returns an int8
part map: 0 outside the object, 1 main body, 2 secondary part (windows, head, sign face), 3 dark part
(wheels, legs, posts). Parts are textured differently, so an object has inner colour edges that are not
occlusion boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

CLASS_NAMES = ("car", "person", "frame", "sign", "star")


@dataclass(frozen=True)
class Shape:
    """A drawable object: its extent (u_min, u_max, v_min, v_max) in metres and its rasteriser."""

    extent: tuple[float, float, float, float]
    parts: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _disc(u, v, cu, cv, r):
    return (u - cu) ** 2 + (v - cv) ** 2 <= r * r


def _box(u, v, u0, u1, v0, v1):
    return (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def _capsule(u, v, a, b, r):
    """Points within distance r of the segment a-b (a, b are (u, v) pairs)."""
    du, dv = b[0] - a[0], b[1] - a[1]
    t = np.clip(((u - a[0]) * du + (v - a[1]) * dv) / (du * du + dv * dv), 0.0, 1.0)
    return (u - a[0] - t * du) ** 2 + (v - a[1] - t * dv) ** 2 <= r * r


def _rounded_box(u, v, u0, u1, v0, v1, r):
    cu = np.clip(u, u0 + r, u1 - r)
    cv = np.clip(v, v0 + r, v1 - r)
    return (u - cu) ** 2 + (v - cv) ** 2 <= r * r


def _compose(*layers):
    """Stack boolean layers into a part map; later layers win. ``layers`` = (part_id, mask) pairs."""
    shape = np.broadcast_shapes(*(m.shape for _, m in layers))
    out = np.zeros(shape, np.int8)
    for part, mask in layers:
        out[np.broadcast_to(mask, shape)] = part
    return out


def car(rng: np.random.Generator) -> Shape:
    """A car in side view (body, cabin with windows, two wheels) or rear view (body, rear window, tyres)."""
    height = rng.uniform(1.35, 1.7)
    if rng.random() < 0.6:
        length = rng.uniform(3.6, 4.8)
        half, wheel = length / 2, rng.uniform(0.28, 0.36)
        screen, rear = rng.uniform(0.4, 0.9), rng.uniform(0.1, 0.5)  # slant of windscreen and rear window
        cab_start, cab_end = -rng.uniform(0.45, 0.6) * half, rng.uniform(0.6, 0.85) * half
        sill = 0.55 * height
        flip = 1.0 if rng.random() < 0.5 else -1.0

        def parts(u, v):
            u = u * flip
            body = _rounded_box(u, v, -half, half, 0.2, sill + 0.05, 0.18)
            slope = (v - sill) / (height - sill)  # 0 at the sill, 1 at the roof
            front, back = cab_start + slope * screen, cab_end - slope * rear
            cab = (v >= sill) & (v <= height) & (u >= front) & (u <= back)
            glass = (v >= sill + 0.06) & (v <= height - 0.08) & (u >= front + 0.1) & (u <= back - 0.1)
            wheels = _disc(u, v, -half * 0.62, wheel, wheel) | _disc(u, v, half * 0.62, wheel, wheel)
            return _compose((1, body | cab), (2, glass), (3, wheels))

        return Shape((-half, half, 0.0, height), parts)
    half = rng.uniform(0.8, 0.95)

    def parts_rear(u, v):
        body = _rounded_box(u, v, -half, half, 0.15, 0.62 * height, 0.12)
        cab = (v >= 0.55 * height) & (v <= height) & (np.abs(u) <= half * (1 - 0.35 * (v / height - 0.55) / 0.45))
        glass = cab & (v >= 0.62 * height) & (v <= height - 0.08) & (np.abs(u) <= half * 0.7)
        tyres = _box(np.abs(u), v, half - 0.3, half - 0.05, 0.0, 0.2)
        lights = _box(np.abs(u), v, half - 0.3, half - 0.08, 0.4 * height, 0.5 * height)
        return _compose((1, body | cab), (2, glass | lights), (3, tyres))

    return Shape((-half, half, 0.0, height), parts_rear)


def person(rng: np.random.Generator) -> Shape:
    """A standing person: legs, capsule torso, arms and a round head."""
    h = rng.uniform(1.55, 1.95)
    stride = rng.uniform(0.0, 0.12) * h
    arm = rng.uniform(0.12, 0.3) * h

    def parts(u, v):
        legs = _capsule(u, v, (-0.05 * h, 0.48 * h), (-0.05 * h - stride, 0.03 * h), 0.045 * h) \
            | _capsule(u, v, (0.05 * h, 0.48 * h), (0.05 * h + stride, 0.03 * h), 0.045 * h)
        torso = _capsule(u, v, (0.0, 0.5 * h), (0.0, 0.72 * h), 0.12 * h)
        arms = _capsule(u, v, (-0.13 * h, 0.75 * h), (-arm, 0.45 * h), 0.035 * h) \
            | _capsule(u, v, (0.13 * h, 0.75 * h), (arm, 0.45 * h), 0.035 * h)
        head = _disc(u, v, 0.0, 0.9 * h, 0.09 * h)
        return _compose((3, legs), (1, torso | arms), (2, head))

    half = max(arm, 0.05 * h + stride) + 0.05 * h
    return Shape((-half, half, 0.0, h), parts)


def frame(rng: np.random.Generator) -> Shape:
    """A ring or square frame with a large hole, on a thin post: objects behind it show through the hole."""
    radius = rng.uniform(0.45, 1.0)
    inner = rng.uniform(0.55, 0.78) * radius
    centre = rng.uniform(0.2, 0.9) + radius
    post = rng.uniform(0.04, 0.1)
    round_ = rng.random() < 0.5

    def parts(u, v):
        if round_:
            d2 = u * u + (v - centre) ** 2
            ring = (d2 <= radius * radius) & (d2 >= inner * inner)
        else:
            cheb = np.maximum(np.abs(u), np.abs(v - centre))
            ring = (cheb <= radius) & (cheb >= inner)
        stand = _box(u, v, -post, post, 0.0, centre - radius + 0.05)
        return _compose((3, stand), (1, ring))

    return Shape((-radius, radius, 0.0, centre + radius), parts)


def sign(rng: np.random.Generator) -> Shape:
    """A thin pole carrying a round, triangular or rectangular sign plate."""
    top = rng.uniform(2.2, 4.0)
    pole = rng.uniform(0.03, 0.07)
    r = rng.uniform(0.25, 0.45)
    kind = rng.integers(3)

    def parts(u, v):
        plate_v = v - (top - r)
        if kind == 0:
            plate, face = _disc(u, plate_v, 0, 0, r), _disc(u, plate_v, 0, 0, 0.75 * r)
        elif kind == 1:
            plate = (plate_v >= -0.8 * r) & (plate_v <= r) & (np.abs(u) <= (r - plate_v) * 0.6)
            face = (plate_v >= -0.6 * r) & (plate_v <= 0.75 * r) & (np.abs(u) <= (0.75 * r - plate_v) * 0.45)
        else:
            plate, face = _box(u, plate_v, -1.3 * r, 1.3 * r, -r, r), _box(u, plate_v, -1.1 * r, 1.1 * r, -0.8 * r, 0.8 * r)
        return _compose((3, _box(u, v, -pole, pole, 0.0, top - r)), (1, plate), (2, face))

    return Shape((-1.3 * r, 1.3 * r, 0.0, top), parts)


def star(rng: np.random.Generator) -> Shape:
    """A floating star or wobbly blob: polar radius r(theta) = R (1 + a cos(k theta + phi) + ...)."""
    radius = rng.uniform(0.35, 0.9)
    spiky = rng.random() < 0.5
    k = int(rng.integers(5, 8)) if spiky else int(rng.integers(2, 4))
    a = rng.uniform(0.3, 0.45) if spiky else rng.uniform(0.1, 0.25)
    phase, phase2 = rng.uniform(0, 2 * np.pi, 2)
    lift = rng.uniform(0.0, 2.0)
    top = (1 + a + 0.08) * radius
    centre = lift + top

    def parts(u, v):
        theta = np.arctan2(v - centre, u)
        rad = radius * (1 + a * np.cos(k * theta + phase) + 0.08 * np.cos((k + 1) * theta + phase2))
        body = u * u + (v - centre) ** 2 <= rad * rad
        core = u * u + (v - centre) ** 2 <= (0.35 * rad) ** 2
        return _compose((1, body), (2, core))

    return Shape((-top, top, lift, lift + 2 * top), parts)


SHAPES = (car, person, frame, sign, star)  # index k-1 = class id k, as CLASS_NAMES
