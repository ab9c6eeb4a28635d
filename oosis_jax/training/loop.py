"""Data-parallel training of the s/b/e network (Sec. 3.1, 5.3) with orbax checkpoints and JSON-lines logs.

One 1-D ``data`` mesh spans every device of every process; the state is replicated, each process feeds
its own slice of the global batch (``jax.make_array_from_process_local_data``) and XLA's SPMD partitioner
turns the jitted step into a data-parallel one (BatchNorm statistics are over the global batch); the validation
is split over the devices too (``validation``). Compute
runs in the model's dtype (float32 or bfloat16) while parameters and optimizer state stay float32. With several
processes (``experiments.train --distributed``) the workdir is one folder they share: process 0 writes the
config, the log and the damaged steps' moves; every process checks the config and restores the same step.

``train(config, workdir)`` resumes automatically from the latest checkpoint in ``workdir`` (model,
optimizer, step and therefore data position). ``restore_model(workdir)`` gives the trained model back,
``restore_run(workdir)`` the step it comes from too.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct
from jax.experimental import multihost_utils
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from crf.batch import usable_cores
from oosis_jax.training import checkpointing
from oosis_jax.training import input_pipeline
from oosis_jax.training import loader
from oosis_jax.training.global_batch import to_global
from oosis_jax.training import losses
from oosis_jax.training.metrics_log import MetricsLog, mean_metrics
from oosis_jax.training.preemption import Preempted, Preemption
from oosis_jax.training import validation
from oosis_jax.training.configs import TrainConfig
from data.registry import SYNTHETIC_SEEDS, info
from oosis_jax.models import PSPNet, fresh_state, load_pretrained, probabilities
from oosis_jax.models.fresh import RUN_ONCE_COMPILER_OPTIONS


class TrainState(struct.PyTreeNode):
    step: jax.Array
    params: nnx.State
    batch_stats: nnx.State
    opt_state: optax.OptState


def make_mesh() -> jax.sharding.Mesh:
    """1-D ``data`` mesh over every device of every process."""
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))


def loader_processes(config: TrainConfig) -> int:
    """The loader's worker processes: ``config.loader_processes``, or when None, 0 if JAX computes on the CPU (the
    step is the bottleneck there and the cores are its own), else one per usable core but one, at most 16
    (usable: this process's CPU affinity, so several processes of a run on one host share the cores only when
    each is bound to its own, as SLURM's ``--cpu-bind`` does; else set ``loader_processes``)."""
    if config.loader_processes is not None:
        return config.loader_processes
    return 0 if jax.default_backend() == "cpu" else min(max(usable_cores() - 1, 1), 16)


def num_train_steps(config: TrainConfig, num_examples: int) -> int:
    return config.num_steps or math.ceil(config.num_epochs * num_examples / config.batch_size)


def poly_schedule(config: TrainConfig, num_steps) -> Callable:
    """The paper's poly learning rate, ``base_lr * (1 - step / num_steps) ** lr_power`` (0 from ``num_steps``
    on), as ``optax.polynomial_schedule`` computes it; ``num_steps`` may be a traced int32 scalar."""
    def schedule(count):
        return config.base_lr * (1 - jnp.clip(count, 0, num_steps) / num_steps) ** config.lr_power

    return schedule


def make_optimizer(config: TrainConfig, num_steps) -> optax.GradientTransformation:
    """SGD + momentum (or Adam) + L2 weight decay with the poly schedule over ``num_steps`` (an int, or a
    traced int32 scalar inside a jitted step); parameters outside the backbone learn ``new_layer_lr_mult``
    times faster, the upsampling kernels ``upsample_lr_mult`` times (if set)."""
    schedule = poly_schedule(config, num_steps)

    def scaled(mult):
        lr = lambda step: mult * schedule(step)  # noqa: E731
        if config.optimizer == "adam":
            step = optax.adam(lr, b1=config.momentum)
        else:
            step = optax.sgd(lr, momentum=config.momentum)
        return optax.chain(optax.add_decayed_weights(config.weight_decay), step)

    upsample = config.upsample_lr_mult is not None  # else the upsampling kernels are "new" layers

    def label(path, _):
        if path[0].key == "backbone":
            return "backbone"
        return "upsample" if upsample and path[0].key.endswith("_upsample") else "new"

    groups = {"backbone": scaled(1.0), "new": scaled(config.new_layer_lr_mult)}
    if upsample:
        mult = config.upsample_lr_mult
        groups["upsample"] = optax.set_to_zero() if mult == 0 else scaled(mult)
    return optax.multi_transform(groups, lambda params: jax.tree_util.tree_map_with_path(label, params))


def init_model(config: TrainConfig, abstract: bool = False):
    """``(graphdef, params, batch_stats, rng_state)`` of a fresh model (``config.pretrained`` loaded): the
    values of ``PSPNet(config.model, rngs=nnx.Rngs(config.seed))``, built by one jitted program
    (`oosis_jax.models.fresh_state`). ``abstract``: params and batch_stats as ``jax.ShapeDtypeStruct`` (a
    template to restore into; nothing drawn, nothing loaded), rng_state concrete."""
    graphdef, params, batch_stats, rng_state = fresh_state(config.model, config.seed, abstract)
    if abstract or not config.pretrained:
        return graphdef, params, batch_stats, rng_state
    model = nnx.merge(graphdef, params, batch_stats, rng_state)
    load_pretrained(model, os.path.expanduser(config.pretrained))
    return nnx.split(model, nnx.Param, nnx.BatchStat, ...)


def fresh_train_state(config: TrainConfig, num_steps: int) -> TrainState:
    """A new run's `TrainState` at step 0: `init_model`'s network and the state of ``make_optimizer(config,
    num_steps)``, whose initialisation is one jitted program rather than one per parameter shape."""
    _, params, batch_stats, _ = init_model(config)
    opt_init = jax.jit(make_optimizer(config, num_steps).init, compiler_options=RUN_ONCE_COMPILER_OPTIONS)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                      opt_state=opt_init(params))


def state_template(config: TrainConfig, sharding: jax.sharding.Sharding) -> TrainState:
    """The `TrainState` of ``config`` as ``jax.ShapeDtypeStruct`` leaves on ``sharding``: what a checkpoint is
    restored into, with nothing drawn or loaded (`init_model(abstract=True)`; the optimizer state's tree does
    not depend on the schedule's length)."""
    _, params, batch_stats, _ = init_model(config, abstract=True)
    state = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=params, batch_stats=batch_stats,
                       opt_state=jax.eval_shape(make_optimizer(config, 1).init, params))
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)


def make_train_step(graphdef, rng_state, config: TrainConfig) -> Callable:
    """Jitted ``train_step(state, batch, num_steps) -> (state, metrics)`` with the optimizer
    ``make_optimizer(config, num_steps)``; metrics map each loss term (and ``loss``) to a float32 ``(sum,
    count)`` pair so they can be averaged over any number of steps. ``num_steps``, the length of the poly
    schedule, is an int32 argument of the program rather than a constant in it, so one compilation serves every
    run length (a run fitted to a time budget after its timed steps, tests of different lengths): on a slow
    2-core host the demo's step compiles in about 25 s. `jitted_steps` binds it. The ``state`` passed in is
    donated (its buffers become the new state's), so it cannot be used again: keep the returned one."""
    dropout_key = jax.random.key(config.seed + 1)

    def train_step(state: TrainState, batch: dict, num_steps: jax.Array):
        tx = make_optimizer(config, num_steps)

        def loss_fn(params, batch_stats, rngs):
            # The model mutates its batch statistics and dropout stream: rebuild those Variables (a tree
            # round trip) inside the differentiated trace, where NNX allows the mutation.
            batch_stats, rngs = jax.tree.map(lambda x: x, (batch_stats, rngs))
            model = nnx.merge(graphdef, params, batch_stats, rngs)
            nnx.reseed(model, dropout=jax.random.fold_in(dropout_key, state.step))
            terms = losses.loss_terms(model(batch["image"], train=True), batch, config.loss)
            return losses.total_loss(terms, config.loss), (terms, nnx.state(model, nnx.BatchStat))

        (loss, (terms, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, rng_state)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                                  batch_stats=batch_stats, opt_state=opt_state)
        metrics = {name: jnp.stack(term).astype(jnp.float32) for name, term in terms.items()}
        metrics["loss"] = jnp.stack([loss, jnp.ones_like(loss)])
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0)


def make_eval_step(graphdef, rng_state, config: TrainConfig) -> Callable:
    """Jitted ``eval_step(state, batch) -> (metrics, b, e)`` with ``b (B, H, W)``, ``e (B, H, W, 4)``."""

    def eval_step(state: TrainState, batch: dict):
        model = nnx.merge(graphdef, state.params, state.batch_stats, rng_state)
        outputs = model(batch["image"], train=False)
        terms = losses.loss_terms(outputs, batch, config.loss)
        probs = probabilities(outputs)
        return {name: jnp.stack(term) for name, term in terms.items()}, probs["b"], probs["e"]

    return jax.jit(eval_step)


@functools.lru_cache(maxsize=4)
def _steps_of(config: TrainConfig) -> tuple[Callable, Callable]:
    graphdef, _, _, rng_state = init_model(config, abstract=True)
    return make_train_step(graphdef, rng_state, config), make_eval_step(graphdef, rng_state, config)


def jitted_steps(config: TrainConfig, num_steps: int) -> tuple[Callable, Callable]:
    """``(train_step(state, batch), eval_step(state, batch))`` of a configuration and schedule length, built
    once per process for all lengths and for configs that differ only in when they checkpoint or evaluate."""
    train_step, eval_step = _steps_of(config.replace(num_steps=None, checkpoint_every=1, eval_every=1))
    return functools.partial(train_step, num_steps=np.int32(num_steps)), eval_step


def step_keys(config: TrainConfig) -> tuple[str, ...]:
    """The batch entries the train and eval steps read: the image and what the loss needs."""
    return ("image",) + losses.batch_keys(config.loss)


def open_sources(config: TrainConfig):
    """(train, validation) random-access sources of decoded examples."""
    if config.data_dir is None:
        return (input_pipeline.SyntheticScenes(config.synthetic_scenes, config.synthetic_size,
                                               SYNTHETIC_SEEDS["train"]),
                input_pipeline.SyntheticScenes(config.synthetic_val_scenes, config.synthetic_size,
                                               SYNTHETIC_SEEDS["validation"]))
    from data import loading

    dataset = info(config.dataset)
    data_dir = os.path.expanduser(config.data_dir)
    builder_config = dict(config.dataset_config)
    eval_split = config.eval_split or dataset.validation_split
    return (loading.load(config.dataset, dataset.train_split, data_dir, **builder_config),
            loading.load(config.dataset, eval_split, data_dir, **builder_config))


def _check_finite(loss, step: int, workdir: str) -> None:
    if not math.isfinite(float(loss)):
        raise FloatingPointError(f"{workdir}: the training loss is {float(loss)} by step {step} (metrics.jsonl); the "
                                 "run stops here and keeps its checkpoints from before")


def _check_weights(state: TrainState, step: int, workdir: str) -> None:
    """A state whose weights or batch statistics hold inf or NaN is never saved (the loss is computed before the
    update that can overflow them)."""
    if not checkpointing.all_finite((state.params, state.batch_stats)):
        raise FloatingPointError(f"{workdir}: the weights hold inf or NaN after step {step}; the run stops here and "
                                 "keeps its checkpoints from before (a smaller base_lr?)")


# What `train` raises when a run cannot start or go on for a reason of the user's (another config in the workdir,
# damaged checkpoints, a batch the devices cannot share, a diverged loss, a missing or unwritable file or folder):
# the command lines say it in one line (exit status 2), not as a traceback.
USER_ERRORS = (ValueError, checkpointing.CheckpointError, FloatingPointError, FileExistsError, FileNotFoundError,
               NotADirectoryError, PermissionError)


def train(config: TrainConfig, workdir: str, on_step: Callable[[int], None] | None = None,
          sources: tuple | None = None) -> TrainState:
    """Train (or resume) the run in ``workdir``; returns the final state. ``on_step(step)`` is called after
    each step (and its checkpoint) has been taken, e.g. for progress hooks. ``sources``: (train,
    validation) random-access sources of decoded examples (``data/features.py`` schema) to use instead of
    ``open_sources(config)``, e.g. examples with changed targets (``experiments/direct_training.py``); with
    loader worker processes (`loader_processes`, the default on a GPU or TPU) they are pickled to them, and a
    script calling `train` must do so under ``if __name__ == "__main__":`` (`loader.iterate`). A
    preemption notice (SIGTERM) saves the step under way and raises `Preempted` (``preemption``). The run's
    mesh is set only while it trains: the caller's (or none) holds again afterwards, so a prediction made next in
    the same process is not computed whole on every device."""
    workdir = os.path.abspath(workdir)
    mesh = make_mesh()
    with jax.set_mesh(mesh):
        return _train_on(mesh, config, workdir, on_step, sources)


def _train_on(mesh, config: TrainConfig, workdir: str, on_step, sources) -> TrainState:
    """`train`'s body, under ``mesh`` (set by `train`)."""
    if config.batch_size % jax.device_count() or config.batch_size % jax.process_count():
        raise ValueError(f"batch_size {config.batch_size} cannot be split evenly over {jax.device_count()} devices "
                         f"in {jax.process_count()} process(es): make it a multiple of the device count (on a CPU, "
                         "JAX_NUM_CPU_DEVICES sets it)")
    if sources is None and config.model.num_classes != info(config.dataset).num_classes:
        raise ValueError(f"model.num_classes is {config.model.num_classes} but dataset {config.dataset!r} has "
                         f"{info(config.dataset).num_classes} classes (background not counted)")
    checkpointing.check_writable(workdir)  # before any work (building a dataset can take minutes)
    train_source, val_source = sources if sources is not None else open_sources(config)
    num_steps = num_train_steps(config, len(train_source))
    # every process checks the run's config (so a refused resume is refused on each, not on process 0 alone,
    # which would leave the others waiting for it); process 0 writes it
    checkpointing.write_config(workdir, config, write=jax.process_index() == 0)
    replicated = NamedSharding(mesh, P())
    mngr = checkpointing.manager(workdir, config.checkpoint_every, config.keep_checkpoints)
    state = checkpointing.restore_latest(mngr, state_template(config, replicated), set_aside_damaged=True)
    if state is None:  # a new run: only now draw the network (seconds) that a resumed run would discard
        state = jax.device_put(fresh_train_state(config, num_steps), replicated)
    start = int(state.step)
    notice = Preemption()
    notice.listen(mngr, start)
    batches = None
    try:
        stream = input_pipeline.train_dataset(
            train_source, config.augment, batch_size=config.batch_size // jax.process_count(), seed=config.seed,
            process_index=jax.process_index(), process_count=jax.process_count(),
            num_classes=config.model.num_classes)
        eval_batches = validation.batches(config, val_source)
        eval_batches[0]  # a validation batch that cannot be formed fails now, not after the first training steps
        train_step, eval_step = jitted_steps(config, num_steps)
        keys = step_keys(config)
        log, sums, window = MetricsLog(workdir), {}, 0
        log.truncate_after(start)
        lost = bool(start and (start % config.eval_every == 0 or start == num_steps)
                    and not log.has_validation(start))
        if jax.process_count() > 1:  # the log is process 0's; the validation is a computation every process joins
            lost = bool(multihost_utils.broadcast_one_to_all(np.bool_(lost)))
        if lost:  # a validation a crash cut short: run it now
            log.write(start, validation.evaluate(eval_step, state, eval_batches, mesh, keys))
        schedule = poly_schedule(config, num_steps)
        batches = loader.iterate(stream, start, config.loader_threads, loader_processes(config))
        if 0 < start < num_steps and notice.reached(mngr, start):  # a notice while compiling or validating:
            raise Preempted(start, workdir)  # its step is saved already (a new run stops after its first step)
        bar = tqdm(range(start, num_steps), initial=start, total=num_steps, desc=config.name,
                   disable=jax.process_index() != 0)
        for step in bar:
            state, metrics = train_step(state, to_global(next(batches), mesh, keys=keys))
            sums = jax.tree.map(jnp.add, sums, metrics) if sums else metrics
            done, window = step + 1, window + 1
            if done % config.log_every == 0 or done == num_steps:
                means = mean_metrics(jax.device_get(sums))
                # a window cut short (a resume inside it, or the last steps) says over how many steps it averages
                short = {} if window == config.log_every else {"steps_averaged": window}
                log.write(done, {"lr": float(schedule(step)), **means, **short})
                window = 0
                bar.set_postfix(loss=f"{means['loss']:.4f}")
                sums = {}
                _check_finite(means["loss"], done, workdir)
            validating = done % config.eval_every == 0 or done == num_steps
            # asked at every step (with several processes, all must ask); a notice during the last step finishes
            # the run and is sent again once the save is written (`Preemption.close`)
            preempted = done < num_steps and notice.reached(mngr, done)
            if validating or preempted or mngr.should_save(done):  # no NaN state is saved (orbax saves step 1 too)
                if sums:
                    _check_finite(mean_metrics(jax.device_get(sums))["loss"], done, workdir)
                _check_weights(state, done, workdir)
            # saved before a validation that may fail (resuming then runs it), whatever the checkpoint interval
            checkpointing.save(mngr, done, state, force=validating or preempted)
            if preempted:  # its validation, if due, runs when the run resumes
                raise Preempted(done, workdir)
            if validating:
                log.write(done, validation.evaluate(eval_step, state, eval_batches, mesh, keys))
            if on_step is not None:
                on_step(done)
    finally:
        try:
            if batches is not None:
                batches.close()  # its worker processes, if any, end now
        finally:
            mngr.wait_until_finished()
            mngr.close()
            notice.close()  # only now: a second SIGTERM while the last save is written must not cut it
    return state


def restore_model(workdir: str) -> tuple[PSPNet, TrainConfig]:
    """The model of the newest intact checkpoint in ``workdir`` (eval mode: call it with ``train=False``) and the
    run's ``TrainConfig`` (``config.model`` is its ``ModelConfig``): `restore_run` without the step."""
    model, config, _ = restore_run(workdir)
    return model, config


def restore_run(workdir: str) -> tuple[PSPNet, TrainConfig, int]:
    """``(model, config, step)``: `restore_model`'s model and config and the step of the checkpoint they come
    from. Reads only: damaged steps are skipped with a warning (`checkpointing.restore_latest`), so ``step`` can
    be older than orbax's latest (`checkpointing.latest_step`); a workdir without checkpoints raises
    ``FileNotFoundError`` without creating anything."""
    config = checkpointing.read_config(workdir)
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):  # checked first: the manager would create it
        raise FileNotFoundError(f"no checkpoint in {os.path.join(workdir, 'checkpoints')}")
    graphdef, _, _, rng_state = init_model(config, abstract=True)
    mngr = checkpointing.manager(workdir, config.checkpoint_every, config.keep_checkpoints)
    try:
        # onto where a new array lives: replicated over the context mesh (`jax.set_mesh`, e.g. one a caller set,
        # whose jitted calls refuse arrays on one device) or else on the default device
        restored = checkpointing.restore_latest(mngr, state_template(config, jnp.zeros(()).sharding))
    finally:
        mngr.close()
    if restored is None:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(workdir, 'checkpoints')}")
    return nnx.merge(graphdef, restored.params, restored.batch_stats, rng_state), config, int(restored.step)
