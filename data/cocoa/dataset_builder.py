"""tfds builder of COCOA from the user's folder (``manual_dir``); see ``data.annotations_tfds``.

Configs: ``classes`` (default): classes from ``COCO_amodal_{train,val}2014_with_classes.json``, order from the
regions files ``COCO_amodal_{train,val}2014.json`` joined by image id and mask IoU (``data.cocoa.reader``);
``classes_mask_order``: the classed files alone, order derived from the masks. Splits ``train`` (COCO
``train2014/``) and ``validation`` (``val2014/``): the classed variant has no test file.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

import data.cocoa as cocoa
from data.annotations_tfds import ManualFolderBuilder

SPLITS = {"train": "train2014", "validation": "val2014"}


class Cocoa(ManualFolderBuilder):
    """COCOA as OOSIS examples (``data/features.py``); classes as ``data.cocoa.CATEGORY_TO_CLASS``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "COCOA-cls with the regions' order; stuff regions are background."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="classes", description="COCOA-cls classes, order from the regions files."),
        tfds.core.BuilderConfig(name="classes_mask_order", description="COCOA-cls classes, order from masks."),
    ]
    CATEGORY_TO_CLASS = cocoa.CATEGORY_TO_CLASS
    IMAGE_ENCODING = "jpeg"
    DESCRIPTION = "COCOA: COCO 2014 images with amodal masks and occlusion order (Zhu et al., CVPR 2017)."
    HOMEPAGE = "https://github.com/Wakeupbuddy/amodalAPI"
    LAYOUT = (
        "  COCO_amodal_train2014_with_classes.json, COCO_amodal_val2014_with_classes.json\n"
        "  COCO_amodal_train2014.json, COCO_amodal_val2014.json   (config classes, the default)\n"
        "  train2014/*.jpg, val2014/*.jpg                          (COCO 2014 images)"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put into manual_dir:\n" + LAYOUT

    def split_files(self) -> dict[str, dict[str, str]]:
        files = {}
        for split, name in SPLITS.items():
            files[split] = {"annotations": f"COCO_amodal_{name}_with_classes.json", "images": name}
            if self.builder_config.name == "classes":
                files[split]["regions"] = f"COCO_amodal_{name}.json"
        return files

    def read(self, paths, skipped):
        return cocoa.examples(paths["annotations"], paths["images"], regions_file=paths.get("regions"),
                              skipped=skipped)
