"""Training throughput (images/s at 225x225 crops) and inference latency (one 2048x615 image).

    python -m experiments.bench_train                       # ResNet-50 PSPNet, batch 8/16/32, bf16
    python -m experiments.bench_train --model synthetic --batch-sizes 8 --train-size 225 --steps 5
    python -m experiments.bench_train --smoke               # seconds, tiny model (CI check of the script)
    python -m experiments.bench_train --batch-sizes         # only the inference time (no batch size)
    python -m experiments.bench_train --no-inference        # only the training throughput

The step is the real ``train.make_train_step`` (forward, Eq. (4) losses, backward, SGD update) on random
inputs, data-parallel over every local device; timings exclude compilation and the input pipeline.
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

from experiments.flags import positive_int
from oosis_jax.training import loop as train
from oosis_jax.training.configs import get_config
from oosis_jax.models import ModelConfig, PSPNet

MODELS = {"resnet50": lambda: ModelConfig.resnet50(7), "synthetic": lambda: get_config("synthetic").model,
          "tiny": lambda: ModelConfig.tiny(7)}


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


def bench_training(model: ModelConfig, batch_size: int, size: int, steps: int) -> float:
    """Images per second of the jitted training step at ``size x size`` crops."""
    mesh = train.make_mesh()
    jax.set_mesh(mesh)
    config = get_config("smoke").replace(model=model, batch_size=batch_size, num_steps=1000)
    state = jax.device_put(train.fresh_train_state(config, 1000), NamedSharding(mesh, P()))
    step, _ = train.jitted_steps(config, 1000)
    batch = train.to_global(random_batch(np.random.default_rng(0), batch_size, size, size, model.num_classes), mesh)
    holder = {"state": state}

    def one_step():
        holder["state"], metrics = step(holder["state"], batch)
        jax.block_until_ready(metrics)

    one_step()  # compile
    one_step()
    return batch_size / timed(one_step, steps)


def bench_inference(model: ModelConfig, height: int, width: int, repeats: int) -> float:
    """Milliseconds of one jitted forward pass (eval mode) on a ``height x width`` image."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: PSPNet(model)))
    state = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), state)
    forward = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x, train=False))
    image = jnp.asarray(np.random.default_rng(0).normal(size=(1, height, width, 3)), jnp.float32)
    run = lambda: jax.block_until_ready(forward(state, image))  # noqa: E731
    run()
    return 1000.0 * timed(run, repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="bfloat16")
    parser.add_argument("--batch-sizes", type=positive_int, nargs="*", default=[8, 16, 32],
                        help="training batch sizes to time (none: skip the training benchmark)")
    parser.add_argument("--train-size", type=positive_int, default=225)
    parser.add_argument("--infer-size", type=positive_int, nargs=2, default=[615, 2048], metavar=("H", "W"))
    parser.add_argument("--steps", type=positive_int, default=20)
    parser.add_argument("--no-inference", action="store_true", help="skip the inference benchmark")
    parser.add_argument("--smoke", action="store_true", help="tiny model, tiny sizes, 2 repeats")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.train_size, args.infer_size, args.steps = "tiny", 33, [41, 67], 2
        args.batch_sizes = [2] if args.batch_sizes else []
    model = dataclasses.replace(MODELS[args.model](), dtype=args.dtype)
    device = f"{jax.device_count()}x {jax.devices()[0].device_kind}"
    print(f"model={args.model} dtype={args.dtype} devices={device}")
    print(f"{'what':<34}{'batch':>6}{'result':>16}")
    for batch_size in args.batch_sizes:
        ips = bench_training(model, batch_size, args.train_size, args.steps)
        print(f"{f'train {args.train_size}x{args.train_size}':<34}{batch_size:>6}{ips:>11.1f} img/s", flush=True)
    if not args.no_inference:
        height, width = args.infer_size
        ms = bench_inference(model, height, width, args.steps)
        print(f"{f'inference {width}x{height}':<34}{1:>6}{ms:>13.1f} ms", flush=True)


if __name__ == "__main__":
    main()
