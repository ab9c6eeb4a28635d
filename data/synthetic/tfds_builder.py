"""tensorflow-datasets builder of the synthetic occlusion scenes (array_record files, no TensorFlow).

Every split is generated from ``make_scene`` with a seed derived from (config seed, split, index):
``seed = ((config.seed + 1) << 32) + 3 * index + split_code`` with split codes train 0, validation 1, test 2,
so two splits never share a scene, no scene is one rendered on the fly (``data.registry.SYNTHETIC_SEEDS``, all
below 2**32), and an example is reproducible from its ``image_id`` (= its seed) alone.
Image sizes are drawn per example from the configured ranges with an independent stream of the same seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from data import features
from data.synthetic.scene import make_scene
from data.tfds_quiet import silence

silence()  # tfds' two notes on our own choices

SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}
MAX_SEED = 2**30
MAX_PIXELS = 4096 * 4096  # per synthetic image: far beyond KINS (375x1242) and COCOA (about 480x640)


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    """Split sizes, image size ranges (inclusive, pixels) and the base seed of one synthetic dataset."""

    num_train: int = 2000
    num_validation: int = 200
    num_test: int = 200
    min_height: int = 224
    max_height: int = 288
    min_width: int = 448
    max_width: int = 576
    seed: int = 0

    def __post_init__(self):
        for field in ("num_train", "num_validation", "num_test", "min_height", "max_height", "min_width",
                      "max_width", "seed"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < MAX_SEED:
                raise ValueError(f"synthetic config {field} must be an int in [0, 2**30), got {value!r}")
        if not 8 <= self.min_height <= self.max_height or not 8 <= self.min_width <= self.max_width:
            raise ValueError(f"synthetic image size ranges must satisfy 8 <= min <= max, got height "
                             f"{self.min_height}..{self.max_height}, width {self.min_width}..{self.max_width}")
        if self.max_height * self.max_width > MAX_PIXELS:  # a 100000x100000 scene failed allocating 112 GiB
            raise ValueError(f"synthetic images of at most {MAX_PIXELS:,} pixels, got {self.max_height}x"
                             f"{self.max_width} (max_height x max_width)")
        if self.num_train + self.num_validation + self.num_test == 0:
            raise ValueError("synthetic config has no examples in any split")

    def split_sizes(self) -> dict[str, int]:
        sizes = {"train": self.num_train, "validation": self.num_validation, "test": self.num_test}
        return {split: n for split, n in sizes.items() if n > 0}


def scene_seed(config: SyntheticConfig, split: str, index: int) -> int:
    """The ``make_scene`` seed (also the ``image_id``) of example ``index`` of ``split``: 2**32 or more, so no
    build's scene is one rendered on the fly for training or evaluation (``data.registry.SYNTHETIC_SEEDS``: a
    seed gives the same layout at every size; before version 1.1.0 a build's seeds started at 0)."""
    return ((int(config.seed) + 1) << 32) + 3 * int(index) + SPLIT_CODES[split]


def scene_size(config: SyntheticConfig, seed: int) -> tuple[int, int]:
    """(height, width) of the scene with this seed, uniform in the configured ranges."""
    rng = np.random.default_rng([seed, 1])  # independent of the scene's own default_rng(seed) stream
    return (int(rng.integers(config.min_height, config.max_height + 1)),
            int(rng.integers(config.min_width, config.max_width + 1)))


def config_name(config_kwargs: dict) -> str:
    """A readable, unique name for a configuration (its data directory)."""
    c = SyntheticConfig(name="probe", **config_kwargs)
    return (f"n{c.num_train}-{c.num_validation}-{c.num_test}_h{c.min_height}-{c.max_height}"
            f"_w{c.min_width}-{c.max_width}_s{c.seed}")


class OosisSynthetic(tfds.core.GeneratorBasedBuilder):
    """Synthetic occlusion scenes with visible instance masks, classes, depths and occlusion edges."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "First release.",
                     "1.1.0": "Seeds from 2**32 up: apart from the scenes rendered on the fly for training."}
    BUILDER_CONFIGS = [SyntheticConfig(name=config_name({}))]

    def _info(self) -> tfds.core.DatasetInfo:
        # Keep generation order: example i of a split is scene_seed(config, split, i) (readers shuffle).
        return self.dataset_info_from_configs(features=features.features(), supervised_keys=None,
                                              disable_shuffling=True)

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: self._generate_examples(split, n) for split, n in self.builder_config.split_sizes().items()}

    def _generate_examples(self, split: str, num: int):
        for index in range(num):
            seed = scene_seed(self.builder_config, split, index)
            height, width = scene_size(self.builder_config, seed)
            yield index, features.encode_example({"image_id": seed, **make_scene(seed, height, width)})


def builder(data_dir: str, /, **config) -> OosisSynthetic:
    """The builder of the synthetic dataset in ``data_dir``; ``config`` overrides ``SyntheticConfig`` fields
    (e.g. ``num_train=100, min_height=64``). Unknown keys raise ``ValueError``."""
    fields = {f.name for f in dataclasses.fields(SyntheticConfig)} - {f.name for f in dataclasses.fields(
        tfds.core.BuilderConfig)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ValueError(f"unknown synthetic config keys {unknown}; choose from {sorted(fields)}")
    name = config_name(config)
    if name == OosisSynthetic.BUILDER_CONFIGS[0].name:  # the defaults: tfds refuses a new config of that name
        return OosisSynthetic(data_dir=str(data_dir), config=name, file_format="array_record")
    cfg = SyntheticConfig(name=name, description="synthetic occlusion scenes", **config)
    return OosisSynthetic(data_dir=str(data_dir), config=cfg, file_format="array_record")
