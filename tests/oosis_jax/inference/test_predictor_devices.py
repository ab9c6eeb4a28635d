"""A Predictor's network batches split over this process's devices (a fresh interpreter with 3 CPU devices)."""

import numpy as np
from helpers.scripts import run_script
from test_predictor import make_predictor


DEVICES_SCRIPT = """
import sys
sys.path[:0] = ["tests", "tests/oosis_jax/inference"]
import jax, numpy as np
from oosis_jax.inference import network
from oosis_jax.training import loop
from test_predictor import make_predictor

predictor = make_predictor("unet")
rng = np.random.default_rng(0)
images = [rng.integers(0, 256, size + (3,), dtype=np.uint8) for size in [(37, 53)] * 3 + [(20, 30)] * 2]
split_over, forward = [], network.forward
def spy(model, normalized):
    split_over.append(len(normalized.sharding.device_set))
    return forward(model, normalized)
network.forward = spy
heads = predictor.forward(images, progress=False)
with jax.set_mesh(loop.make_mesh()):  # a mesh the caller set
    again = predictor.forward(images, progress=False)
explicit = jax.make_mesh((3,), ("batch",), axis_types=(jax.sharding.AxisType.Explicit,))
with jax.set_mesh(explicit):  # one of Explicit axes, which refuses arrays of Auto ones
    explicitly = predictor.forward(images, progress=False)
kernel = predictor.model.s_head.kernel
kernel.set_value(kernel[...] * 0)  # a changed weight reaches the devices' copies
changed = predictor.forward(images[:1], progress=False)
np.savez(sys.argv[1], *[h[k] for h in heads + again + explicitly + changed for k in "sbe"])
print("SPLIT", jax.local_device_count(), sorted(set(split_over)))
"""


def test_a_batch_is_split_over_the_devices_with_the_heads_of_one_device(tmp_path):
    """With 3 CPU devices each network call splits its batch over them (batches of 3 and 2 images, the latter
    padded to 3), as under a mesh the caller set (of Auto or Explicit axes), with the heads one device gives; a
    weight changed after a call reaches the devices' copies. (Before, every call ran on device 0, or whole on
    every device under a caller's mesh.)"""
    assert "SPLIT 3 [3]" in run_script(DEVICES_SCRIPT, str(tmp_path / "heads.npz"), JAX_NUM_CPU_DEVICES="3")
    rng = np.random.default_rng(0)
    batch = [rng.integers(0, 256, size + (3,), dtype=np.uint8) for size in [(37, 53)] * 3 + [(20, 30)] * 2]
    expected = [h[k] for h in make_predictor("unet").forward(batch, progress=False) for k in "sbe"]
    with np.load(tmp_path / "heads.npz") as saved:
        got = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    for i, want in enumerate(expected * 3):
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got[-3], expected[0], atol=1e-3)  # s of the first image with the zeroed s head
