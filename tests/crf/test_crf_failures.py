"""crf failure behaviour (issue 13): weights validated everywhere, and one bad item of a ``solve_many`` batch
named by a ``BatchError`` without losing the others."""

import threading

import numpy as np
import pytest

import crf


def _good(seed):
    rng = np.random.default_rng(seed)
    return rng.random((6, 7)), np.zeros((6, 7, 4), bool)


def _bad():
    return np.full((6, 7), np.nan), np.zeros((6, 7, 4), bool)


@pytest.mark.parametrize("processes", [1, 2])
def test_solve_many_names_the_bad_item_and_keeps_the_good_results(processes):
    inputs = [_good(0), _bad(), _good(1)]
    done = []
    with pytest.raises(crf.BatchError, match=r"1 of 3 items failed.*item 1: ValueError: .*NaN") as info:
        crf.solve_many(inputs, method="jump", processes=processes, on_done=lambda: done.append(1))
    err = info.value
    assert isinstance(err, ValueError) and set(err.failures) == {1} and err.results[1] is None
    assert len(done) == 3  # on_done counts every item, failed ones included (a progress bar reaches its end)
    for i in (0, 2):
        np.testing.assert_array_equal(err.results[i], crf.jump_moves(*inputs[i]))


@pytest.mark.parametrize("processes", [1, 2])
def test_an_item_that_is_not_a_pair_is_a_failed_item(processes):
    inputs = [_good(0), None, _good(1) + (1,), _good(2)]
    with pytest.raises(crf.BatchError, match=r"2 of 4 items failed.*item 1: ValueError: an item must be a "
                                             r"\(sigma, occ\) pair, got NoneType.*item 2: .*3-item tuple") as info:
        crf.solve_many(inputs, method="jump", processes=processes)
    for i in (0, 3):
        np.testing.assert_array_equal(info.value.results[i], crf.jump_moves(*inputs[i]))


def test_an_item_that_cannot_reach_a_worker_is_a_failed_item_and_bad_processes_are_named():
    inputs = [_good(0), (lambda: 0, _good(1)[1]), _good(2)]
    with pytest.raises(crf.BatchError, match=r"1 of 3 items failed.*item 1: ValueError: the item cannot be sent to "
                                             r"a worker process") as info:
        crf.solve_many(inputs, method="jump", processes=2)
    for i in (0, 2):
        np.testing.assert_array_equal(info.value.results[i], crf.jump_moves(*inputs[i]))
    for processes in (1.5, "2", True):
        with pytest.raises(ValueError, match="processes must be None"):
            crf.solve_many(inputs, processes=processes)
    with pytest.raises(ValueError, match="the method and its keyword arguments must be picklable"):
        crf.solve_many([_good(0), _good(1)], method=lambda sigma, occ: sigma, processes=2)


class _TwoArgError(ValueError):
    """Pickles, but cannot be loaded back: unpickling calls ``__init__`` with the message alone."""

    def __init__(self, index, why):
        super().__init__(f"item {index}: {why}")


def _fails_to_cross(sigma, occ):
    """By the width of ``sigma``: 3 raises an error that cannot be loaded back, 4 one that cannot be pickled
    (it holds a lock), 5 returns a lock; otherwise all-zero labels."""
    width = sigma.shape[1]
    if width == 3:
        raise _TwoArgError(3, "cannot be loaded back")
    if width == 4:
        err = ValueError("holds a lock")
        err.lock = threading.Lock()
        raise err
    return threading.Lock() if width == 5 else np.zeros(sigma.shape, np.int32)


def test_errors_results_and_items_that_do_not_survive_pickling_are_failed_items():
    """With worker processes, an error or a result that cannot cross back, or an item that cannot be loaded in
    the worker, fails that item alone (a stand-in ``ValueError`` carrying the worker's traceback)."""
    inputs = [(np.ones((2, width)), np.zeros((2, width, 4), bool)) for width in (2, 3, 4, 5, 6)]
    inputs.append((_TwoArgError(1, "sigma"), np.zeros((2, 2, 4), bool)))
    with pytest.raises(crf.BatchError, match=r"4 of 6 items failed: item 1: ValueError: _TwoArgError: item 3: "
                                             r"cannot be loaded back; item 2: ValueError: ValueError: holds a lock; "
                                             r"item 3: ValueError: the result cannot be sent back from the worker "
                                             r"process: TypeError: .*lock.*; item 5: ValueError: the item cannot be "
                                             r"sent to a worker process: TypeError: ") as info:
        crf.solve_many(inputs, method=_fails_to_cross, processes=2)
    assert [labels is not None for labels in info.value.results] == [True, False, False, False, True, False]
    assert "_fails_to_cross" in info.value.failures[1].traceback
    assert "holds a lock" in info.value.failures[2].traceback


@pytest.mark.parametrize("lam, message", [("20", "lam must be a real number, got '20'"), (None, "lam must be a real"),
                                          (np.array([1.0, 2.0]), "lam must be a real number"), (True, "lam must")])
def test_weights_of_the_wrong_type_are_named(lam, message):
    sigma, occ = _good(0)
    with pytest.raises(ValueError, match=message):
        crf.solve(sigma, occ, lam=lam)
    with pytest.raises(ValueError, match=message.replace("lam", "mu")):
        crf.jump_moves(sigma, occ, mu=lam)


def test_ragged_inputs_are_named():
    with pytest.raises(ValueError, match="sigma is not an array"):
        crf.solve([[0.5, 0.5], [0.5]], np.zeros((2, 2, 4), bool))
    with pytest.raises(ValueError, match=r"sigma is a masked array: fill it first"):
        crf.solve(np.ma.masked_less(np.full((2, 2), 0.5), 0.6), np.zeros((2, 2, 4), bool))


def test_solve_many_default_method_reports_failures_too():
    with pytest.raises(crf.BatchError, match=r"1 of 2 items failed.*item 0: ") as info:
        crf.solve_many([_bad(), _good(0)], processes=1)
    np.testing.assert_array_equal(info.value.results[1], crf.solve(*_good(0)))


@pytest.mark.parametrize("lam, mu", [(np.nan, 100.0), (-1.0, 100.0), (20.0, np.inf), (20.0, -5.0)])
def test_energy_validates_weights_like_the_solvers(lam, mu):
    sigma, occ = _good(0)
    labels = np.zeros(sigma.shape, np.int32)
    with pytest.raises(ValueError, match="lam and mu must be finite and >= 0"):
        crf.energy(labels, sigma, occ, lam=lam, mu=mu)


@pytest.mark.parametrize("solver", [crf.jump_moves, crf.solve, crf.expansion_moves, crf.energy])
def test_weights_whose_sums_overflow_are_refused_not_solved_forever(solver):
    sigma, occ = _good(0)
    args = (np.zeros(sigma.shape, np.int32),) if solver is crf.energy else ()
    with pytest.raises(ValueError, match="lam and mu must be at most 1e\\+100"):
        solver(*args, sigma, occ, lam=1e308, mu=0.0)
    assert np.asarray(crf.solve(sigma, occ, lam=1e100, mu=1e100)).shape == sigma.shape


def test_solve_steps_must_be_a_sequence():
    sigma, occ = _good(0)
    with pytest.raises(ValueError, match=r"steps must be a non-empty sequence of positive ints.*\(1, 2\).*got 3"):
        crf.solve(sigma, occ, steps=3)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.uint64])
def test_solve_takes_steps_of_any_numpy_int_type(dtype):
    """A NumPy int8 step once passed the check and then overflowed the label arithmetic (an ``OverflowError``
    naming no argument) on inputs where a step move was found; it now solves as the Python int."""
    rng = np.random.default_rng(3)
    sigma, occ = rng.random((15, 17)), rng.random((15, 17, 4)) < 0.2
    occ[:, 0, 0] = occ[:, -1, 1] = occ[0, :, 2] = occ[-1, :, 3] = False
    expected = crf.solve_result(sigma, occ, steps=(1,))
    got = crf.solve_result(sigma, occ, steps=(dtype(1),))
    assert got == expected


@pytest.mark.parametrize("call, message", [
    (lambda: crf.grid_maxflow([[[1, 2]], [[1]]], np.zeros((2, 1, 2)), np.zeros((2, 1, 2))), "tedges is not an array"),
    (lambda: crf.energy([[1, 2], [1]], *_good(0)), "labels is not an array"),
    (lambda: crf.instances([[1, 2], [1]]), "labels is not an array"),
    (lambda: crf.solve(*_good(0), steps=(2**70,)), "steps must be"),
    (lambda: crf.grid_maxflow(*[np.zeros((2, 2, 2))] * 3, method=["auto"]), "method must be one of"),
    (lambda: crf.solve(np.zeros((6, 7), "m8[s]"), _good(0)[1]), "sigma must be a real-valued array"),
    (lambda: crf.energy(np.zeros((6, 7), "m8[s]"), *_good(0)), "labels must be an integer array"),
    (lambda: crf.grid_maxflow(np.zeros((2, 2, 2), "m8[s]"), *[np.zeros((2, 2, 2))] * 2), "tedges must be a real"),
])
def test_odd_arguments_get_a_value_error_naming_them(call, message):
    """Ragged lists, timedelta arrays (numpy counts them as integers), huge steps and a non-string method."""
    with pytest.raises(ValueError, match=message):
        call()


def test_results_compare_by_value():
    first, second = crf.solve_result(*_good(3)), crf.solve_result(*_good(3))
    assert first == second and first != crf.solve_result(*_good(4)) and first != "labels"
    with pytest.raises(TypeError, match="unhashable"):
        hash(first)


def test_a_batch_error_names_every_failed_index():
    failures = {i: ValueError(f"bad {i}") for i in (0, 2, 3, 5, 7, 8, 11)}
    error = crf.BatchError([None] * 12, failures)
    assert "7 of 12 items failed" in str(error) and "item 7: ValueError: bad 7" in str(error)
    assert str(error).endswith("; and items 8, 11")


def test_a_script_without_the_main_guard_is_told_why_its_workers_died(tmp_path):
    """Spawned workers import the main script: one that calls solve_many at import time crashes each of them,
    and the error the user sees says so (they only saw "killed, out of memory or crashed")."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "unguarded.py"
    script.write_text("import numpy as np\nimport crf\n"
                      "crf.solve_many([(np.ones((8, 8)), np.zeros((8, 8, 4), bool))] * 2, processes=2)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(crf.__file__).resolve().parents[1]))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert run.returncode != 0
    # the error's line (the last, but for the resource tracker's note on the workers' semaphores under load)
    errors = [line for line in run.stderr.splitlines() if line.startswith("concurrent.futures.process.Broken")]
    assert errors and 'outside `if __name__ == "__main__":`, crashes every one of them' in errors[-1], run.stderr


class _OnlyInTheParent:
    """Stands for a class of the parent's ``if __name__ == "__main__":`` block: it pickles as ``__main__.<name>``
    in the parent, where the test puts it, and spawned workers, whose ``__main__`` lacks it, cannot load it."""


def _exits(sigma, occ):
    if sigma.shape[1] == 3:
        raise SystemExit(5)
    return np.zeros(sigma.shape, np.int32)


def test_an_item_or_a_method_only_the_parent_can_load_fails_alone(monkeypatch):
    import sys

    monkeypatch.setattr(_OnlyInTheParent, "__module__", "__main__")
    monkeypatch.setattr(sys.modules["__main__"], "_OnlyInTheParent", _OnlyInTheParent, raising=False)
    inputs = [_good(0), (_OnlyInTheParent(), _good(1)[1]), _good(2)]
    with pytest.raises(crf.BatchError, match=r"1 of 3 items failed.*item 1: ValueError: it cannot be loaded in a "
                                             r"worker process \(AttributeError") as info:
        crf.solve_many(inputs, method="jump", processes=2)
    for i in (0, 2):  # the whole call used to die with BrokenProcessPool
        np.testing.assert_array_equal(info.value.results[i], crf.jump_moves(*inputs[i]))
    with pytest.raises(crf.BatchError, match=r"2 of 2 items failed.*it cannot be loaded in a worker process"):
        crf.solve_many([_good(0), _good(1)], method="jump", processes=2, marker=_OnlyInTheParent())


@pytest.mark.parametrize("processes", [1, 2])
def test_a_sys_exit_in_a_method_fails_its_item_alone(processes):
    inputs = [(np.ones((2, width)), np.zeros((2, width, 4), bool)) for width in (2, 3, 4)]
    with pytest.raises(crf.BatchError, match=r"1 of 3 items failed: item 1: SystemExit: 5") as info:
        crf.solve_many(inputs, method=_exits, processes=processes)
    assert [labels is not None for labels in info.value.results] == [True, False, True]


def test_a_batch_error_survives_pickling_and_copying():
    import copy
    import pickle

    error = crf.BatchError([np.zeros(2), None], {1: ValueError("bad")}, source="somewhere")
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert str(again) == str(error) and again.source == "somewhere" and set(again.failures) == {1}
        assert again.results[1] is None and again.results[0].tolist() == [0, 0]
