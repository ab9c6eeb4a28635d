"""Synthetic scenes for the input-pipeline and loader tests."""

from data.synthetic import make_scene


def scenes_with_edges(count: int, height: int = 48, width: int = 64) -> list[dict]:
    """The first ``count`` synthetic scenes (seeds 0, 1, ...) of ``height x width`` that have an occlusion edge."""
    found, seed = [], 0
    while len(found) < count:
        scene = make_scene(seed, height, width)
        if len(scene["edges"]):
            found.append(scene)
        seed += 1
    return found
