"""tfds builder of KINS from the user's folder (``manual_dir``); see ``data.annotations_tfds``.

Configs: ``update2020`` (default; ``update_{train,test}_2020.json``, annotated order) and ``original``
(``instances_{train,val}.json``, order derived from masks). Splits ``train`` (KITTI ``training/image_2``)
and ``test`` (KITTI ``testing/image_2``; KINS calls the ``instances_val.json`` half its test set).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

import data.kins as kins
from data.annotations_tfds import ManualFolderBuilder

ANNOTATION_FILES = {
    "update2020": {"train": "update_train_2020.json", "test": "update_test_2020.json"},
    "original": {"train": "instances_train.json", "test": "instances_val.json"},
}
IMAGE_DIRS = {"train": "training/image_2", "test": "testing/image_2"}


class Kins(ManualFolderBuilder):
    """KINS as OOSIS examples (``data/features.py``); classes as ``data.kins.CATEGORY_TO_CLASS``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Both KINS annotation formats; edges between touching instances only."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="update2020", description="KINS 2020 update: order from oco_id/ico_id."),
        tfds.core.BuilderConfig(name="original", description="KINS original: order from visible/amodal masks."),
    ]
    CATEGORY_TO_CLASS = kins.CATEGORY_TO_CLASS
    IMAGE_ENCODING = "png"
    DESCRIPTION = "KINS: KITTI instance masks with occlusion order (Qi et al., CVPR 2019)."
    HOMEPAGE = "https://github.com/qqlu/Amodal-Instance-Segmentation-through-KINS-Dataset"
    LAYOUT = (
        "  update_train_2020.json, update_test_2020.json   (config update2020, the default)\n"
        "  instances_train.json, instances_val.json         (config original)\n"
        "  training/image_2/*.png                           (KITTI object training images)\n"
        "  testing/image_2/*.png                            (KITTI object testing images)"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put into manual_dir:\n" + LAYOUT

    def split_files(self) -> dict[str, dict[str, str]]:
        names = ANNOTATION_FILES[self.builder_config.name]
        return {split: {"annotations": names[split], "images": IMAGE_DIRS[split]} for split in names}

    def read(self, paths, skipped):
        return kins.examples(paths["annotations"], paths["images"], skipped=skipped)
