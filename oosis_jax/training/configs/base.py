"""The training configuration dataclass; the named presets live in sibling modules (configs as code)."""

from __future__ import annotations

import dataclasses

from data.registry import DATASETS, check_synthetic_count, info
from oosis_jax.training.input_pipeline import AugmentConfig
from oosis_jax.training.losses import LossConfig
from oosis_jax.models import ModelConfig
from oosis_jax.models.config import check_fields, check_types, from_fields

OPTIMIZERS = ("sgd", "adam")
MAX_STEPS = 2**31 - 1  # the training step and the schedule's length are int32 in the compiled step


def num_classes(dataset: str) -> int:
    """Foreground classes of a dataset of the registry (``data.registry``)."""
    return info(dataset).num_classes


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on (saved as ``config.json`` in the work directory).

    Data: ``dataset`` of the registry, read from ``data_dir`` with ``data.loading.load`` (builder config
    ``dataset_config``, ``(key, value)`` pairs, e.g. ``(("num_train", 256),)`` for a synthetic build;
    training on the registry's train split, validating on ``eval_split``, else the registry's validation
    split); ``data_dir=None`` is allowed for ``synthetic`` only and renders ``synthetic_scenes`` train /
    ``synthetic_val_scenes`` validation scenes of ``synthetic_size`` on the fly (no tfds build needed; with
    ``data_dir`` these three are not used, and ``experiments.train`` refuses them set there).
    Schedule: ``num_steps`` if set, else ``ceil(num_epochs * len(train) / batch_size)``; ``batch_size`` is
    global (split over processes and devices). ``optimizer`` "sgd" (the paper's: SGD with ``momentum``)
    or "adam" (Adam, ``momentum`` is its beta1), both with L2 ``weight_decay`` and the poly learning rate
    ``base_lr * (1 - step / num_steps) ** lr_power``; layers outside the backbone learn
    ``new_layer_lr_mult`` times faster (the PSPNet reference implementation's 10x, which the paper trains
    with), except the two bilinear-
    initialised upsampling kernels, which learn ``upsample_lr_mult`` times faster when it is set
    (0 freezes them at bilinear interpolation).
    Bookkeeping: checkpoint every ``checkpoint_every`` steps keeping ``keep_checkpoints``; log every
    ``log_every`` steps; validate every ``eval_every`` steps on the first ``eval_examples`` examples, rounded up
    to whole batches of ``eval_batch_size`` (None: every validation example; each batch is split over the devices,
    padded to a multiple of their count: `oosis_jax.training.validation`). These `checkpointing.BOOKKEEPING`
    fields (and the loader's, a ``data_dir`` moved to another folder) may change when a run resumes; the
    others may not. A step that is validated is always saved first.
    Loader: ``loader_processes`` worker processes prepare the batches (same batches, same order: the stream is
    indexed by step), or with 0 ``loader_threads`` threads of the training process do. Augmentation and targets
    are numpy code holding the GIL, so threads add up to about one core (RESULTS.md: 103 images/s with 1 thread,
    101 with 2), too little for a GPU (an H200 trained at 49 images/s with a step that does 421 images/s). None
    (the default) chooses: 0 when JAX computes on the CPU (its cores are the step's), else one per usable core but
    one, at most 16 (`oosis_jax.training.loop.loader_processes`).
    """

    name: str
    dataset: str
    model: ModelConfig
    loss: LossConfig = LossConfig()
    augment: AugmentConfig = AugmentConfig()
    data_dir: str | None = None
    dataset_config: tuple[tuple[str, object], ...] = ()
    eval_split: str | None = None
    synthetic_scenes: int = 256
    synthetic_val_scenes: int = 16
    synthetic_size: tuple[int, int] = (120, 160)
    batch_size: int = 8
    num_epochs: float = 200.0
    num_steps: int | None = None
    optimizer: str = "sgd"
    base_lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_power: float = 0.9
    new_layer_lr_mult: float = 10.0
    upsample_lr_mult: float | None = None
    seed: int = 0
    pretrained: str | None = None
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    eval_every: int = 2000
    eval_examples: int | None = 200
    eval_batch_size: int = 1
    eval_resolution: tuple[int, int] | None = None
    loader_threads: int = 8
    loader_processes: int | None = None

    # fields added after configurations were first saved (`oosis_jax.models.config.check_fields`): a file without
    # them (a run or an exported model of before) takes the default, which only says how batches are loaded
    ADDED_LATER = ("loader_processes",)

    def __post_init__(self):
        check_types(self)
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.data_dir is None and self.dataset != "synthetic":
            raise ValueError(f"dataset {self.dataset!r} needs data_dir (its tfds build directory)")
        if self.data_dir is None and (self.dataset_config or self.eval_split is not None):
            raise ValueError("dataset_config and eval_split choose a tfds build and need data_dir; without it the "
                             "run renders synthetic_scenes / synthetic_val_scenes of synthetic_size on the fly")
        if any(not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], str)
               for pair in self.dataset_config):
            raise ValueError(f"dataset_config must be (key, value) pairs, got {self.dataset_config!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.upsample_lr_mult is not None and not self.upsample_lr_mult >= 0:
            raise ValueError(f"upsample_lr_mult must be >= 0 or None, got {self.upsample_lr_mult}")
        for name in ("base_lr", "weight_decay", "lr_power", "new_layer_lr_mult"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        if not 0 <= self.seed < 2**32 - 1:  # the data stream's seed (grain) and seed + 1 (dropout) must be uint32
            raise ValueError(f"seed must lie in [0, 2**32 - 2], got {self.seed}")
        if self.batch_size < 1 or (self.num_steps is not None and self.num_steps < 1):
            raise ValueError(f"batch_size and num_steps must be positive, got {self.batch_size}, {self.num_steps}")
        if self.num_steps is not None and self.num_steps > MAX_STEPS:  # the step counter is an int32 on device
            raise ValueError(f"num_steps must be at most {MAX_STEPS}, got {self.num_steps}")
        if min(self.checkpoint_every, self.keep_checkpoints, self.log_every, self.eval_every) < 1:
            raise ValueError("checkpoint_every, keep_checkpoints, log_every and eval_every must be >= 1")
        for name in ("synthetic_scenes", "synthetic_val_scenes", "eval_batch_size", "loader_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.loader_processes is not None and self.loader_processes < 0:
            raise ValueError(f"loader_processes must be >= 0 or None (chosen by the backend), "
                             f"got {self.loader_processes}")
        for name in ("synthetic_scenes", "synthetic_val_scenes"):
            check_synthetic_count(getattr(self, name), name)
        if self.eval_examples is not None and self.eval_examples < 1:
            raise ValueError(f"eval_examples must be >= 1 or None (every validation example), got {self.eval_examples}")
        if not self.num_epochs > 0:  # also with num_steps set: the loop reads the schedule from a copy without it
            raise ValueError(f"num_epochs must be > 0, got {self.num_epochs}")
        for name in ("synthetic_size", "eval_resolution"):
            size = getattr(self, name)
            if size is not None and (len(size) != 2 or min(size) < 8):
                raise ValueError(f"{name} must be (height, width) with both >= 8 pixels, got {size}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Inverse of ``to_dict`` (JSON lists become tuples again). Every field of this config and of its nested
        ones must be there, and nothing else (`oosis_jax.models.config.check_fields`: ``ValueError`` naming them)."""
        check_fields(cls, values)
        values = dict(values)
        values["model"] = ModelConfig.from_dict(values["model"])
        values["loss"] = from_fields(LossConfig, values["loss"])
        augment = from_fields(AugmentConfig, values["augment"])
        values["augment"] = dataclasses.replace(augment, crop_size=tuple(augment.crop_size),
                                                scale_range=tuple(augment.scale_range))
        values["dataset_config"] = tuple(tuple(pair) for pair in values["dataset_config"])
        for key in ("synthetic_size", "eval_resolution"):
            if values[key] is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes``; ``model.<field>`` style keys are not supported, pass a new ModelConfig."""
        return dataclasses.replace(self, **changes)
