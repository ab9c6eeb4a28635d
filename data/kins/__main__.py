"""Build KINS: ``python -m data.kins --manual-dir ~/datasets/kins --data-dir ~/tensorflow_datasets``."""

import data.kins
from data.annotations_tfds import build_main
from data.kins.dataset_builder import Kins

if __name__ == "__main__":
    build_main(data.kins, tuple(config.name for config in Kins.BUILDER_CONFIGS))
