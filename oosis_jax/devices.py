"""The JAX devices of a CPU-only host: one per core, so that a batch is split over the cores."""

from __future__ import annotations

import os

import jax

from crf.batch import usable_cores


def use_cpu_cores(batch_size: int, cores: int | None = None) -> int:
    """Give JAX's CPU platform one device per core (at most ``cores``, default the cores this process may use)
    so that a data-parallel step splits each batch over them: the largest count that divides ``batch_size``.
    XLA's own threading leaves part of a small network's step serial; on 2 cores the demo's step took 410 ms
    with 2 devices against 605-658 ms with one (RESULTS.md, "The demo"), and a `Predictor`, which splits each
    network batch over the devices, made the whole default demo take 51 s against 61 s, with the same numbers.
    The batch statistics stay those of the global batch, so a training step computes the same function. Call it
    before JAX's first computation (it sets ``jax_num_cpu_devices``); afterwards the device count cannot change,
    and the current one is returned.
    A GPU or TPU, when present, still gets the work (its devices are JAX's default). A count the user chose
    (``JAX_NUM_CPU_DEVICES``, or ``XLA_FLAGS=--xla_force_host_platform_device_count``) is kept."""
    if jax.config.jax_num_cpu_devices != -1:
        return jax.config.jax_num_cpu_devices
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):  # the user's count, too
        return jax.device_count()
    cores = cores or usable_cores()
    count = max(d for d in range(1, max(cores, 1) + 1) if batch_size % d == 0)
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX has computed already: its devices are fixed
        return jax.device_count()
    return count
