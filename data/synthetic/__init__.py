"""Synthetic occlusion scenes: the project's embedded default dataset (no download needed).

``make_scene(seed, height, width)`` renders one scene; ``builder(data_dir, **config)`` is its
tensorflow-datasets builder (``data/loading.py`` reads every dataset the same way). The builder module
imports tensorflow-datasets, so it is loaded only when ``builder`` is first called.
"""

from data.synthetic.scene import make_scene
from data.synthetic.shapes import CLASS_NAMES


def builder(data_dir, /, **config):
    """The tfds builder of the synthetic scenes (``data.synthetic.tfds_builder.builder``)."""
    from data.synthetic.tfds_builder import builder as make_builder

    return make_builder(data_dir, **config)


__all__ = ["CLASS_NAMES", "builder", "make_scene"]
