"""Augmentation, targets after augmentation, determinism and resumption of the input pipeline."""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from data.synthetic import make_scene
from oosis_jax.training import input_pipeline as ip
from data import targets
from oosis_jax.training.losses import IGNORE_LABEL


def scenes_with_edges(count, height=48, width=64):
    found, seed = [], 0
    while len(found) < count:
        scene = make_scene(seed, height, width)
        if len(scene["edges"]):
            found.append(scene)
        seed += 1
    return found


def test_flip_mirrors_targets_and_swaps_left_right_orientations():
    scene = scenes_with_edges(1)[0]
    plain = ip.transform_example(scene)
    flipped = ip.transform_example(scene, flip=True)
    assert plain["boundary"].sum() > 0
    assert (plain["orientation"][..., 0] != plain["orientation"][..., 1]).any()
    np.testing.assert_array_equal(flipped["image"], plain["image"][:, ::-1])
    np.testing.assert_array_equal(flipped["semantic"], plain["semantic"][:, ::-1])
    np.testing.assert_array_equal(flipped["boundary"], plain["boundary"][:, ::-1])
    np.testing.assert_array_equal(flipped["orientation"], plain["orientation"][:, ::-1][..., [1, 0, 2, 3]])


def test_untransformed_targets_equal_the_target_functions():
    scene = scenes_with_edges(1)[0]
    out = ip.transform_example(scene)
    boundary, orientation = targets.boundary_targets(scene["instance_map"], scene["edges"])
    np.testing.assert_array_equal(out["boundary"], boundary)
    np.testing.assert_array_equal(out["orientation"], orientation)
    np.testing.assert_array_equal(out["semantic"], targets.semantic_map(scene["instance_map"], scene["classes"]))
    inst = scene["instance_map"]
    for i in np.unique(inst[inst > 0]):
        assert (out["area"][inst == i] == (inst == i).sum()).all()
    assert (out["area"][inst == 0] == 0).all()


def test_crop_targets_are_the_crop_of_full_targets_and_padding_is_ignored():
    scene = scenes_with_edges(1)[0]
    full = ip.transform_example(scene)
    inner = ip.transform_example(scene, offset=(5, 9), crop_size=(30, 40))
    for key in ("semantic", "boundary", "orientation"):
        np.testing.assert_array_equal(inner[key], full[key][5:35, 9:49])
    np.testing.assert_array_equal(inner["area"], full["area"][5:35, 9:49])  # sizes of whole objects, not cut ones
    padded = ip.transform_example(scene, offset=(-4, 30), crop_size=(60, 50))
    assert (padded["semantic"][:4] == IGNORE_LABEL).all() and (padded["semantic"][:, 34:] == IGNORE_LABEL).all()
    assert (padded["boundary"][:4] == 0).all() and (padded["image"][:4] == ip.PAD_COLOR).all()
    np.testing.assert_array_equal(padded["boundary"][4:52, :34], full["boundary"][:, 30:])


def test_resize_keeps_instance_ids_and_drops_edges_of_vanished_instances():
    scene = scenes_with_edges(1)[0]
    small = ip.transform_example(scene, resize_to=(6, 8))
    assert small["semantic"].shape == (6, 8)
    assert set(np.unique(small["semantic"])) <= set(np.unique(ip.transform_example(scene)["semantic"]))


def two_objects_one_pixel_apart(depths=None) -> dict:
    """Instance 1 (columns 0..3) and 2 (columns 5..11) with a one-pixel background gap between them."""
    inst = np.zeros((8, 12), np.int32)
    inst[:, :4], inst[:, 5:] = 1, 2
    example = {"image": np.full((8, 12, 3), 128, np.uint8), "instance_map": inst,
               "classes": np.array([1, 2], np.int32), "edges": np.zeros((0, 2), np.int32)}
    return example if depths is None else {**example, "depths": np.asarray(depths, np.float32)}


def test_instances_that_shrinking_makes_touch_get_the_nearer_one_s_boundary_or_none():
    # at half size the gap closes: the objects touch, and the true boundary there needs a target (a helper's
    # audit: 30 of 100 scenes at scale 0.5 lost boundary pixels so, teaching the b head not to fire there)
    near_right = ip.transform_example(two_objects_one_pixel_apart([5.0, 2.0]), resize_to=(4, 6))
    inst = ip._resize(np.zeros((8, 12, 3), np.uint8), two_objects_one_pixel_apart()["instance_map"], 4, 6)[1]
    assert targets.touching_pairs(inst).tolist() == [[1, 2]]
    b, e = targets.boundary_targets(inst, np.array([[2, 1]]))
    np.testing.assert_array_equal(near_right["boundary"], b)
    np.testing.assert_array_equal(near_right["orientation"], e)
    assert (near_right["boundary"][inst == 2] > 0).sum() == 4 and (near_right["semantic"] != IGNORE_LABEL).all()
    # without depths (KINS, COCOA) the order is unknown: the contact pixels are left out of every term
    unknown = ip.transform_example(two_objects_one_pixel_apart(), resize_to=(4, 6))
    np.testing.assert_array_equal(unknown["semantic"] == IGNORE_LABEL, ip.contact_pixels(inst, np.array([[1, 2]])))
    assert (unknown["semantic"] == IGNORE_LABEL).sum() == 8
    # at full size nothing changes; and a synthetic scene shrunk gets exactly its own rule's targets
    same = ip.transform_example(two_objects_one_pixel_apart([5.0, 2.0]))
    assert (same["boundary"][:, 4] == 0).all() and (same["semantic"] != IGNORE_LABEL).all()
    scene = make_scene(2, 120, 160)
    shrunk = ip.transform_example(scene, resize_to=(60, 80))
    inst = ip._resize(scene["image"], scene["instance_map"].astype(np.int32), 60, 80)[1]
    pairs, d = targets.touching_pairs(inst), scene["depths"]
    rule = np.array([(a, b) if d[a - 1] < d[b - 1] else (b, a) for a, b in pairs.tolist()])
    touching = {tuple(sorted(p)) for p in rule.tolist()} - {tuple(sorted(p)) for p in scene["edges"].tolist()}
    assert touching == {(1, 7), (8, 12)}  # the seed the audit found: two pairs touch only when shrunk
    np.testing.assert_array_equal(shrunk["boundary"], targets.boundary_targets(inst, rule)[0])
    with pytest.raises(ValueError, match=r"depths must have shape \(2,\), got \(1,\)"):
        ip.transform_example(two_objects_one_pixel_apart([5.0]), resize_to=(4, 6))


def test_pairs_that_touched_before_resizing_keep_their_targets_and_contacts_are_jittered():
    # KINS gives no relation to touching objects of different occlusion clusters: resizing (always done in
    # training, 1x included) must not make up an edge for them, nor leave their contact out of the loss
    touching = two_objects_one_pixel_apart()
    touching["instance_map"][:, 4] = 1
    for depths in (None, [5.0, 2.0]):
        example = touching if depths is None else {**touching, "depths": np.asarray(depths, np.float32)}
        same = ip.transform_example(example, resize_to=(8, 12))
        assert (same["semantic"] != IGNORE_LABEL).all() and (same["boundary"] == 0).all()
    # the contact pixels of a pair of unknown order are left out of the loss but jittered with the image
    config = ip.AugmentConfig(crop_size=(4, 6), scale_range=(0.5, 0.5), flip=False, brightness=0.5, contrast=0.0,
                              saturation=0.0)
    out = ip.random_transform(two_objects_one_pixel_apart(), np.random.default_rng(3), config)
    assert (out["semantic"] == IGNORE_LABEL).sum() == 8
    assert len(np.unique(out["image"])) == 1  # one grey image, one brightness: no line left at the contact


def test_bad_examples_raise():
    scene = scenes_with_edges(1)[0]
    with pytest.raises(ValueError, match="missing 'edges'"):
        ip.transform_example({k: v for k, v in scene.items() if k != "edges"})
    with pytest.raises(ValueError, match="uint8"):
        ip.transform_example(dict(scene, image=scene["image"].astype(np.float32)))
    with pytest.raises(ValueError, match="misses"):
        ip.transform_example(scene, offset=(100, 0), crop_size=(10, 10))
    with pytest.raises(ValueError, match="empty"):
        ip.train_dataset([], ip.AugmentConfig(), batch_size=1, seed=0)
    with pytest.raises(ValueError, match="class id 255 is not below 255, the label of ignored pixels"):
        ip.transform_example(dict(scene, classes=np.full_like(scene["classes"], IGNORE_LABEL)))


@pytest.mark.parametrize("change, message", [
    (lambda s: dict(s, edges=np.append(s["edges"], [[1, len(s["classes"]) + 3]], axis=0)), "edges name instances"),
    (lambda s: dict(s, edges=np.array([[1, 2, 3], [2, 3, 1]])), r"edges must be an integer \(M, 2\) array"),
    (lambda s: dict(s, edges=s["edges"].astype(float)), r"edges must be an integer \(M, 2\) array"),
    (lambda s: dict(s, classes=s["classes"] + 10), "beyond the model's 5 classes"),
    (lambda s: dict(s, depths=np.ones(1)), r"depths must have shape"),
    (lambda s: dict(s, instance_map=s["instance_map"].astype(float)), "instance_map must be an integer"),
])
def test_a_bad_example_is_named_by_its_index_whatever_the_crop(change, message):
    """Every check holds on every crop (a float or out-of-range edge used to fail on some crops, pass on
    others, or be reshaped into other pairs), and the error names the example."""
    good = scenes_with_edges(2)
    source = [good[0], change(good[1])]
    for make in (lambda: ip.train_dataset(source, ip.AugmentConfig(), batch_size=2, seed=0, num_classes=5),
                 lambda: ip.eval_dataset(source, batch_size=2, num_classes=5)):
        with pytest.raises(ValueError, match=rf"example 1 of the source: .*{message}"):
            make()[0]


def test_a_resize_that_loses_an_instance_drops_its_edges():
    from data.examples import at_resolution

    inst = np.zeros((20, 20), np.int32)
    inst[:, :10], inst[:, 10:], inst[0, 0] = 1, 2, 3  # instance 3: one pixel, lost at 5x5
    example = dict(image=np.zeros((20, 20, 3), np.uint8), instance_map=inst, classes=np.array([1, 1, 1]),
                   edges=np.array([[1, 2], [3, 1]]))
    small = at_resolution(example, (5, 5))
    assert set(np.unique(small["instance_map"])) == {1, 2} and small["edges"].tolist() == [[1, 2]]
    assert len(small["classes"]) == 3  # ids keep lining up with their classes


def test_training_stream_is_deterministic_resumable_and_split_across_processes():
    source = scenes_with_edges(5)
    config = ip.AugmentConfig(crop_size=(24, 32))
    ds = ip.train_dataset(source, config, batch_size=4, seed=3)
    again = ip.train_dataset(source, config, batch_size=4, seed=3)
    batch = ds[2]
    assert batch["image"].shape == (4, 24, 32, 3) and batch["image"].dtype == np.float32
    assert batch["semantic"].dtype == np.int32 and batch["orientation"].shape == (4, 24, 32, 4)
    for key in batch:
        np.testing.assert_array_equal(batch[key], again[2][key])
    resumed = next(ip.iterate(ds, start=2, num_threads=2))
    np.testing.assert_array_equal(resumed["image"], batch["image"])
    other_seed = ip.train_dataset(source, config, batch_size=4, seed=4)[2]
    assert not np.array_equal(other_seed["image"], batch["image"])
    halves = [ip.train_dataset(source, config, batch_size=2, seed=3, process_index=p, process_count=2)[2]
              for p in range(2)]
    merged = np.concatenate([h["image"] for h in halves])
    assert sorted(map(bytes, merged)) == sorted(map(bytes, batch["image"]))


def test_worker_processes_give_the_threads_batches_in_order_from_any_start():
    ds = ip.train_dataset(scenes_with_edges(5), ip.AugmentConfig(crop_size=(24, 32)), batch_size=2, seed=3)
    threads = ip.iterate(ds, start=3, num_threads=2)
    processes = ip.iterate(ds, start=3, num_processes=2)
    try:
        for _ in range(4):  # both workers' shares, twice: round-robin over the workers, in step order
            a, b = next(threads), next(processes)
            assert sorted(a) == sorted(b)
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])
    finally:
        processes.close()


def test_worker_processes_read_a_tfds_build_as_threads_do(cocoa_build):
    """A built dataset's source (array_record files) goes to the spawned workers too (KINS and COCOA runs)."""
    from data import loading
    from data.registry import info

    source = loading.load("cocoa", "train", cocoa_build)
    ds = ip.train_dataset(source, ip.AugmentConfig(crop_size=(24, 32)), batch_size=2, seed=1,
                          num_classes=info("cocoa").num_classes)
    processes = ip.iterate(ds, start=1, num_processes=2)
    try:
        for a in (ds[1], ds[2], ds[3]):
            b = next(processes)
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])
    finally:
        processes.close()


def test_worker_processes_leave_sigint_and_sigterm_to_the_main_process():
    """The training loop answers a SIGTERM by saving the step under way: a SIGTERM (or a Ctrl-C) that reaches the
    loader's workers as well (sent to the process group) must not leave it without the step's batch."""
    ds = ip.train_dataset(scenes_with_edges(3), ip.AugmentConfig(crop_size=(24, 32)), batch_size=1, seed=0)
    others = {p.pid for p in multiprocessing.active_children()}  # e.g. another test's pool in this pytest worker
    batches = ip.iterate(ds, num_processes=2)
    try:
        next(batches), next(batches)  # one element of each worker: both have started (see `iterate`)
        workers = [p for p in multiprocessing.active_children() if p.pid not in others]
        assert len(workers) == 2
        for worker in workers:
            os.kill(worker.pid, signal.SIGTERM)
            os.kill(worker.pid, signal.SIGINT)
        time.sleep(1.0)
        assert all(worker.is_alive() for worker in workers)
        for _ in range(12):  # more than the workers' buffers hold
            next(batches)
    finally:
        batches.close()
    time.sleep(0.5)
    assert not any(worker.is_alive() for worker in workers)  # close() ends them all the same


WORKERS_OF_A_KILLED_PROCESS = """
import sys, time
from multiprocessing import active_children
sys.path.insert(0, sys.argv[1])
from data.synthetic import make_scene
from oosis_jax.training import input_pipeline as ip

if __name__ == "__main__":
    scenes = [make_scene(i, 48, 64) for i in range(2)]
    ds = ip.train_dataset(scenes, ip.AugmentConfig(crop_size=(24, 32)), batch_size=1, seed=0)
    batches = ip.iterate(ds, num_processes=2)
    next(batches)
    print(*[p.pid for p in active_children()], flush=True)
    time.sleep(600)
"""


def test_worker_processes_end_when_the_main_process_is_killed(tmp_path):
    """A main process killed outright (SIGKILL, the kernel's OOM killer) closes nothing: its workers, which
    ignore SIGTERM, must still not run on as orphans."""
    script = tmp_path / "main.py"
    script.write_text(WORKERS_OF_A_KILLED_PROCESS)
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, str(script), str(root)], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # its resource tracker reports what it removes
    try:
        pids = [int(pid) for pid in proc.stdout.readline().split()]
        assert len(pids) == 2
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended (its parent is gone)
    except FileNotFoundError:
        return False


AN_EXAMPLE_THAT_FAILS = """
import sys, threading
sys.path.insert(0, sys.argv[1])
from data.synthetic import make_scene
from oosis_jax.training import input_pipeline as ip


class Unpicklable(Exception):
    def __init__(self):
        super().__init__("no such record")
        self.lock = threading.Lock()  # as an error holding a file or a lock would


class FailsAt1:
    def __len__(self):
        return 3

    def __getitem__(self, index):
        if index == 1:
            raise Unpicklable()
        return make_scene(index, 48, 64)


if __name__ == "__main__":
    ds = ip.train_dataset(FailsAt1(), ip.AugmentConfig(crop_size=(24, 32)), batch_size=3, seed=0)
    batches = ip.iterate(ds, num_threads=1, num_processes=int(sys.argv[2]))
    try:
        next(batches)
    except ValueError as err:
        print(err)
    finally:
        batches.close()
"""


@pytest.mark.parametrize("processes", [0, 2])
def test_an_example_that_fails_is_named_whatever_its_error_even_from_a_worker_process(tmp_path, processes):
    """A worker used to wait forever for the batch of an error it could not send back (here: one holding a lock,
    of a class defined in the main script)."""
    script = tmp_path / "main.py"
    script.write_text(AN_EXAMPLE_THAT_FAILS)
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, str(script), str(root), str(processes)], cwd=root, capture_output=True,
                         text=True, timeout=120).stdout
    assert "example 1 of the source: Unpicklable: no such record" in out


class _HoldsALock(list):
    def __init__(self, scenes):
        super().__init__(scenes)
        self.lock = threading.Lock()


def test_a_source_that_cannot_go_to_the_workers_is_refused_before_any_batch():
    ds = ip.train_dataset(_HoldsALock(scenes_with_edges(1)), ip.AugmentConfig(crop_size=(24, 32)), batch_size=1,
                          seed=0)
    with pytest.raises(ValueError, match=r"need the dataset pickled.*TypeError: cannot pickle '_thread.lock'.*"
                                         r"loader_processes=0"):
        ip.iterate(ds, num_processes=2)
    assert next(ip.iterate(ds, num_threads=1))["image"].shape == (1, 24, 32, 3)  # threads need no pickling


def test_worker_processes_refuse_a_main_module_they_cannot_import_again(monkeypatch):
    ds = ip.train_dataset(scenes_with_edges(1), ip.AugmentConfig(crop_size=(24, 32)), batch_size=1, seed=0)
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)  # as `python - < x.py`
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)
    with pytest.raises(ValueError, match=r"'<stdin>' \(a script read from stdin\?\).*loader_processes=0"):
        ip.iterate(ds, num_processes=2)


def test_eval_dataset_keeps_every_example_in_order():
    source = scenes_with_edges(3)
    batches = list(ip.eval_dataset(source, batch_size=2))
    assert [b["image"].shape[0] for b in batches] == [2, 1]
    np.testing.assert_array_equal(batches[1]["semantic"][0], ip.transform_example(source[2])["semantic"])


def test_instance_ids_beyond_the_classes_are_refused_not_cut_to_int32():
    # ids were cast to int32 unchecked: 2**32 + 1 became 1, merging two objects and dropping their edge
    inst = np.ones((4, 6), np.int64)
    inst[:, 3:] = 2**32 + 1
    example = {"image": np.zeros((4, 6, 3), np.uint8), "instance_map": inst, "classes": np.array([1, 2]),
               "edges": np.array([[2**32 + 1, 1]])}
    with pytest.raises(ValueError, match=r"ids must lie in 0..2 \(len\(classes\)\), got 1..4294967297"):
        ip.transform_example(example)


def test_datasets_refuse_a_process_outside_the_count():
    scenes = [make_scene(0, 32, 32)]
    for index, count in ((5, 2), (-1, 2)):  # used to give no batch, or the last example's shard
        with pytest.raises(ValueError, match=f"bad process {index} of {count}"):
            ip.eval_dataset(scenes, process_index=index, process_count=count)
        with pytest.raises(ValueError, match=f"bad process {index} of {count}"):
            ip.train_dataset(scenes, ip.AugmentConfig(), batch_size=1, seed=0, process_index=index, process_count=count)


def test_contrast_turns_about_the_mean_of_the_image_not_of_its_padding():
    image = np.zeros((4, 4, 3), np.uint8)
    image[:2] = 200  # the image; rows 2-3 stand for a crop's padding
    valid = np.zeros((4, 4), bool)
    valid[:2] = True
    config = ip.AugmentConfig(brightness=0.0, contrast=0.5, saturation=0.0)
    out = ip.jitter_colors(image, np.random.default_rng(0), config, valid)
    np.testing.assert_array_equal(out[:2], 200)  # a flat image keeps its colour under any contrast
    mixed = ip.jitter_colors(image, np.random.default_rng(0), config)
    assert not np.array_equal(mixed[:2], image[:2])  # about the mean with padding it used to move
