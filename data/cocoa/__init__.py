"""COCOA (COCO Amodal, Zhu et al., CVPR 2017): COCO 2014 images with instance masks and occlusion order.

Registry entry of the dataset (convention of ``data.loading``): ``CLASS_NAMES``,
``builder`` and the reader ``examples`` (``data.cocoa.reader``). Nothing is downloaded: the user puts the
COCOA annotation files and the COCO 2014 images into one folder (``data.cocoa.dataset_builder``).

Training class ids are contiguous, ``k`` = ``CLASS_NAMES[k - 1]``, 0 = background: the 80 COCO thing
categories in increasing COCO id order (``CATEGORY_TO_CLASS``: 1 person -> 1, ..., 90 toothbrush -> 80).
"""

from __future__ import annotations

from data.cocoa.reader import UNLABELLED, examples

CLASS_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
    33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
    60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
)  # fmt: skip
CATEGORY_TO_CLASS = {category: k + 1 for k, category in enumerate(COCO_CATEGORY_IDS)}


def builder(data_dir, /, manual_dir=None, **config):
    """The tfds builder of COCOA (``data.cocoa.dataset_builder.Cocoa``). Settings: ``manual_dir`` (the folder of
    the user's download) and ``config``: ``'classes'`` (default) or ``'classes_mask_order'``."""
    from data.cocoa.dataset_builder import Cocoa  # tfds is heavy: imported only when a builder is asked for

    return Cocoa(data_dir=data_dir, manual_dir=manual_dir, **config)


__all__ = [
    "CATEGORY_TO_CLASS", "CLASS_NAMES", "COCO_CATEGORY_IDS",
    "UNLABELLED", "builder", "examples",
]  # fmt: skip
