"""Labelling many images on all CPU cores with a process pool, or with threads of this process (whole-dataset
evaluation).

No progress display here (the package needs numpy and numba only): pass ``on_done``, e.g. a tqdm bar's
``update``, to be called once per labelled image.

The pool is kept between calls: starting a worker costs about a second (a fresh interpreter importing numpy
and loading the compiled kernels), which a caller labelling a large dataset chunk by chunk would otherwise pay
on every chunk. `close_pool` stops it early; it stops at interpreter exit anyway. Calls from several threads
share it; a pool that a call or `close_pool` replaces is shut down once no call uses it any more.
"""

import concurrent.futures
import contextlib
import multiprocessing
import os
import pickle
import threading
import time
import traceback
from collections.abc import Iterable

import numpy as np

from crf.expansion import expansion_moves
from crf.jump import jump_moves
from crf.solve import solve

METHODS = {"jump": jump_moves, "expansion": expansion_moves, "solve": solve}


def _resolve(method):
    if callable(method):
        return method
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)} or a callable, got {method!r}")
    return METHODS[method]


class BatchError(ValueError):
    """Some items of a `solve_many` call (or of another batch call, named by ``source``) failed; the others
    were done.

    ``failures`` maps each failed item's index to its exception; ``results`` holds every item's result in
    input order, ``None`` at the failed indices, so the good items' work is not lost.
    """

    def __init__(self, results, failures, source="crf.solve_many"):
        self.results, self.failures, self.source = results, failures, source
        named = "; ".join(f"item {i}: {type(err).__name__}: {err}" for i, err in sorted(failures.items())[:5])
        rest = sorted(failures)[5:]
        more = f"; and items {', '.join(map(str, rest))}" if rest else ""
        super().__init__(f"{source}: {len(failures)} of {len(results)} items failed: {named}{more}")

    def __reduce__(self):  # pickled and copied with its fields, e.g. raised inside a user's own process pool
        return type(self), (self.results, self.failures, self.source)


def _label_one(job):
    """``(labels, None)`` for a job ``((solver, kwargs), item)``, or ``(None, exception)`` when the item is not a
    pair, could not be sent, or the solver raised (a ``sys.exit`` in it too), so one item never sinks the rest."""
    method, item = job
    try:
        for part in (method, item):
            if isinstance(part, _Unsendable):
                raise ValueError(part.reason)
        solver, kwargs = method
        sigma, occ = _pair(item)
        return solver(sigma, occ, **kwargs), None
    except (Exception, SystemExit) as err:  # noqa: BLE001 - reported per item by BatchError
        return None, err


def _label_in_worker(job):
    """`_label_one` in a worker process, with an outcome that reaches the parent: an exception that does not
    survive pickling (e.g. one holding a lock, or one whose ``__init__`` unpickling cannot call) is replaced by
    `_stand_in`, and so is the pickling error of a result that does not; either would otherwise fail the
    whole call, every other item's result lost."""
    labels, err = _label_one(job)
    if err is None:
        problem = _pickling_error(labels)
        if problem is None:
            return labels, None
        return None, _stand_in(problem, "the result cannot be sent back from the worker process: ")
    return (None, err) if _pickling_error(err) is None else (None, _stand_in(err))


def _stand_in(err, prefix=""):
    """A picklable ``ValueError`` for ``err``: message ``prefix`` + ``"TypeName: message"``, and ``err``'s
    formatted traceback (a str) as its ``traceback`` attribute."""
    stand_in = ValueError(f"{prefix}{type(err).__name__}: {err}")
    stand_in.traceback = "".join(traceback.format_exception(err))
    return stand_in


def _plain_arrays(value) -> bool:
    """Whether ``value`` is arrays of numbers, alone or in a tuple or list: they always pickle and load back."""
    parts = value if isinstance(value, (tuple, list)) else (value,)
    return all(isinstance(a, np.ndarray) and not a.dtype.hasobject for a in parts)


def _pickling_error(value):
    """The exception that pickling ``value`` and loading it back raises, or None when it survives
    (`_plain_arrays` always do)."""
    if _plain_arrays(value):
        return None
    try:
        pickle.loads(pickle.dumps(value))
    except Exception as err:  # noqa: BLE001 - pickling raises many kinds; reported per item
        return err
    return None


class _Unsendable:
    """Stands in for an item that cannot be pickled to a worker; the worker reports ``reason`` for it."""

    def __init__(self, reason: str):
        self.reason = reason


class _Parcel:
    """``value`` pickled on its own inside a job, when the job is sent: a worker that cannot load it (a class or
    function of the parent's ``if __name__ == "__main__":`` block, or of a script read from stdin, pickles in
    the parent but not in a spawned worker) gets an `_Unsendable` for it instead of dying with the whole call."""

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return _unpack, (pickle.dumps(self.value),)


def _unpack(data: bytes):
    try:
        return pickle.loads(data)
    except Exception as err:  # noqa: BLE001 - loading raises many kinds; reported per item
        return _Unsendable(f"it cannot be loaded in a worker process ({type(err).__name__}: {err}); workers import "
                           "the main script as a module, so what it defines under `if __name__ == \"__main__\":` "
                           "or reads from stdin is not there")


def _sendable(item):
    """``item`` (arrays of numbers as they are, anything else in a `_Parcel`), or an `_Unsendable` saying why it
    cannot be pickled and loaded back."""
    problem = _pickling_error(item)
    if problem is not None:
        return _Unsendable(f"the item cannot be sent to a worker process: {type(problem).__name__}: {problem}")
    return item if _plain_arrays(item) else _Parcel(item)


def _pair(item):
    """``item`` as ``(sigma, occ)``; a ``ValueError`` saying what it is otherwise."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        what = f"a {len(item)}-item {type(item).__name__}" if isinstance(item, (tuple, list)) else type(item).__name__
        raise ValueError(f"an item must be a (sigma, occ) pair, got {what}")
    return item


def solve_many(inputs, method="solve", processes=None, on_done=None, threads=None, **kwargs):
    """Label many ``(sigma, occ)`` pairs in parallel.

    Args:
      inputs: iterable of ``(sigma, occ)`` pairs, ``float (H, W)`` and ``bool (H, W, 4)`` (sizes may differ).
      method: ``"solve"`` (``crf.solve``, the default), ``"jump"`` (``crf.jump_moves``), ``"expansion"``
        (``crf.expansion_moves``) or a picklable callable ``f(sigma, occ, **kwargs) -> int32 (H, W)``.
      processes: worker processes; ``None`` uses every core this process may run on, ``1`` labels in this
        process.
      on_done: optional ``f()`` called after each image is labelled (progress display).
      threads: instead of processes, label in this many threads of this process (``processes`` must then be
        None): the solvers release the GIL, so threads run at once with no worker start and nothing pickled
        (no ``__main__`` guard needed; a callable ``method`` that holds the GIL gains nothing). ``1`` labels in
        this thread.
      **kwargs: passed to the solver (e.g. ``lam``, ``mu``).

    Returns:
      list of ``int32 (H, W)`` labelings, in input order. Workers are started with ``spawn`` so that a
      parent holding threads (e.g. JAX) is never forked, and kept for the next call (`close_pool`). Calls from
      several threads may run at once: one asking for another ``processes``, or `close_pool`, replaces the
      kept workers, and those still serving another call stop when it ends.

    Raises:
      BatchError: (a ``ValueError``) when some items failed; it names each failed item's index (the errors of
        the first five), and carries the other items' labelings (``results``) and the errors (``failures``).
        With ``processes > 1`` an error or a result that does not survive pickling back from the worker is
        reported as a ``ValueError`` ``"TypeName: message"`` carrying the worker's traceback text as
        ``traceback``; an item that cannot be pickled to a worker fails with a ``ValueError`` saying so.
      ValueError: before any work, for an unknown ``method``, ``inputs`` that are not an iterable (a string
        neither), an ``on_done`` that is not callable, or bad ``processes`` / ``threads``.
    """
    solver = _resolve(method)
    if on_done is not None and not callable(on_done):
        raise ValueError(f"on_done must be None or a function of no arguments, got {on_done!r}")
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Iterable):
        raise ValueError(f"inputs must be an iterable of CRF inputs (one per image), got {type(inputs).__name__}")
    jobs = [((solver, kwargs), item) for item in inputs]
    if threads is not None:
        if processes is not None:
            raise ValueError(f"give processes or threads, not both (got processes={processes!r}, threads={threads!r})")
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"threads must be None (processes instead) or an int >= 1, got {threads!r}")
        if threads == 1 or len(jobs) <= 1:
            return _collect(map(_label_one, jobs), on_done)
        with concurrent.futures.ThreadPoolExecutor(min(int(threads), len(jobs)), "crf.solve_many") as executor:
            return _collect(executor.map(_label_one, jobs), on_done)
    processes = usable_cores() if processes is None else processes
    if isinstance(processes, bool) or not isinstance(processes, (int, np.integer)) or processes < 1:
        raise ValueError(f"processes must be None (every core) or an int >= 1, got {processes!r}")
    if processes == 1 or len(jobs) <= 1:
        return _collect(map(_label_one, jobs), on_done)
    problem = _pickling_error((solver, kwargs))
    if problem is not None:
        raise ValueError(f"crf.solve_many: with processes > 1 the method and its keyword arguments must be "
                         f"picklable (a module-level function): {type(problem).__name__}: {problem}") from problem
    method = _Parcel((solver, kwargs))
    jobs = [(method, _sendable(item)) for _, item in jobs]
    workers = min(processes, len(jobs))
    with _kept_pool(processes) as executor:
        try:
            return _collect(executor.map(_label_in_worker, jobs, chunksize=max(1, len(jobs) // (8 * workers))),
                            on_done)
        except concurrent.futures.process.BrokenProcessPool as err:
            _forget(executor)  # the next call starts new workers
            raise concurrent.futures.process.BrokenProcessPool(
                f"crf.solve_many: a worker process died while labelling {len(jobs)} items (killed, out of memory "
                "or crashed); no result of this call is kept. Workers are spawned and import the main script: a "
                "script that starts this work at import time, outside `if __name__ == \"__main__\":`, crashes "
                "every one of them, as does a main script that cannot be imported (one read from stdin; use "
                "processes=1 there)") from err


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the system has one), else every core."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# The kept executor, the number of processes it was made for and the process that made it. _USERS counts the
# solve_many calls using each executor (the kept one and those replaced while in use); both change only under
# _POOL_LOCK.
_POOL = {"executor": None, "processes": 0, "pid": 0}
_USERS = {}
_POOL_LOCK = threading.Lock()


@contextlib.contextmanager
def _kept_pool(processes):
    """The kept executor of up to ``processes`` spawned workers (started as work arrives), counted as in use
    until the block ends. It is replaced when a call asks for another size, when a worker died since the last
    call (the executor is then broken for good), or when this is a forked child of the process that made it;
    an executor replaced (or dropped by `close_pool`) while other calls use it is shut down when the last of
    them ends, so that no call loses its work to another thread's."""
    with _POOL_LOCK:
        executor, idle = _POOL["executor"], None
        if executor is not None and ((_POOL["processes"], _POOL["pid"]) != (processes, os.getpid())
                                     or getattr(executor, "_broken", False)):
            idle = _retire_locked()
        if _POOL["executor"] is None:
            context = multiprocessing.get_context("spawn")
            _POOL.update(executor=concurrent.futures.ProcessPoolExecutor(
                processes, mp_context=context, initializer=exit_with_parent, initargs=(os.getpid(),)),
                processes=processes, pid=os.getpid())
        executor = _POOL["executor"]
        _USERS[executor] = _USERS.get(executor, 0) + 1
    try:
        _shutdown(idle)
        yield executor
    finally:
        with _POOL_LOCK:
            _USERS[executor] -= 1
            idle = None
            if _USERS[executor] == 0:  # its last call: shut it down now unless it is still the kept one
                del _USERS[executor]
                idle = None if executor is _POOL["executor"] else executor
        _shutdown(idle)


def exit_with_parent(parent: int, every: float = 1.0) -> None:
    """A pool worker's initializer: a daemon thread ends the worker within ``every`` seconds of its parent
    process ``parent`` ending. A parent killed (e.g. for memory) cannot shut its pool down, and its workers,
    blocked in a long labelling or adopted by another process, would otherwise stay with their memory."""
    def watch():
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="exit_with_parent", daemon=True).start()


def close_pool():
    """Stop the worker processes `solve_many` keeps between calls (the next call starts new ones). Workers
    serving a call still running in another thread stop when that call ends."""
    with _POOL_LOCK:
        idle = _retire_locked()
    _shutdown(idle)


def _forget(executor):
    """Stop handing out ``executor`` (its workers died); the calls using it shut it down as they end."""
    with _POOL_LOCK:
        if _POOL["executor"] is executor:
            _POOL["executor"] = None


def _retire_locked():
    """Drop the kept executor; returns it when no call uses it (to shut down now), else None (the last call
    using it shuts it down). A forked child only forgets its parent's executors."""
    executor, _POOL["executor"] = _POOL["executor"], None
    if _POOL["pid"] != os.getpid():
        _USERS.clear()  # the calls of the parent's threads, which this child does not have
        return None
    return None if executor is None or _USERS.get(executor) else executor


def _shutdown(executor):
    """Shut ``executor`` (None: nothing) down; no call uses it any more, so nothing it still holds is wanted."""
    if executor is not None:
        executor.shutdown(wait=True, cancel_futures=True)


def _collect(labelings, on_done):
    results, failures = [], {}
    for i, (labels, err) in enumerate(labelings):
        results.append(labels)
        if err is not None:
            failures[i] = err
        if on_done is not None:
            on_done()
    if failures:
        raise BatchError(results, failures) from failures[min(failures)]
    return results
