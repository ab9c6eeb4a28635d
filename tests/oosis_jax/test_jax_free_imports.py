"""The parts documented as JAX-free import without JAX: the CRF, the dataset readers and targets, the
evaluation, and what a prediction is made of (a fresh interpreter, since this one has JAX loaded); the tfds
side of `data` says which extra it needs."""

import subprocess
import sys

CODE = """
import sys
import crf, data.targets, data.kins, data.cocoa, data.synthetic
import oosis_jax.evaluation, oosis_jax.inference.robustness, oosis_jax.models.config
from oosis_jax import ImageFailure
loaded = sorted(m for m in ("jax", "flax", "optax", "orbax", "tensorflow_datasets") if m in sys.modules)
assert not loaded, loaded
sys.modules["tensorflow_datasets"] = None  # as on the base install
import data.loading
try:
    data.loading.load("synthetic", "test", "unused")
except ModuleNotFoundError as err:
    assert "pip install 'oosis[network]'" in str(err), err
else:
    raise AssertionError("loaded without tensorflow_datasets")
sys.modules["jax"] = None  # the base install has no JAX: the one-line API says which extra it needs
try:
    from oosis_jax import Predictor
except ModuleNotFoundError as err:
    assert str(err) == ("oosis_jax.Predictor needs jax, which the base install leaves out; "
                        "pip install 'oosis[network]'") and err.name == "jax", err
else:
    raise AssertionError("imported without jax")
"""


def test_the_jax_free_modules_import_without_jax():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
