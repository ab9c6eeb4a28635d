"""A freshly initialised `PSPNet`, built by one jitted program.

Built eagerly, ``PSPNet(config, rngs=nnx.Rngs(seed))`` compiles one small XLA program per distinct initializer
call: 61 for the smoke preset, at about 0.5 s each on a slow 2-core host (32 s; the demo's network 34 s).
`fresh_state` traces the same construction and compiles it once, as one program, without XLA's backend
optimisations (it runs once): 6.6 s and 9.5 s on that host. It draws the same random streams: measured on the
smoke preset and the demo's network, the values agreed with the eager ones to float32 rounding (2e-7) and the
dropout keys exactly (an eager build is too slow to repeat in the test suite).
"""

from __future__ import annotations

import functools

import jax
from flax import nnx

from oosis_jax.models.config import ModelConfig
from oosis_jax.models.pspnet import PSPNet

# for programs that run once (initialisation): compile fast, run slower
RUN_ONCE_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


@functools.lru_cache(maxsize=8)
def _builders(config: ModelConfig, seed: int):
    """``(graphdef, abstract (params, batch_stats), build, build_rngs)``: ``build()`` -> fresh ``(params,
    batch_stats, rng_state)`` (new buffers each call, so a step may donate them), ``build_rngs()`` ->
    ``rng_state`` alone (XLA drops the parameter draws). Traced and compiled once per process."""
    def split():
        return nnx.split(PSPNet(config, rngs=nnx.Rngs(seed)), nnx.Param, nnx.BatchStat, ...)

    graphdef, params, batch_stats, _ = nnx.eval_shape(split)
    build = jax.jit(lambda: split()[1:], compiler_options=RUN_ONCE_COMPILER_OPTIONS)
    return graphdef, (params, batch_stats), build, jax.jit(lambda: split()[3])


def fresh_state(config: ModelConfig, seed: int = 0, abstract: bool = False):
    """``(graphdef, params, batch_stats, rng_state)`` of ``PSPNet(config, rngs=nnx.Rngs(seed))``, split with
    ``nnx.split(model, nnx.Param, nnx.BatchStat, ...)``. ``abstract``: params and batch_stats as
    ``jax.ShapeDtypeStruct`` (a template to restore into, nothing drawn); rng_state is always concrete."""
    graphdef, shapes, build, build_rngs = _builders(config, seed)
    if abstract:
        return graphdef, *shapes, build_rngs()
    return graphdef, *build()


def fresh_pspnet(config: ModelConfig, seed: int = 0) -> PSPNet:
    """The model ``PSPNet(config, rngs=nnx.Rngs(seed))`` builds, built by one jitted program (`fresh_state`)."""
    return nnx.merge(*fresh_state(config, seed))
