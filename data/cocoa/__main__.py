"""Build COCOA: ``python -m data.cocoa --manual-dir ~/datasets/cocoa --data-dir ~/tensorflow_datasets``."""

import data.cocoa
from data.annotations_tfds import build_main
from data.cocoa.dataset_builder import Cocoa

if __name__ == "__main__":
    build_main(data.cocoa, tuple(config.name for config in Cocoa.BUILDER_CONFIGS))
