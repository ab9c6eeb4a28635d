"""crf.solve_many: a process pool gives the same labelings as labelling one image after the other."""

import concurrent.futures
import multiprocessing
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
from helpers.crf_problems import random_occ

import crf


def _inputs(count):
    rng = np.random.default_rng(0)
    pairs = []
    for k in range(count):
        shape = (int(rng.integers(4, 12)), int(rng.integers(4, 12)))
        pairs.append((rng.random(shape), random_occ(rng, np.zeros(shape, int), density=0.15)))
    return pairs


def test_pool_equals_sequential():
    inputs = _inputs(6)
    parallel = crf.solve_many(inputs, method="jump", processes=2, lam=5.0)
    assert len(parallel) == len(inputs)
    for (sigma, occ), labels in zip(inputs, parallel):
        np.testing.assert_array_equal(labels, crf.jump_moves(sigma, occ, lam=5.0))


def test_threads_equal_sequential():
    # the solvers release the GIL: several threads of one process run at once, and share nothing
    inputs = _inputs(8)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda pair: crf.solve_result(*pair, lam=5.0), inputs))
    assert threaded == [crf.solve_result(*pair, lam=5.0) for pair in inputs]


def test_solve_many_in_threads_equals_sequential_runs_local_methods_and_names_failures():
    inputs = _inputs(6)
    done = []
    threaded = crf.solve_many(inputs, method="jump", threads=3, on_done=lambda: done.append(1), lam=5.0)
    for (sigma, occ), labels in zip(inputs, threaded):
        np.testing.assert_array_equal(labels, crf.jump_moves(sigma, occ, lam=5.0))
    assert len(done) == 6
    local = lambda sigma, occ: crf.solve(sigma, occ, lam=5.0)  # noqa: E731 - processes could not pickle it
    assert [r.tolist() for r in crf.solve_many(inputs[:3], method=local, threads=2)] == \
        [crf.solve(*pair, lam=5.0).tolist() for pair in inputs[:3]]
    with pytest.raises(crf.BatchError, match=r"1 of 4 items failed: item 2: ") as info:
        crf.solve_many(inputs[:2] + ["not a pair"] + inputs[2:3], threads=2)
    assert info.value.results[2] is None and all(info.value.results[i] is not None for i in (0, 1, 3))


def test_in_process_and_callable_methods():
    inputs = _inputs(3)
    for method, solver in (("expansion", crf.expansion_moves), ("solve", crf.solve), (crf.jump_moves, crf.jump_moves)):
        results = crf.solve_many(inputs, method=method, processes=1, mu=50.0)
        for (sigma, occ), labels in zip(inputs, results):
            np.testing.assert_array_equal(labels, solver(sigma, occ, mu=50.0))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="method"):
        crf.solve_many(_inputs(1), method="qpbo")
    with pytest.raises(ValueError, match="processes"):
        crf.solve_many(_inputs(2), processes=0)
    for threads in (0, True, 1.5):
        with pytest.raises(ValueError, match=r"threads must be None \(processes instead\) or an int >= 1"):
            crf.solve_many(_inputs(2), threads=threads)
    with pytest.raises(ValueError, match="give processes or threads, not both"):
        crf.solve_many(_inputs(2), processes=2, threads=2)
    with pytest.raises(ValueError, match="on_done must be None or a function of no arguments, got 3"):
        crf.solve_many(_inputs(2), processes=1, on_done=3)  # before: a TypeError once the first image was done
    with pytest.raises(ValueError, match="inputs must be an iterable of CRF inputs .* got int"):
        crf.solve_many(5, threads=1)
    with pytest.raises(ValueError, match="sigma"):
        crf.solve_many([(np.full((3, 3), 2.0), np.zeros((3, 3, 4), bool))], processes=1)


def test_default_method_is_solve_and_on_done_counts_images():
    inputs = _inputs(3)
    done = []
    results = crf.solve_many(inputs, processes=1, on_done=lambda: done.append(1))
    assert len(done) == 3
    for (sigma, occ), labels in zip(inputs, results):
        np.testing.assert_array_equal(labels, crf.solve(sigma, occ))


def _worker_pid(sigma, occ):
    return np.full(sigma.shape, os.getpid(), np.int32)


def _die(sigma, occ):
    os._exit(3)


def test_pool_is_kept_between_calls_and_restarted_after_close_or_crash():
    inputs = _inputs(4)
    first = {int(labels[0, 0]) for labels in crf.solve_many(inputs, method=_worker_pid, processes=2)}
    again = {int(labels[0, 0]) for labels in crf.solve_many(inputs, method=_worker_pid, processes=2)}
    assert os.getpid() not in first and again <= first  # the same worker processes serve the second call
    crf.close_pool()
    fresh = {int(labels[0, 0]) for labels in crf.solve_many(inputs, method=_worker_pid, processes=2)}
    assert not fresh & first
    with pytest.raises(BrokenProcessPool, match="worker process died"):
        crf.solve_many(inputs, method=_die, processes=2)
    after = {int(labels[0, 0]) for labels in crf.solve_many(inputs, method=_worker_pid, processes=2)}
    assert after and not after & fresh  # a dead pool is replaced, not reused
    np.testing.assert_array_equal(crf.solve_many(inputs, processes=2)[0], crf.solve(*inputs[0]))
    crf.close_pool()


def test_a_worker_killed_between_calls_does_not_fail_the_next_call():
    import signal
    import time

    import crf.batch

    inputs = _inputs(4)
    pids = {int(labels[0, 0]) for labels in crf.solve_many(inputs, method=_worker_pid, processes=2)}
    os.kill(pids.pop(), signal.SIGKILL)  # e.g. the out-of-memory killer, while the pool is idle
    deadline = time.time() + 10
    while not crf.batch._POOL["executor"]._broken and time.time() < deadline:
        time.sleep(0.05)
    np.testing.assert_array_equal(crf.solve_many(inputs, processes=2)[1], crf.solve(*inputs[1]))
    crf.close_pool()


def _hold(sigma, occ, folder):
    """``_worker_pid``'s labels once ``folder/go`` exists (or 2 s after the start, which ``folder/started-<pid>``
    marks, so that a call whose pool is shut down under it still ends)."""
    Path(folder, f"started-{os.getpid()}").touch()
    deadline = time.monotonic() + 2.0
    while not Path(folder, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _worker_pid(sigma, occ)


@pytest.mark.parametrize("interrupt", ["another size", "close_pool"])
def test_another_threads_call_or_close_pool_does_not_cancel_a_running_call(interrupt, tmp_path):
    """A call from another thread asking for another pool size, or ``close_pool``, while a call's items are
    running or queued: the running call still gets every result, and its replaced workers stop when it ends."""
    inputs = _inputs(8)  # more than 2 workers and their queue hold: some items wait in the executor
    outcome = {}

    def first():
        try:
            outcome["labels"] = crf.solve_many(inputs, method=_hold, processes=2, folder=str(tmp_path))
        except Exception as err:  # noqa: BLE001 - compared below
            outcome["error"] = err

    thread = threading.Thread(target=first)
    thread.start()
    while not any(tmp_path.glob("started-*")) and thread.is_alive():
        time.sleep(0.01)
    if interrupt == "close_pool":
        crf.close_pool()
    else:
        assert [labels.shape for labels in crf.solve_many(inputs[:2], method=_worker_pid, processes=3)] == [
            sigma.shape for sigma, _ in inputs[:2]]
    (tmp_path / "go").touch()
    thread.join()
    assert "error" not in outcome, repr(outcome.get("error"))
    assert [labels.shape for labels in outcome["labels"]] == [sigma.shape for sigma, _ in inputs]
    workers = {int(labels[0, 0]) for labels in outcome["labels"]}
    assert not workers & {child.pid for child in multiprocessing.active_children()}
    crf.close_pool()


def _alive(pid) -> bool:
    """Whether process ``pid`` runs (a zombie nobody reaped counts as ended)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_the_workers_of_a_killed_process_end_with_it():
    """A process killed while it holds the pool (e.g. for memory) cannot shut it down: its workers end by
    themselves within about a second instead of staying with their memory."""
    import signal
    import subprocess
    import sys

    script = ("import os, sys, time, crf.batch as b\n"
              "with b._kept_pool(1) as pool:\n"
              "    print(pool.submit(os.getpid).result(), flush=True)\n"
              "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2],
                              stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker)
    finally:
        parent.kill()
        parent.stdout.close()
