"""Orbax checkpoints of a training run plus its ``config.json``: periodic saves, keep N, resume from latest.

The data position needs no separate record: the input stream is indexed by step
(``input_pipeline.train_dataset``), so restoring ``state.step`` restores it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import warnings

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from oosis_jax.training.configs import TrainConfig

CONFIG_FILE = "config.json"
# Fields that only say how a run is watched and fed, not what it trains: they may change when a run resumes
# (``data_dir`` from one folder to another: the same build moved).
BOOKKEEPING = ("checkpoint_every", "keep_checkpoints", "log_every", "eval_every", "eval_examples", "eval_batch_size",
               "loader_threads", "loader_processes", "data_dir")


def check_writable(workdir: str) -> None:
    """``NotADirectoryError`` / ``PermissionError`` when ``workdir`` or ``workdir/checkpoints`` exists but is not
    a folder this process may write to: checked before training, since orbax's save then fails only at the first
    checkpoint and leaves its background threads waiting, so that the process never exits (and a ``workdir``
    that is a file failed only after the dataset was opened, as a bare ``FileExistsError``)."""
    workdir = os.path.abspath(workdir)
    for folder, role in ((workdir, "the run's work directory"), (os.path.join(workdir, "checkpoints"),
                                                                 "the run's checkpoints are written there")):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise NotADirectoryError(f"{folder} is not a folder: {role}")
        if os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write to {folder}: {role}")


def manager(workdir: str, every: int = 1, keep: int = 3) -> ocp.CheckpointManager:
    """``CheckpointManager`` on ``workdir/checkpoints`` saving every ``every`` steps, keeping ``keep``. Each save
    makes its step's folder before it returns (the arrays are still written in the background): made in orbax's
    background thread, a folder that could not be made (a full disk, a folder made read-only mid-run) failed only
    at a later save, and the process then waited on orbax's other threads for minutes before it could exit."""
    options = ocp.CheckpointManagerOptions(save_interval_steps=every, max_to_keep=keep, create=True,
                                           async_options=ocp.AsyncOptions(create_directories_asynchronously=False))
    return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"), options=options)


def save(mngr: ocp.CheckpointManager, step: int, state, force: bool = False) -> bool:
    """Save ``state`` at ``step`` when the interval says so (or ``force``); returns whether it saved."""
    return mngr.save(step, args=ocp.args.StandardSave(state), force=force)


class CheckpointError(RuntimeError):
    """Every checkpoint of a run is damaged (one line naming the steps; nothing is started from scratch)."""


class _Damaged(ValueError):
    """A step found damaged by our own checks (said as it is, without an exception's type)."""


def _reason(err: Exception) -> str:
    """The first line of an exception, at most 160 characters (orbax/TensorStore messages run to pages)."""
    if isinstance(err, _Damaged):
        return str(err)
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first[:160]}{'...' if len(first) > 160 else ''}"


# orbax's words for saved arrays that do not fit the template: another shape, or another tree of arrays
_OTHER_CONFIG = ("is not compatible with the stored shape", "tree structures do not match")


def _from_tensorstore(text: str) -> bool:
    """Whether an error's text comes from a TensorStore read. Case-insensitive: a read that fails while opening
    its array names only ``tensorstore_spec``, and whether that or a later failure comes first varies with load."""
    return "tensorstore" in text.lower()


class _AfterDamagedRead(logging.Filter):
    """Drops the asyncio log records of TensorStore reads that a damaged checkpoint left failing ("Task exception
    was never retrieved", pages of TensorStore specs each): the one-line warning of `restore_latest` says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = f"{record.getMessage()} {record.exc_info[1] if record.exc_info else ''}"
        return not ("never retrieved" in text and _from_tensorstore(text))


def _quiet_damaged_reads():
    """Silence what the failed reads of a damaged step print, then and later, from TensorStore's threads: their
    asyncio log records, the "Event loop is closed" errors of their callbacks and the TensorStore errors of their
    abandoned coroutines (``sys.unraisablehook``, which prints every other unraisable error as before). Returns
    the function that takes it back (nothing to take back when it was installed already)."""
    if getattr(sys.unraisablehook, "_oosis_quiet", False):
        return lambda: None
    asyncio_log, log_filter, previous = logging.getLogger("asyncio"), _AfterDamagedRead(), sys.unraisablehook
    asyncio_log.addFilter(log_filter)

    def hook(unraisable):
        error = unraisable.exc_value
        closed_loop = isinstance(error, RuntimeError) and str(error) == "Event loop is closed"
        if not (closed_loop or _from_tensorstore(str(error))):
            previous(unraisable)

    def undo():
        asyncio_log.removeFilter(log_filter)
        sys.unraisablehook = previous

    hook._oosis_quiet = True
    sys.unraisablehook = hook
    return undo


READ_ONLY_WARNING = "Given directory is read only=%s"  # orbax's absl warning for every read-only manager


class _ReadOnlyOnPurpose(logging.Filter):
    """Drops orbax's absl warning ``READ_ONLY_WARNING`` for ``directory``, which `_restore_step` opens read-only on
    purpose (reads never write): the warning reads like a file-system problem. Every other record passes, that
    warning for another folder included."""

    def __init__(self, directory):
        super().__init__()
        self.directory = str(directory)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (record.msg == READ_ONLY_WARNING and len(args) == 1 and str(args[0]) == self.directory)


@contextlib.contextmanager
def _quiet_read_only(directory):
    """`_ReadOnlyOnPurpose` on the ``absl`` logger for the duration of the ``with`` block only."""
    absl_log, log_filter = logging.getLogger("absl"), _ReadOnlyOnPurpose(directory)
    absl_log.addFilter(log_filter)
    try:
        yield
    finally:
        absl_log.removeFilter(log_filter)


def _restore_step(directory, step: int, abstract):
    """One step through its own read-only manager: after a failed restore (e.g. of an empty step folder) an
    orbax manager can no longer restore any step, so each attempt gets a fresh one (without orbax's warning that
    the folder is read only: `_quiet_read_only`)."""
    options = ocp.CheckpointManagerOptions(read_only=True, create=False, save_interval_steps=0, max_to_keep=None)
    with _quiet_read_only(directory):
        reader = ocp.CheckpointManager(directory, options=options)
    try:
        return reader.restore(step, args=ocp.args.StandardRestore(abstract))
    finally:
        reader.close()


def restore_latest(mngr: ocp.CheckpointManager, template, set_aside_damaged: bool = False):
    """The newest intact saved state laid out like ``template`` (same tree, shapes, shardings), or None when
    there is no checkpoint.

    A step that cannot be restored (a truncated data file, an empty step folder left by a kill, inf or NaN among
    its numbers) is skipped
    with a one-line ``RuntimeWarning`` naming it, and the next older step is tried; if every step is damaged,
    ``CheckpointError`` names them (never a silent fresh start). A step whose arrays do not fit ``template``
    (their shapes or tree: a config.json edited after the saves) is not called damaged and never set aside; if
    no step fits, ``CheckpointError`` says that the configuration differs and how. ``set_aside_damaged``
    (resuming a run, which will save those steps again) moves the damaged step folders into ``damaged/`` next
    to ``checkpoints/``.

    With several JAX processes (one run over hosts, on a file system they share) every process must call it:
    they must restore the same step (else ``CheckpointError``, on every process: e.g. a step damaged on one
    host's copy only), process 0 alone moves the damaged folders, and every process's ``mngr`` then forgets
    them (it would refuse to save those steps again).
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    damaged, other_config, state, restored = [], [], None, -1
    # kept for the rest of the process once a step is damaged (its reads print later), else taken back at once
    undo_quiet = _quiet_damaged_reads()
    try:
        for step in sorted(mngr.all_steps(), reverse=True):
            try:
                if not os.listdir(os.path.join(str(mngr.directory), str(step))):
                    raise _Damaged("an empty folder: a save that did not finish")
                state = _restore_step(mngr.directory, step, abstract)
                if not all_finite(state):
                    raise _Damaged("inf or NaN among its numbers: a damaged file (training saves none)")
            except Exception as err:  # noqa: BLE001 - orbax raises many types for damaged files
                if any(words in str(err) for words in _OTHER_CONFIG):
                    reason = _reason(err).split(" Truncating/padding")[0]  # not orbax's advice to pad them
                    other_config.append((step, reason))
                    warnings.warn(f"checkpoint step {step} in {mngr.directory} does not fit this configuration "
                                  f"({reason}); trying the next older step", RuntimeWarning, stacklevel=2)
                    continue
                damaged.append(step)
                warnings.warn(f"checkpoint step {step} in {mngr.directory} is damaged ({_reason(err)}); "
                              "trying the next older step", RuntimeWarning, stacklevel=2)
                continue
            restored = step
            break
        if jax.process_count() > 1:
            steps = np.asarray(multihost_utils.process_allgather(np.int32(restored))).ravel()
            if len(set(steps.tolist())) > 1:
                raise CheckpointError(f"the processes of this run would resume from different steps of "
                                      f"{mngr.directory} (steps by process: {', '.join(map(str, steps))}; -1: none): "
                                      "is it one folder that every host shares?")
        if restored >= 0:
            if damaged and set_aside_damaged:
                if jax.process_index() == 0:
                    _set_aside(str(mngr.directory), damaged)
                if jax.process_count() > 1:  # the others wait until the folders are moved, then forget them
                    multihost_utils.sync_global_devices("oosis: damaged checkpoint steps set aside")
                mngr.reload()
            return state
        if other_config:
            steps = ", ".join(str(step) for step, _ in other_config)
            also = f"; steps {', '.join(map(str, damaged))} are damaged" if damaged else ""
            raise CheckpointError(f"the checkpoints in {mngr.directory} (steps {steps}) were saved with another "
                                  f"model configuration than the run's config.json or the config given "
                                  f"({other_config[0][1]}){also}; the files themselves read")
        if damaged:
            raise CheckpointError(f"every checkpoint in {mngr.directory} is damaged (steps "
                                  f"{', '.join(map(str, damaged))}); see the warnings above")
        return None
    finally:
        if not (damaged or other_config):
            undo_quiet()


def all_finite(state) -> bool:
    """Whether every float number of ``state`` (a tree of replicated arrays: one replica of each is read) is
    finite: a state restored, or about to be saved (`oosis_jax.training.loop`)."""
    for leaf in jax.tree.leaves(state):
        values = leaf.addressable_data(0) if isinstance(leaf, jax.Array) else leaf
        if np.issubdtype(np.asarray(values).dtype, np.inexact) and not np.isfinite(np.asarray(values)).all():
            return False
    return True


def _set_aside(directory: str, steps) -> None:
    """Moves the step folders ``steps`` of ``directory`` into ``damaged/`` next to it, as ``step_N`` (``step_N.2``,
    ... when an earlier resume set a damaged step N aside already)."""
    aside = os.path.join(os.path.dirname(directory), "damaged")
    os.makedirs(aside, exist_ok=True)
    for step in steps:
        target, again = os.path.join(aside, f"step_{step}"), 1
        while os.path.exists(target):
            again += 1
            target = os.path.join(aside, f"step_{step}.{again}")
        shutil.move(os.path.join(directory, str(step)), target)


def latest_step(workdir: str) -> int:
    """The step of the latest checkpoint in ``workdir`` (orbax's own bookkeeping); ``FileNotFoundError`` if none."""
    folder = os.path.join(os.path.abspath(workdir), "checkpoints")
    step = ocp.CheckpointManager(folder).latest_step() if os.path.isdir(folder) else None
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {folder}")
    return step


def write_config(workdir: str, config: TrainConfig, replace: bool = False, write: bool = True) -> None:
    """Write ``config.json``. If the run already has one with a checkpoint, it must describe the same run
    (resuming; ``ValueError`` listing the fields that differ) but for `BOOKKEEPING` fields, which are updated
    with a warning; without any checkpoint (a start that failed or
    was stopped before its first save) it is replaced, with a warning. Checkpoints without ``config.json``
    raise ``ValueError``. ``replace``: write it in any case (a caller that sets the length of a run it has just
    started: `experiments.common.fitted_to_budget`). ``write=False``: only the checks (the processes of a run but
    the one that writes; the file is replaced in one step, so a process reading it never sees half of it)."""
    path = os.path.join(workdir, CONFIG_FILE)
    saved_steps = has_checkpoint(workdir) and not replace
    if os.path.exists(path) and not replace:
        saved = read_config(workdir)
        if saved == config:
            return
        changes = config_differences(saved, config)
        kept = {name: getattr(config, name) for name in BOOKKEEPING  # a moved dataset, not synthetic <-> a build
                if name != "data_dir" or None not in (saved.data_dir, config.data_dir)}
        if saved_steps and saved.replace(**kept) != config:
            raise ValueError(f"{path} holds a different configuration than this run ({changes}); resume with the "
                             "same settings or use a fresh workdir")
        why = ("it only changes how the run is watched and fed" if saved_steps
               else "no checkpoint was saved under it")
        warnings.warn(f"{path}: updated, since {why} ({changes})", stacklevel=2)
    elif saved_steps:
        raise ValueError(f"{workdir} holds checkpoints but no {CONFIG_FILE}: the run they belong to is unknown; "
                         "use a fresh workdir")
    if not write:
        return
    os.makedirs(workdir, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(config.to_dict(), f, indent=2)
    os.replace(path + ".tmp", path)


def has_checkpoint(workdir: str) -> bool:
    """Whether ``workdir/checkpoints`` holds a finished step (a folder named by its step number)."""
    folder = os.path.join(workdir, "checkpoints")
    return os.path.isdir(folder) and any(name.isdigit() for name in os.listdir(folder))


def config_differences(saved: TrainConfig, new: TrainConfig) -> str:
    """``"field: saved -> new, ..."`` for every (dotted) field in which two configs differ."""
    def flat(values, prefix=""):
        out = {}
        for key, value in values.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    a, b = flat(saved.to_dict()), flat(new.to_dict())
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))


def read_config(workdir: str) -> TrainConfig:
    """The ``TrainConfig`` a run in ``workdir`` was started with."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {workdir!r} is not a training work directory")
    try:
        with open(path) as f:
            return TrainConfig.from_dict(json.load(f))
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not a valid training configuration: {err}") from err
