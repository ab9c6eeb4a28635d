"""Shared pytest fixtures. This folder is on sys.path (pytest's rootdir conftest), so tests import the
helper modules of ``tests/helpers/`` as ``helpers.*``; no test imports another test file."""

import os
import warnings
from pathlib import Path

import pytest

# XLA compiles the same small programs (the smoke preset's steps, the tiny models' forwards) in many tests,
# each through a fresh jit: JAX's persistent compilation cache turns the repeats into disk reads, for the
# xdist workers and the subprocesses the tests start (they inherit these variables). Its keys hold the
# program, the JAX version, the backend and the flags, so a stale entry cannot be hit.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".pytest_cache"
                                                       / "jax_compilation_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# One CPU device per worker, as the tests expect: the demo's --train would otherwise give the worker that runs it
# one device per core for every later test (`oosis_jax.devices.use_cpu_cores` keeps a count set here).
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "1")


@pytest.fixture(scope="session")
def cocoa_build(tmp_path_factory):
    """A COCOA tfds build (default ``classes`` config, train and validation splits of 3 tiny images) from the
    fixture annotation files of ``helpers.cocoa_files``; returns its data_dir."""
    import data.cocoa as cocoa
    from data.annotations_order import OcclusionCycleWarning, OrderDisagreementWarning
    from helpers.cocoa_files import prepare

    manual = tmp_path_factory.mktemp("cocoa_manual")
    prepare(manual, with_regions=True)
    data_dir = tmp_path_factory.mktemp("cocoa_tfds")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OcclusionCycleWarning)
        warnings.simplefilter("ignore", OrderDisagreementWarning)
        cocoa.builder(data_dir, manual_dir=manual).download_and_prepare()
    return str(data_dir)
