"""Orbax checkpoints of a training run plus its ``config.json``: periodic saves, keep N, resume from latest.

The data position needs no separate record: the input stream is indexed by step
(``input_pipeline.train_dataset``), so restoring ``state.step`` restores it.
"""

from __future__ import annotations

import json
import os

import jax
import orbax.checkpoint as ocp

from oosis_jax.training.configs import TrainConfig

CONFIG_FILE = "config.json"


def manager(workdir: str, every: int = 1, keep: int = 3) -> ocp.CheckpointManager:
    """``CheckpointManager`` on ``workdir/checkpoints`` saving every ``every`` steps, keeping ``keep``."""
    options = ocp.CheckpointManagerOptions(save_interval_steps=every, max_to_keep=keep, create=True)
    return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"), options=options)


def save(mngr: ocp.CheckpointManager, step: int, state, force: bool = False) -> bool:
    """Save ``state`` at ``step`` when the interval says so (or ``force``); returns whether it saved."""
    return mngr.save(step, args=ocp.args.StandardSave(state), force=force)


def restore_latest(mngr: ocp.CheckpointManager, template):
    """The latest saved state laid out like ``template`` (same tree, shapes, shardings), or None."""
    step = mngr.latest_step()
    if step is None:
        return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    return mngr.restore(step, args=ocp.args.StandardRestore(abstract))


def latest_step(workdir: str) -> int:
    """The step of the latest checkpoint in ``workdir`` (orbax's own bookkeeping); ``FileNotFoundError`` if none."""
    folder = os.path.join(os.path.abspath(workdir), "checkpoints")
    step = ocp.CheckpointManager(folder).latest_step() if os.path.isdir(folder) else None
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {folder}")
    return step


def write_config(workdir: str, config: TrainConfig) -> None:
    """Write ``config.json``; if the run already has one, it must describe the same run (resuming)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if os.path.exists(path):
        saved = read_config(workdir)
        if saved != config:
            raise ValueError(f"{path} holds a different configuration than this run; use a fresh workdir")
        return
    os.makedirs(workdir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(config.to_dict(), f, indent=2)


def read_config(workdir: str) -> TrainConfig:
    """The ``TrainConfig`` a run in ``workdir`` was started with."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {workdir!r} is not a training work directory")
    try:
        with open(path) as f:
            return TrainConfig.from_dict(json.load(f))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a valid training configuration: {err}") from err
