"""KINS (Qi et al., CVPR 2019): KITTI driving scenes with instance masks and occlusion order.

Registry entry of the dataset (convention of ``data.loading``): ``CLASS_NAMES``,
``builder`` and the reader ``examples`` (``data.kins.reader``). Nothing is downloaded: the user puts the
KINS annotation files and the KITTI object images into one folder (``data.kins.dataset_builder``).

Training class ids are contiguous, ``k`` = ``CLASS_NAMES[k - 1]``, 0 = background. KINS category ids map
to them as ``CATEGORY_TO_CLASS``: 1 cyclist -> 1, 2 pedestrian -> 2, 4 car -> 3, 5 tram -> 4, 6 truck -> 5,
7 van -> 6, 8 misc -> 7. Category 3 (rider) is listed by KINS but has no annotations; it has no training
id, and an image with an annotation using it is left out of a build with a warning naming it (the
annotation would otherwise silently vanish).
"""

from __future__ import annotations

from data.kins.reader import examples

CLASS_NAMES = ("cyclist", "pedestrian", "car", "tram", "truck", "van", "misc")
CATEGORY_TO_CLASS = {1: 1, 2: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 7}


def builder(data_dir, /, manual_dir=None, **config):
    """The tfds builder of KINS (``data.kins.dataset_builder.Kins``). Settings: ``manual_dir`` (the folder of
    the user's download) and ``config``: ``'update2020'`` (default) or ``'original'``."""
    from data.kins.dataset_builder import Kins  # tfds is heavy: imported only when a builder is asked for

    return Kins(data_dir=data_dir, manual_dir=manual_dir, **config)


__all__ = ["CATEGORY_TO_CLASS", "CLASS_NAMES", "builder", "examples"]
