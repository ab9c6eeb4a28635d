"""Where the objects of a synthetic scene stand: a pinhole camera over a ground plane and object groups.

Objects are placed in metres (lateral offset x, depth, lift above the ground) and projected by one camera,
so apparent size falls as 1/depth and nearer objects stand lower in the image; depth then fixes the
occlusion order physically. Groups reproduce the situations the issue asks for: rows of cars receding along
a road (long occlusion chains), cars side by side (same-class contact and overlap), crowds of people,
explicit chains of 5+ layers, frames with something seen through their hole, and scattered objects of all
sizes, some cut by the image border.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.synthetic import shapes

EMPTY_SCENE_PROBABILITY = 0.06
MAX_OBJECTS = 40
CAR, PERSON, FRAME, SIGN, STAR = range(1, 6)  # class ids, as shapes.CLASS_NAMES


@dataclass(frozen=True)
class Camera:
    """Pinhole camera ``eye`` metres above a flat ground; ``horizon`` and ``focal`` in pixels."""

    height: int
    width: int
    horizon: float
    focal: float
    eye: float

    def anchor(self, x: float, depth: float, lift: float = 0.0) -> tuple[float, float, float]:
        """Image position (column, row) of the object's local origin and its scale in pixels per metre."""
        scale = self.focal / depth
        return self.width / 2 + x * scale, self.horizon + (self.eye - lift) * scale, scale

    def lateral(self, column: float, depth: float) -> float:
        """The lateral offset x (metres) that projects to ``column`` at ``depth``."""
        return (column - self.width / 2) * depth / self.focal


@dataclass(frozen=True)
class Placement:
    """One object of the scene: class id (1-based), shape, depth (m), lateral x (m), lift above ground (m)."""

    class_id: int
    shape: shapes.Shape
    depth: float
    x: float
    lift: float = 0.0


def random_camera(rng: np.random.Generator, height: int, width: int) -> Camera:
    return Camera(height, width, horizon=rng.uniform(0.25, 0.5) * height, focal=rng.uniform(0.7, 1.2) * width,
                  eye=rng.uniform(1.2, 1.8))


def _new(rng, class_id, depth, x, lift=0.0):
    return Placement(class_id, shapes.SHAPES[class_id - 1](rng), float(depth), float(x), float(lift))


def _width(p: Placement) -> float:
    return p.shape.extent[1] - p.shape.extent[0]


def receding_row(rng, cam):
    """Cars parked along a road, one behind the other: each partly hides the next (a chain)."""
    depth, x = rng.uniform(4, 12), rng.choice([-1, 1]) * rng.uniform(1.5, 5)
    row = []
    for _ in range(rng.integers(3, 7)):
        row.append(_new(rng, CAR, depth, x))
        depth += rng.uniform(3.5, 6.5)
        x += rng.uniform(-0.3, 0.3)
    return row


def side_row(rng, cam):
    """Cars side by side at about one depth, touching or overlapping (same-class contact)."""
    depth = rng.uniform(6, 25)
    x = cam.lateral(rng.uniform(-0.1, 0.6) * cam.width, depth)
    row = [_new(rng, CAR, depth, x)]
    for _ in range(rng.integers(2, 5)):
        car = _new(rng, CAR, depth + rng.uniform(-1.2, 1.2), 0.0)
        x += (_width(row[-1]) + _width(car)) / 2 * rng.uniform(0.7, 1.02)
        row.append(Placement(CAR, car.shape, car.depth, x))
    return row


def crowd(rng, cam):
    """A group of people close together at about one depth."""
    depth = rng.uniform(4, 30)
    x = cam.lateral(rng.uniform(0, 1) * cam.width, depth)
    return [_new(rng, PERSON, depth + rng.uniform(-1.5, 1.5), x + rng.uniform(-1.2, 1.2))
            for _ in range(rng.integers(2, 7))]


def chain(rng, cam):
    """5-7 objects of any class, each a little deeper and shifted sideways: a chain of 5+ occlusion layers."""
    depth = rng.uniform(3, 10)
    column = rng.uniform(0.2, 0.8) * cam.width
    direction = rng.choice([-1, 1])
    out = []
    for _ in range(rng.integers(5, 8)):
        p = _new(rng, int(rng.choice([CAR, PERSON, SIGN, FRAME])), depth, cam.lateral(column, depth))
        out.append(p)
        column += direction * rng.uniform(0.2, 0.45) * _width(p) * cam.focal / depth
        depth *= rng.uniform(1.12, 1.35)
    return out


def through_hole(rng, cam):
    """A frame with an object behind it, centred on the hole, and sometimes a small object in front."""
    depth = rng.uniform(6, 20)
    frame = _new(rng, FRAME, depth, cam.lateral(rng.uniform(0.1, 0.9) * cam.width, depth))
    _, radius, _, top = frame.shape.extent
    hole_height = top - radius  # height of the frame centre above the ground
    out = [frame]
    ahead = [(depth * rng.uniform(1.1, 1.8), int(rng.choice([PERSON, STAR, SIGN, CAR])))]
    if rng.random() < 0.4:
        ahead.append((depth * rng.uniform(0.6, 0.9), STAR))
    for d, class_id in ahead:
        obj = _new(rng, class_id, d, frame.x * d / depth)
        _, _, w0, w1 = obj.shape.extent
        # Lift so that the object's centre projects onto the hole centre: same ray through the camera.
        lift = cam.eye - (cam.eye - hole_height) * d / depth - (w0 + w1) / 2
        out.append(Placement(obj.class_id, obj.shape, obj.depth, obj.x, lift))
    return out


def scatter(rng, cam):
    """Single objects of every class at log-uniform depths, some cut by the image border."""
    out = []
    for _ in range(rng.integers(1, 9)):
        depth = float(np.exp(rng.uniform(np.log(3), np.log(70))))
        class_id = int(rng.integers(1, len(shapes.CLASS_NAMES) + 1))
        out.append(_new(rng, class_id, depth, cam.lateral(rng.uniform(-0.1, 1.1) * cam.width, depth)))
    return out


GROUPS = ((receding_row, 0.35), (side_row, 0.4), (crowd, 0.4), (chain, 0.35), (through_hole, 0.5))


def layout(rng: np.random.Generator, cam: Camera) -> list[Placement]:
    """All objects of one scene (empty with probability ``EMPTY_SCENE_PROBABILITY``), at most MAX_OBJECTS."""
    if rng.random() < EMPTY_SCENE_PROBABILITY:
        return []
    objects = scatter(rng, cam)
    for group, probability in GROUPS:
        if rng.random() < probability:
            objects += group(rng, cam)
    return objects[:MAX_OBJECTS]
