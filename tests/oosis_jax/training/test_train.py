"""Training loop: data parallelism matches one device, kill-and-resume is exact, a tiny model overfits."""

import dataclasses
import json
import multiprocessing
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers.scripts import run_script
from oosis_jax.evaluation import boundaries as boundary_eval
from oosis_jax.training import input_pipeline
from oosis_jax.training import loader
from oosis_jax.training import loop as train
from oosis_jax.training import validation
from oosis_jax.training.configs import TrainConfig, get_config
from oosis_jax.models import ModelConfig

MULTI_DEVICE_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P, AxisType
from oosis_jax.training import input_pipeline
from oosis_jax.training import loop as train
from oosis_jax.training import validation
from oosis_jax.training.configs import get_config

assert jax.device_count() == 4, jax.devices()
config = get_config("smoke")
batch = input_pipeline.train_dataset(input_pipeline.SyntheticScenes(8, (40, 48)), config.augment,
                                     batch_size=4, seed=0)[0]
val = input_pipeline.eval_dataset(input_pipeline.SyntheticScenes(3, (40, 48), 100), batch_size=3)
step, eval_step = train.jitted_steps(config, 6)
# initialised once (eagerly it would compile anew under each mesh), kept on the host: the steps donate their state
params, stats = jax.device_get(train.init_model(config)[1:3])
finals = []
for devices in (jax.devices()[:1], jax.devices()):
    mesh = jax.make_mesh((len(devices),), ("data",), axis_types=(AxisType.Auto,), devices=devices)
    jax.set_mesh(mesh)
    state = train.TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=stats,
                             opt_state=train.make_optimizer(config, 6).init(params))
    state = jax.device_put(state, NamedSharding(mesh, P()))
    # 3 images: split 1, 1, 1 and 1 of padding over 4 devices
    checked = validation.evaluate(eval_step, state, val, mesh, train.step_keys(config))
    for _ in range(2):
        state, metrics = step(state, train.to_global(batch, mesh))
    assert len(state.params["s_head"]["kernel"][...].sharding.device_set) == len(devices)
    finals.append((jax.device_get(state), jax.device_get(metrics), checked))
(one, m1, v1), (four, m4, v4) = finals
assert sorted(v1) == sorted(v4) and v1["val_boundary_ods"] > 0
for key in v1:
    np.testing.assert_allclose(v1[key], v4[key], rtol=1e-4, err_msg=key)
for a, b in zip(jax.tree.leaves((one.params, one.batch_stats)), jax.tree.leaves((four.params, four.batch_stats))):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
np.testing.assert_allclose(m1["loss"], m4["loss"], rtol=1e-4)
print("MATCH")
"""


def test_data_parallel_step_on_4_devices_matches_1_device():
    # Both meshes compile the same step at the same (lowest) LLVM optimisation level: what is compared is the
    # partitioning, and this halves the test's compile time on a slow 2-core host (97 -> 37 s).
    assert "MATCH" in run_script(MULTI_DEVICE_SCRIPT, timeout=600, XLA_FLAGS=(
        "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0"))


CORES_SCRIPT = """
import os
import jax, jax.numpy as jnp
from oosis_jax.devices import use_cpu_cores

del os.sched_getaffinity  # as on macOS and Windows: the cores are os.cpu_count()'s
os.cpu_count = lambda: 4
assert use_cpu_cores(6) == 3  # the most devices that divide the batch, at most one per core
assert jax.device_count() == 3 and jax.devices()[0].platform == "cpu"
jnp.ones(2).block_until_ready()
assert use_cpu_cores(8, cores=2) == 3  # after a computation the devices are fixed: the current count
print("CORES")
"""
CHOSEN_SCRIPT = """
import jax
from oosis_jax.devices import use_cpu_cores

assert use_cpu_cores(8, cores=2) == 1 and jax.device_count() == 1  # JAX_NUM_CPU_DEVICES=1 (or XLA's flag) kept
print("KEPT")
"""


def test_use_cpu_cores_splits_the_batch_over_the_cores_before_jax_computes():
    assert "CORES" in run_script(CORES_SCRIPT)
    assert "KEPT" in run_script(CHOSEN_SCRIPT, JAX_NUM_CPU_DEVICES="1")
    assert "KEPT" in run_script(CHOSEN_SCRIPT, XLA_FLAGS="--xla_force_host_platform_device_count=1")


RESTORED_ON_MESH_SCRIPT = """
import sys
import jax, jax.numpy as jnp, numpy as np
from oosis_jax.inference import network
from oosis_jax.training import checkpointing, loop as train
from oosis_jax.training.configs import get_config

assert jax.device_count() == 2
workdir, config = sys.argv[1], get_config("smoke")
jax.set_mesh(train.make_mesh())  # a mesh the caller set (as `train` sets one while it trains)
state = train.fresh_train_state(config, 1)
checkpointing.write_config(workdir, config)
mngr = checkpointing.manager(workdir)
checkpointing.save(mngr, 1, state, force=True)
mngr.wait_until_finished()
model, _ = train.restore_model(workdir)
s, b, e = network.forward(model, jnp.zeros((2, 32, 32, 3)))  # a jitted call under the 2-device mesh
np.testing.assert_allclose(np.asarray(model.s_head.kernel[...]), np.asarray(state.params["s_head"]["kernel"][...]))
print("RESTORED", b.shape)
"""


def test_a_model_restored_under_a_multi_device_mesh_runs_under_it(tmp_path):
    assert "RESTORED (2, 32, 32)" in run_script(RESTORED_ON_MESH_SCRIPT, str(tmp_path / "run"),
                                                 JAX_NUM_CPU_DEVICES="2")


class Interrupted(Exception):
    pass


def test_to_global_sends_only_the_keys_the_steps_read():
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=jax.devices()[:1])
    batch = {"image": np.zeros((2, 4, 4, 3), np.float32), "semantic": np.zeros((2, 4, 4), np.int32),
             "boundary": np.zeros((2, 4, 4), np.float32), "orientation": np.zeros((2, 4, 4, 4), np.float32),
             "area": np.ones((2, 4, 4), np.float32)}
    config = get_config("smoke")
    assert config.loss.small_weight == 0.0
    sent = train.to_global(batch, mesh, keys=train.step_keys(config))
    assert sorted(sent) == ["boundary", "image", "orientation", "semantic"]
    np.testing.assert_array_equal(np.asarray(sent["semantic"]), batch["semantic"])
    weighted = config.replace(loss=dataclasses.replace(config.loss, small_weight=1.0))
    assert "area" in train.to_global(batch, mesh, keys=train.step_keys(weighted))
    with pytest.raises(KeyError, match="area"):
        train.to_global({k: v for k, v in batch.items() if k != "area"}, mesh, keys=train.step_keys(weighted))
    assert sorted(train.to_global(batch, mesh)) == sorted(batch)


def test_killed_run_resumes_to_the_identical_state(tmp_path, monkeypatch):
    config = get_config("smoke")
    straight = train.train(config, tmp_path / "straight")

    def kill_at_3(step):
        if step == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train.train(config, tmp_path / "resumed", on_step=kill_at_3)
    assert max(int(name) for name in os.listdir(tmp_path / "resumed" / "checkpoints")) == 3
    draws, fresh_state = [], train.fresh_state
    monkeypatch.setattr(train, "fresh_state", lambda *args: draws.append(args[2:]) or fresh_state(*args))
    # resumed with the batches made in 2 worker processes instead of threads: the same batches
    others, made, iterate = {p.pid for p in multiprocessing.active_children()}, [], loader.iterate
    # the run's batch iterator is kept alive here, so that only the run's own close() can end its workers
    monkeypatch.setattr(loader, "iterate", lambda *args: made.append(iterate(*args)) or made[-1])
    with pytest.warns(UserWarning, match=r"watched and fed \(loader_processes: None -> 2\)"):
        resumed = train.train(config.replace(loader_processes=2), tmp_path / "resumed")
    assert not [p for p in multiprocessing.active_children() if p.pid not in others]  # its workers are closed
    assert draws and all(abstract for abstract, in draws)  # a resumed run draws no network it would discard
    assert int(resumed.step) == int(straight.step) == 6
    for a, b in zip(jax.tree.leaves(jax.device_get(straight)), jax.tree.leaves(jax.device_get(resumed))):
        np.testing.assert_array_equal(a, b)
    lines = [json.loads(line) for line in open(tmp_path / "resumed" / "metrics.jsonl")]
    assert [r["step"] for r in lines if "loss" in r] == [2, 4, 6]
    # resumed at step 3, its step-4 record averages step 4 alone, and says so
    assert [r.get("steps_averaged") for r in lines if "loss" in r] == [None, 1, None]
    assert {"val_boundary_ap", "val_oriented_ods", "val_s"} <= set(lines[-1])
    model, restored_config = train.restore_model(tmp_path / "resumed")
    assert restored_config == config.replace(loader_processes=2)  # a loader setting may change on resuming
    np.testing.assert_array_equal(model.s_head.kernel[...], resumed.params["s_head"]["kernel"][...])
    with pytest.raises(ValueError, match=r"different configuration than this run \(base_lr: \S+ -> 1\.0"):
        train.train(config.replace(base_lr=1.0), tmp_path / "resumed")
    with pytest.raises(FileNotFoundError):
        train.restore_model(tmp_path / "nothing")


class _ClassesBeyondTheModel:
    """Synthetic scenes whose class ids exceed the model's: the semantic loss is not finite."""

    def __init__(self, source):
        self.source = source

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        example = self.source[index]
        return dict(example, classes=example["classes"] + 10)


def test_a_run_that_cannot_go_well_stops_early_and_a_failed_start_can_be_started_again(tmp_path):
    from oosis_jax.training import checkpointing

    config = get_config("smoke")
    checkpointing.write_config(str(tmp_path / "a"), config)  # a start that died before its first checkpoint
    with pytest.warns(UserWarning, match=r"updated, since no checkpoint was saved under it \(base_lr: "):
        checkpointing.write_config(str(tmp_path / "a"), config.replace(base_lr=1.0))
    assert checkpointing.read_config(str(tmp_path / "a")).base_lr == 1.0
    (tmp_path / "b" / "checkpoints" / "4").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds checkpoints but no config.json"):
        checkpointing.write_config(str(tmp_path / "b"), config)
    wrong = config.replace(model=dataclasses.replace(config.model, num_classes=3))
    with pytest.raises(ValueError, match="model.num_classes is 3 but dataset 'synthetic' has 5 classes"):
        train.train(wrong, tmp_path / "c")
    train_source, val_source = train.open_sources(config)
    with pytest.raises(ValueError, match=r"example \d+ of the source: class id \d+ is beyond the model's 5 classes"):
        train.train(config, tmp_path / "c2", sources=(_ClassesBeyondTheModel(train_source), val_source))
    with pytest.raises(FloatingPointError, match="the weights hold inf or NaN after step 1"):
        train.train(config.replace(base_lr=3e38), tmp_path / "d")  # a finite first loss, inf weights saved first
    assert not any(name.isdigit() for name in os.listdir(tmp_path / "d" / "checkpoints"))
    with pytest.raises(FloatingPointError, match=r"w: the training loss is nan by step 4 \(metrics.jsonl\)"):
        train._check_finite(float("nan"), 4, "w")  # at a log line; a checkpoint's weights are checked too, above


def boundary_f(eval_step, state, batch):
    """Boundary ODS of the training loop's own (jitted) evaluation step on ``batch``."""
    _, b, _ = eval_step(state, jax.tree.map(jnp.asarray, batch))
    counts = [boundary_eval.image_counts(np.asarray(b[i], np.float64), None, batch["boundary"][i] > 0.5, None,
                                         thresholds=np.linspace(0.1, 0.9, 9)) for i in range(len(b))]
    return boundary_eval.summarize(counts, oriented=False)["ODS"]


def test_tiny_model_overfits_a_few_synthetic_scenes():
    steps = 60
    config = get_config("smoke", num_steps=steps, base_lr=0.1, model=ModelConfig.tiny(5, dropout=0.0))
    batch = next(iter(input_pipeline.eval_dataset(input_pipeline.SyntheticScenes(4, (32, 48)), batch_size=4)))
    assert batch["boundary"].sum() > 20
    state = train.fresh_train_state(config, steps)
    train_step, eval_step = train.jitted_steps(config, steps)
    f_before = boundary_f(eval_step, state, batch)
    device_batch = jax.tree.map(jnp.asarray, batch)
    losses = []
    for _ in range(steps):
        state, metrics = train_step(state, device_batch)
        losses.append(float(metrics["loss"][0]))
    f_after = boundary_f(eval_step, state, batch)
    assert losses[-1] < losses[0] / 8, losses[::10]
    assert f_after > max(3 * f_before, 0.3), (f_before, f_after)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_optimizer_groups_scale_and_freeze_the_learning_rate(optimizer):
    config = get_config("smoke", optimizer=optimizer, base_lr=0.01, momentum=0.9, weight_decay=0.0,
                        new_layer_lr_mult=10.0, upsample_lr_mult=0.0)
    params = {"backbone": {"w": jnp.ones(3)}, "s_head": {"w": jnp.ones(3)}, "be_upsample": {"w": jnp.ones(3)}}
    grads = jax.tree.map(lambda x: 0.5 * x, params)
    tx = train.make_optimizer(config, 100)
    updates, _ = tx.update(grads, tx.init(params), params)
    backbone, head = updates["backbone"]["w"], updates["s_head"]["w"]
    # SGD: -lr * g = -0.005; Adam's first step: -lr * sign(g) = -0.01 (bias-corrected moments).
    np.testing.assert_allclose(backbone, -0.005 if optimizer == "sgd" else -0.01, rtol=1e-3)
    np.testing.assert_allclose(head, 10 * backbone, rtol=1e-5)
    np.testing.assert_array_equal(updates["be_upsample"]["w"], 0.0)
    default = train.make_optimizer(config.replace(upsample_lr_mult=None), 100)
    updates, _ = default.update(grads, default.init(params), params)
    np.testing.assert_allclose(updates["be_upsample"]["w"], updates["s_head"]["w"])


def test_the_loader_gets_worker_processes_when_jax_computes_on_an_accelerator(monkeypatch):
    config = get_config("smoke")
    assert config.loader_processes is None and train.loader_processes(config) == 0  # the CPU: threads
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    for cores, workers in ((1, 1), (2, 1), (16, 15), (64, 16)):
        monkeypatch.setattr(train, "usable_cores", lambda: cores)
        assert train.loader_processes(config) == workers
    assert train.loader_processes(config.replace(loader_processes=0)) == 0  # the user's choice holds


def test_poly_schedule_is_optax_s_for_a_traced_length_too():
    config = get_config("smoke", base_lr=0.02, lr_power=0.9)
    reference = optax.polynomial_schedule(0.02, 0.0, 0.9, 100)
    steps = np.array([0, 1, 37, 99, 100, 250], np.int32)
    traced = jax.jit(lambda n: jax.vmap(train.poly_schedule(config, n))(steps))(np.int32(100))
    np.testing.assert_allclose(traced, jax.jit(jax.vmap(reference))(steps), rtol=1e-6, atol=0)  # as in a step
    assert float(train.poly_schedule(config, 100)(37)) == pytest.approx(float(reference(37)), rel=1e-6)
    assert float(train.poly_schedule(config, 100)(250)) == 0.0


def test_one_compiled_step_serves_every_run_length_and_checkpoint_interval():
    config = get_config("smoke")
    step, evaluate = train.jitted_steps(config, 6)
    longer, same_eval = train.jitted_steps(config.replace(num_steps=5000, checkpoint_every=7, eval_every=9), 5000)
    assert longer.func is step.func and same_eval is evaluate
    assert (int(step.keywords["num_steps"]), int(longer.keywords["num_steps"])) == (6, 5000)
    assert train.jitted_steps(config.replace(base_lr=0.5), 6)[0].func is not step.func


def test_config_rejects_unknown_optimizer_negative_upsample_multiplier_and_overlapping_scene_counts():
    with pytest.raises(ValueError, match="optimizer"):
        get_config("smoke", optimizer="rmsprop")
    with pytest.raises(ValueError, match="upsample_lr_mult"):
        get_config("smoke", upsample_lr_mult=-1.0)
    with pytest.raises(ValueError, match="synthetic_scenes must be an integer in .*next split's seeds"):
        get_config("smoke", synthetic_scenes=10**6 + 1)  # its training scenes would include validation scenes


@pytest.mark.parametrize("nested, field", [(None, "seed"), ("model", "width"), ("loss", "boundary_loss"),
                                           ("augment", "scale_range")])
def test_config_from_dict_names_a_missing_or_unknown_field(nested, field):
    values = json.loads(json.dumps(get_config("smoke").to_dict()))
    where = values[nested] if nested else values
    del where[field]
    with pytest.raises(ValueError, match=rf"missing fields \['{field}'\]"):
        TrainConfig.from_dict(values)
    where["bogus"] = 1
    with pytest.raises(ValueError, match=rf"missing fields \['{field}'\]; unknown fields \['bogus'\]"):
        TrainConfig.from_dict(values)


def test_config_from_dict_reads_files_written_before_later_fields():
    config = get_config("smoke")
    values = json.loads(json.dumps(config.to_dict()))
    for nested in ("model", "loss"):
        cls = type(getattr(config, nested))
        for field in cls.ADDED_LATER:
            del values[nested][field]
    old = TrainConfig.from_dict(values)
    assert old.model == dataclasses.replace(config.model, **{f: getattr(ModelConfig(1), f)
                                                             for f in ModelConfig.ADDED_LATER})
    assert old.loss == type(config.loss)()  # the smoke preset's loss is the default one


def test_training_reads_a_synthetic_tfds_build(tmp_path):
    builder_config = (("num_train", 4), ("num_validation", 2), ("num_test", 0), ("min_height", 40),
                      ("max_height", 40), ("min_width", 48), ("max_width", 48))
    config = get_config("smoke", data_dir=str(tmp_path), dataset_config=builder_config, eval_split="validation")
    train_source, val_source = train.open_sources(config)
    assert (len(train_source), len(val_source)) == (4, 2)
    batch = input_pipeline.train_dataset(train_source, config.augment, batch_size=4, seed=0)[0]
    assert batch["image"].shape == (4, 32, 32, 3) and batch["boundary"].max() == 1.0
    (val_batch,) = input_pipeline.eval_dataset(val_source, batch_size=2)
    assert val_batch["image"].shape == (2, 40, 48, 3)
    restored = type(config).from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config and hash(restored) == hash(config)
    with pytest.raises(ValueError, match="dataset_config"):
        config.replace(dataset_config=(("num_train",),))


def test_validation_batches_of_varying_sizes_stop_the_run_before_its_first_step(tmp_path):
    builder_config = (("num_train", 2), ("num_validation", 4), ("num_test", 0), ("min_height", 40),
                      ("max_height", 48), ("min_width", 40), ("max_width", 56))
    config = get_config("smoke", data_dir=str(tmp_path / "tfds"), dataset_config=builder_config,
                        eval_split="validation", eval_batch_size=4)
    with pytest.raises(ValueError, match=r"share a size.*set eval_batch_size=1 or a fixed eval_resolution"):
        train.train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # no step was trained


def test_validation_splits_each_batch_over_the_devices_and_matches_every_image_once(capsys):
    """Batches of 2, 2 and 1 images on the devices' ``data`` mesh (padded to a multiple of the device count):
    the network's (here the batch's own) b and e of each image are matched with its ground truth once; the loss
    terms add up over the batches. Against the per-image counts computed directly."""
    rng = np.random.default_rng(0)
    batches = [{"boundary": (rng.random((n, 12, 10)) > 0.8).astype(np.float32),
                "orientation": rng.random((n, 12, 10, 4)).astype(np.float32),
                "net_b": rng.random((n, 12, 10)), "net_e": rng.random((n, 12, 10, 4))} for n in (2, 2, 1)]
    seen = []

    def eval_step(state, batch):  # the network's b and e: carried by the batch, split over the devices
        seen.append(batch["net_b"].shape[0])
        return {"b": (jnp.float32(1.0), jnp.float32(2.0))}, batch["net_b"], batch["net_e"]

    mesh = train.make_mesh()
    result = validation.evaluate(eval_step, None, batches, mesh)
    err = capsys.readouterr().err
    assert "validation: " in err and "| 0/3 [" in err  # its own bar (minutes at KINS's 615x2048)
    devices = jax.device_count()
    assert seen == [-(-n // devices) * devices for n in (2, 2, 1)]
    counts = [boundary_eval.image_counts(batch["net_b"][i], batch["net_e"][i], batch["boundary"][i] > 0.5,
                                         batch["orientation"][i], thresholds=validation.EVAL_THRESHOLDS)
              for batch in batches for i in range(len(batch["net_b"]))]
    direct = boundary_eval.summarize(counts, oriented=False)
    assert result["val_boundary_ods"] == direct["ODS"] and result["val_boundary_ap"] == direct["AP"]
    assert result["val_oriented_ods"] == boundary_eval.summarize(counts, oriented=True)["ODS"]
    assert result["val_b"] == 0.5 and 0 < direct["ODS"] < 1
