"""Training throughput (images/s at 225x225 crops) and inference latency (one 2048x615 image).

    python -m experiments.bench_train                       # ResNet-50 PSPNet, batch 8/16/32, bf16
    python -m experiments.bench_train --model synthetic --batch-sizes 8 --train-size 225 --steps 5
    python -m experiments.bench_train --smoke               # seconds, tiny model (CI check of the script)
    python -m experiments.bench_train --batch-sizes         # only the inference time (no batch size)
    python -m experiments.bench_train --no-inference        # only the training throughput

The step is the real ``train.make_train_step`` (forward, Eq. (4) losses, backward, SGD update) on random
inputs, data-parallel over every local device; timings exclude compilation and the input pipeline. Each row
shows its target, for one H100-class GPU with ResNet-50 PSPNet in bf16: >= 400 images/s training at 225x225 (at
every batch size timed), <= 30 ms per forward pass on one 2048x615 image; "met" or "missed", or "n/a" with why
when the run is not that setting (not a GPU, another model, dtype or size, training on several GPUs). ``--smoke``
sets the model, sizes and repeats itself and refuses those flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from experiments.flags import parse_noting_given, positive_int, refuse_unused
from oosis_jax.training import loop as train
from oosis_jax.training.configs import get_config
from oosis_jax.models import ModelConfig, PSPNet

MODELS = {"resnet50": lambda: ModelConfig.resnet50(7), "synthetic": lambda: get_config("synthetic").model,
          "tiny": lambda: ModelConfig.tiny(7)}
TARGET_IMAGES_PER_S = 400.0  # training at 225x225, each batch size; one H100-class GPU, ResNet-50 bf16
TARGET_MS = 30.0  # one forward pass on a 2048x615 image, same GPU and model
SMOKE_SETS = {"model": "--model", "train_size": "--train-size", "infer_size": "--infer-size", "steps": "--steps",
              "batch_sizes": "--batch-sizes N"}


def random_batch(rng: np.random.Generator, batch: int, height: int, width: int, classes: int) -> dict:
    boundary = (rng.random((batch, height, width)) < 0.05).astype(np.float32)
    orientation = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (batch, height, width))] * boundary[..., None]
    return {"image": rng.normal(size=(batch, height, width, 3)).astype(np.float32),
            "semantic": rng.integers(0, classes + 1, (batch, height, width)).astype(np.int32),
            "boundary": boundary, "orientation": orientation}


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` (which must block until its result is ready) over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_training(model: ModelConfig, batch_sizes: list[int], size: int, steps: int):
    """Yields (batch size, images per second of the jitted training step at ``size x size`` crops) for each of
    ``batch_sizes`` in turn; the network is initialised once for all of them (each batch size compiles anew), and
    not at all for none."""
    if not batch_sizes:
        return
    mesh = train.make_mesh()
    with jax.set_mesh(mesh):  # only here: the inference benchmark runs as a predictor would
        config = get_config("smoke").replace(model=model, num_steps=1000)
        holder = {"state": jax.device_put(train.fresh_train_state(config, 1000), NamedSharding(mesh, P()))}
        step, _ = train.jitted_steps(config, 1000)  # its batch size is the batch's, not the config's
        for batch_size in batch_sizes:
            batch = train.to_global(random_batch(np.random.default_rng(0), batch_size, size, size,
                                                 model.num_classes), mesh)

            def one_step():
                holder["state"], metrics = step(holder["state"], batch)
                jax.block_until_ready(metrics)

            one_step()  # compile
            one_step()
            yield batch_size, batch_size / timed(one_step, steps)


def bench_inference(model: ModelConfig, height: int, width: int, repeats: int) -> float:
    """Milliseconds of one jitted forward pass (eval mode) on a ``height x width`` image."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: PSPNet(model)))
    state = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), state)
    forward = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x, train=False))
    image = jnp.asarray(np.random.default_rng(0).normal(size=(1, height, width, 3)), jnp.float32)
    run = lambda: jax.block_until_ready(forward(state, image))  # noqa: E731
    run()
    return 1000.0 * timed(run, repeats)


def verdict(args, devices, training: bool, value: float) -> str:
    """Whether ``value`` (img/s when ``training``, else ms) meets its target: "met", "missed", or "n/a (why)" when
    this run is not the target's setting (one GPU of ``devices``, ResNet-50 bf16, 225x225 or 2048x615)."""
    if devices[0].platform != "gpu":
        why = "not a GPU"
    elif args.model != "resnet50" or args.dtype != "bfloat16":
        why = "not ResNet-50 bf16"
    elif training and args.train_size != 225:
        why = "not 225x225"
    elif training and len(devices) > 1:
        why = f"{len(devices)} GPUs: the target is for one"
    elif not training and list(args.infer_size) != [615, 2048]:
        why = "not 2048x615"
    else:
        return "met" if (value >= TARGET_IMAGES_PER_S if training else value <= TARGET_MS) else "missed"
    return f"n/a ({why})"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="bfloat16")
    parser.add_argument("--batch-sizes", type=positive_int, nargs="*", default=[8, 16, 32],
                        help="training batch sizes to time (none: skip the training benchmark)")
    parser.add_argument("--train-size", type=positive_int, default=225)
    parser.add_argument("--infer-size", type=positive_int, nargs=2, default=[615, 2048], metavar=("H", "W"))
    parser.add_argument("--steps", type=positive_int, default=20)
    parser.add_argument("--no-inference", action="store_true", help="skip the inference benchmark")
    parser.add_argument("--smoke", action="store_true", help="tiny model, tiny sizes, 2 repeats")
    args, given = parse_noting_given(parser, argv, SMOKE_SETS)
    if args.no_inference and args.batch_sizes == []:
        parser.error("nothing to time: --no-inference with a bare --batch-sizes skips both benchmarks")
    if args.smoke:  # a bare --batch-sizes (no training) is kept
        refuse_unused(parser, given - ({"batch_sizes"} if args.batch_sizes == [] else set()), SMOKE_SETS,
                      "--smoke, which sets a tiny model, tiny sizes and 2 repeats itself")
        args.model, args.train_size, args.infer_size, args.steps = "tiny", 33, [41, 67], 2
        args.batch_sizes = [2] if args.batch_sizes else []
    model = dataclasses.replace(MODELS[args.model](), dtype=args.dtype)
    devices = jax.devices()
    print(f"model={args.model} dtype={args.dtype} devices={len(devices)}x {devices[0].device_kind}")
    print(f"{'what':<24}{'batch':>6}{'result':>16}  {'target (one H100-class GPU)':<30}met")
    for batch_size, ips in bench_training(model, args.batch_sizes, args.train_size, args.steps):
        print(f"{f'train {args.train_size}x{args.train_size}':<24}{batch_size:>6}{ips:>11.1f} img/s  "
              f"{f'>= {TARGET_IMAGES_PER_S:.0f} img/s at 225x225':<30}{verdict(args, devices, True, ips)}", flush=True)
    if not args.no_inference:
        height, width = args.infer_size
        ms = bench_inference(model, height, width, args.steps)
        print(f"{f'inference {width}x{height}':<24}{1:>6}{ms:>13.1f} ms  {f'<= {TARGET_MS:.0f} ms at 2048x615':<30}"
              f"{verdict(args, devices, False, ms)}", flush=True)


if __name__ == "__main__":
    main()
