"""The loader: batches in threads or in spawned worker processes, the same either way; the workers leave signals to
the main process, end with it, and every failure of an example reaches the caller named."""

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

from oosis_jax.training import input_pipeline as ip
from oosis_jax.training import loader
from helpers.scenes import scenes_with_edges


def test_worker_processes_give_the_threads_batches_in_order_from_any_start():
    ds = ip.train_dataset(scenes_with_edges(5), ip.AugmentConfig(crop_size=(24, 32)), batch_size=2, seed=3)
    threads = loader.iterate(ds, start=3, num_threads=2)
    processes = loader.iterate(ds, start=3, num_processes=2)
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
    processes = loader.iterate(ds, start=1, num_processes=2)
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
    batches = loader.iterate(ds, num_processes=2)
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
from oosis_jax.training import loader

if __name__ == "__main__":
    scenes = [make_scene(i, 48, 64) for i in range(2)]
    ds = ip.train_dataset(scenes, ip.AugmentConfig(crop_size=(24, 32)), batch_size=1, seed=0)
    batches = loader.iterate(ds, num_processes=2)
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
from oosis_jax.training import loader


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
    batches = loader.iterate(ds, num_threads=1, num_processes=int(sys.argv[2]))
    try:
        next(batches)
    except Exception as err:
        print(type(err).__name__, err, getattr(err, "__notes__", []))
    finally:
        batches.close()
"""


@pytest.mark.parametrize("processes, expected", [
    (0, "Unpicklable no such record ['(example 1 of the source)'"),  # its own type and traceback, and a note
    (2, "ValueError example 1 of the source: Unpicklable: no such record"),  # what a worker can send back
])
def test_an_example_that_fails_is_named_whatever_its_error_even_from_a_worker_process(tmp_path, processes, expected):
    """A worker used to wait forever for the batch of an error it could not send back (here: one holding a lock,
    of a class defined in the main script)."""
    script = tmp_path / "main.py"
    script.write_text(AN_EXAMPLE_THAT_FAILS)
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, str(script), str(root), str(processes)], cwd=root, capture_output=True,
                         text=True, timeout=120).stdout
    assert expected in out, out


class _HoldsALock(list):
    def __init__(self, scenes):
        super().__init__(scenes)
        self.lock = threading.Lock()


def test_a_source_that_cannot_go_to_the_workers_is_refused_before_any_batch():
    ds = ip.train_dataset(_HoldsALock(scenes_with_edges(1)), ip.AugmentConfig(crop_size=(24, 32)), batch_size=1,
                          seed=0)
    with pytest.raises(ValueError, match=r"need the dataset pickled.*TypeError: cannot pickle '_thread.lock'.*"
                                         r"loader_processes=0"):
        loader.iterate(ds, num_processes=2)
    assert next(loader.iterate(ds, num_threads=1))["image"].shape == (1, 24, 32, 3)  # threads need no pickling


def test_worker_processes_refuse_a_main_module_they_cannot_import_again(monkeypatch):
    ds = ip.train_dataset(scenes_with_edges(1), ip.AugmentConfig(crop_size=(24, 32)), batch_size=1, seed=0)
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)  # as `python - < x.py`
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)
    with pytest.raises(ValueError, match=r"'<stdin>' \(a script read from stdin\?\).*loader_processes=0"):
        loader.iterate(ds, num_processes=2)
