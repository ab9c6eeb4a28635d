"""Train the joint s/b/e network (resumes automatically when the work directory has checkpoints).

    python -m experiments.train --config synthetic --workdir runs/synthetic
    python -m experiments.train --config kins --dataset kins --data-dir ~/tensorflow_datasets --workdir runs/kins
    python -m experiments.train --config smoke --workdir runs/smoke --set num_steps=20 --set base_lr=0.02

Several processes (hosts): start the same command on every host with ``--distributed``; each process then reads
only its share of every batch, and the workdir must be one folder that all of them share. Under SLURM, Open MPI,
Kubernetes or on Cloud TPU, ``jax.distributed.initialize`` finds the processes itself; elsewhere name them:

    python -m experiments.train ... --distributed --coordinator-address HOST0:1234 --num-processes 2 --process-id I

(``I`` = 0 on HOST0, 1 on the other host). A CPU process then has one JAX device unless ``JAX_NUM_CPU_DEVICES``
says more.

A preemption notice (SIGTERM, as SLURM, Kubernetes or a TPU's maintenance send before they stop a job) saves the
step under way and exits with status 143 (128 + SIGTERM); the same command resumes from that step.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings

from data.registry import DATASETS
from experiments import flags
from oosis_jax.training.configs import NAMES, TrainConfig, get_config, num_classes
from oosis_jax.training.metrics_log import METRICS_FILE


# the TrainConfig fields that matter only without data_dir (TrainConfig's docstring)
ON_THE_FLY = ("synthetic_scenes", "synthetic_val_scenes", "synthetic_size")


def parse_overrides(pairs: list[str], config: TrainConfig) -> dict:
    """``["num_steps=20", "loss.orientation_band=1"]`` -> ``{"num_steps": 20, "loss": config.loss with
    orientation_band=1}``: each value is checked against the type of its ``TrainConfig`` field, or, for
    ``NESTED.FIELD`` keys, of the field of the nested config (``model``, ``loss``, ``augment``) that ``config``
    holds (``flags.parse_key_values``). ``ValueError`` naming the pair for an unknown field, a value of the
    wrong type, NaN or infinity, or a whole nested config set as one value."""
    top, nested = [], {}
    for pair in pairs or ():
        head, dot, _ = pair.partition("=")[0].partition(".")
        if dot:
            nested.setdefault(head, []).append(pair[len(head) + 1:])
        else:
            top.append(pair)
    fields = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
    try:
        changes = flags.parse_key_values(top, fields)
        for head, sub_pairs in nested.items():
            inner = getattr(config, head, None) if head in fields else None
            if not dataclasses.is_dataclass(inner):
                raise ValueError(f"{head}.{sub_pairs[0]}: {head!r} is not a nested config of TrainConfig")
            sub_fields = {f.name: str(f.type) for f in dataclasses.fields(inner)}
            try:
                changes[head] = dataclasses.replace(inner, **flags.parse_key_values(sub_pairs, sub_fields))
            except (TypeError, ValueError) as err:
                raise ValueError(f"{head}.{err}") from err
    except ValueError as err:
        raise ValueError(f"--set {err}") from err
    return changes


def build_config(args: argparse.Namespace):
    config = get_config(args.config)
    changes = parse_overrides(args.set, config)
    if args.dataset and args.dataset != config.dataset:
        model = dataclasses.replace(changes.get("model", config.model), num_classes=num_classes(args.dataset))
        changes.update(dataset=args.dataset, model=model)
    if args.bf16:
        changes["model"] = dataclasses.replace(changes.get("model", config.model), dtype="bfloat16")
    if args.data_dir:
        changes["data_dir"] = args.data_dir
    if args.pretrained:
        changes["pretrained"] = args.pretrained
    config = config.replace(**changes) if changes else config
    from oosis_jax.training.checkpointing import has_checkpoint

    # read only by a new run: a resumed one starts from its checkpoint, even if the file has moved since
    if config.pretrained and not os.path.isfile(os.path.expanduser(config.pretrained)) and not has_checkpoint(
            args.workdir):
        given = "--pretrained " if args.pretrained else "--set pretrained="
        raise ValueError(f"{given}{config.pretrained}: no such file")
    on_the_fly = sorted(set(changes) & set(ON_THE_FLY))
    if config.data_dir is not None and on_the_fly:
        raise ValueError(f"--set {', '.join(on_the_fly)}: these size the scenes rendered on the fly, which a run "
                         f"with data_dir ({config.data_dir}) does not use; its tfds build's dataset_config does "
                         "(e.g. --set \"dataset_config=(('num_train', 1000),)\")")
    return config


def from_scratch_note(config: TrainConfig) -> str | None:
    """Why a run on a real dataset (KINS, COCOA) without ``pretrained`` is not the paper's training, or None.

    The paper fine-tunes PSPNet's ImageNet ResNet-50 (the PSPNet reference's backbone), and its 10x learning
    rate on the new layers assumes that backbone; no weights can be downloaded here, so the presets start from
    scratch unless ``--pretrained`` gives converted ones (``experiments/convert_torch_resnet.py``).
    """
    if config.pretrained or config.dataset == "synthetic":
        return None
    return (f"{config.name}: training the backbone from scratch (no --pretrained); the paper fine-tunes an "
            f"ImageNet ResNet-50 (new layers at {config.new_layer_lr_mult:g}x its learning rate): convert one with "
            "experiments/convert_torch_resnet.py and pass --pretrained FILE to train as the paper does")


def plot_metrics(metrics_file: str, output: str) -> None:
    """Training losses and validation boundary ODS/AP against the step, saved as a PNG."""
    import json
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_file) as f:
        records = [json.loads(line) for line in f if line.strip()]

    def series(key):  # an undefined value (null in the file) is a gap in the line
        return [(r["step"], math.nan if r[key] is None else r[key]) for r in records if key in r]

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "s", "b", "e", "o", "aux"):
        points = series(key)
        if points:
            left.plot(*zip(*points), label=key)
    left.set(xlabel="step", ylabel="training loss", yscale="log", title="Eq. (4) terms")
    for key in ("val_boundary_ods", "val_boundary_ap", "val_oriented_ods", "val_oriented_ap"):
        points = series(key)
        if points:
            right.plot(*zip(*points), marker="o", label=key.removeprefix("val_"))
    right.set(xlabel="step", ylabel="validation", ylim=(0, 1), title="boundaries")
    left.legend(), right.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="synthetic", choices=NAMES)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--dataset", choices=DATASETS, help="override the config's dataset")
    parser.add_argument("--data-dir", help="tfds data directory of the dataset")
    parser.add_argument("--pretrained", help="npz of backbone weights (experiments/convert_torch_resnet.py)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 compute (weights stay float32)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field; NESTED.FIELD for model, loss, augment "
                             "(e.g. loss.boundary_weight=0.7)")
    parser.add_argument("--distributed", action="store_true",
                        help="one of several processes of the run: call jax.distributed.initialize() first")
    parser.add_argument("--coordinator-address", metavar="HOST:PORT",
                        help="with --distributed: process 0's address (found by itself under SLURM, MPI, TPU, ...)")
    parser.add_argument("--num-processes", type=flags.positive_int, help="with --distributed: how many processes")
    parser.add_argument("--process-id", type=flags.non_negative_int, help="with --distributed: this process's number")
    args = parser.parse_args(argv)
    cluster = {"coordinator_address": args.coordinator_address, "num_processes": args.num_processes,
               "process_id": args.process_id}
    named = [f"--{key.replace('_', '-')}" for key, value in cluster.items() if value is not None]
    if named and not args.distributed:
        parser.error(f"{', '.join(named)} name the processes of a --distributed run: add --distributed")
    if args.process_id is not None and args.num_processes is not None and args.process_id >= args.num_processes:
        parser.error(f"--process-id {args.process_id} is not one of the {args.num_processes} processes (0 to "
                     f"{args.num_processes - 1})")
    import jax

    if args.distributed:
        try:
            jax.distributed.initialize(**cluster)
        except (ValueError, RuntimeError) as err:  # e.g. no cluster found and no --num-processes
            parser.exit(2, f"{parser.prog}: error: --distributed: {type(err).__name__}: {err}\n")
    from oosis_jax.devices import use_cpu_cores
    from oosis_jax.training import loop as train
    from oosis_jax.training import checkpointing
    from oosis_jax.training.preemption import Preempted

    try:
        config = build_config(args)
    except ValueError as err:  # a bad --set: one line and exit status 2, not a traceback
        parser.error(str(err))
    note = from_scratch_note(config)
    if note:
        warnings.warn(note, stacklevel=1)
    if not args.distributed:  # one JAX device per core of a CPU-only machine
        use_cpu_cores(config.batch_size)
    try:
        state = train.train(config, args.workdir)
    except train.USER_ERRORS as err:  # e.g. a missing pretrained file of a run whose only checkpoint was damaged
        parser.exit(2, f"{parser.prog}: error: {type(err).__name__}: {err}\n")
    except Preempted as err:  # saved; ends as the notice meant
        parser.exit(Preempted.EXIT_STATUS, f"{parser.prog}: {err}\n")
    except KeyboardInterrupt:  # Ctrl-C: the steps since the last checkpoint are lost, the rest resumes
        try:
            where = f"its newest checkpoint is step {checkpointing.latest_step(args.workdir)}"
        except FileNotFoundError:
            where = "no step was saved yet"
        parser.exit(130, f"\n{parser.prog}: interrupted; {where}: the same command resumes the run\n")
    if jax.process_index() == 0:
        metrics = os.path.join(args.workdir, METRICS_FILE)
        plot_metrics(metrics, os.path.join(args.workdir, "metrics.png"))
        print(f"finished at step {int(state.step)}; metrics in {metrics} and metrics.png")


if __name__ == "__main__":
    main()
