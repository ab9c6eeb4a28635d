"""Labelling many images on all CPU cores with a process pool (whole-dataset evaluation).

No progress display here (the package needs numpy and numba only): pass ``on_done``, e.g. a tqdm bar's
``update``, to be called once per labelled image.

The pool is kept between calls: starting a worker costs about a second (a fresh interpreter importing numpy
and loading the compiled kernels), which a caller labelling a large dataset chunk by chunk would otherwise pay
on every chunk. `close_pool` stops it early; it stops at interpreter exit anyway.
"""

import concurrent.futures
import multiprocessing
import os
import pickle
import threading

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
        self.results, self.failures = results, failures
        named = "; ".join(f"item {i}: {type(err).__name__}: {err}" for i, err in sorted(failures.items())[:5])
        rest = sorted(failures)[5:]
        more = f"; and items {', '.join(map(str, rest))}" if rest else ""
        super().__init__(f"{source}: {len(failures)} of {len(results)} items failed: {named}{more}")


def _label_one(job):
    """``(labels, None)``, or ``(None, exception)`` when the item is not a pair or the solver raised, so one item
    never sinks the rest."""
    solver, item, kwargs = job
    try:
        if isinstance(item, _Unsendable):
            raise ValueError(item.reason)
        sigma, occ = _pair(item)
        return solver(sigma, occ, **kwargs), None
    except Exception as err:  # noqa: BLE001 - reported per item by BatchError
        return None, err


class _Unsendable:
    """Stands in for an item that cannot be pickled to a worker; the worker reports ``reason`` for it."""

    def __init__(self, reason: str):
        self.reason = reason


def _sendable(item):
    """``item``, or an `_Unsendable` saying why it cannot be pickled (arrays of numbers always can)."""
    if isinstance(item, (tuple, list)) and all(isinstance(a, np.ndarray) and a.dtype != object for a in item):
        return item
    try:
        pickle.dumps(item)
    except Exception as err:  # noqa: BLE001 - pickling raises many kinds; reported per item
        return _Unsendable(f"the item cannot be sent to a worker process: {type(err).__name__}: {err}")
    return item


def _pair(item):
    """``item`` as ``(sigma, occ)``; a ``ValueError`` saying what it is otherwise."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        what = f"a {len(item)}-item {type(item).__name__}" if isinstance(item, (tuple, list)) else type(item).__name__
        raise ValueError(f"an item must be a (sigma, occ) pair, got {what}")
    return item


def solve_many(inputs, method="solve", processes=None, on_done=None, **kwargs):
    """Label many ``(sigma, occ)`` pairs in parallel.

    Args:
      inputs: iterable of ``(sigma, occ)`` pairs, ``float (H, W)`` and ``bool (H, W, 4)`` (sizes may differ).
      method: ``"solve"`` (``crf.solve``, the default), ``"jump"`` (``crf.jump_moves``), ``"expansion"``
        (``crf.expansion_moves``) or a picklable callable ``f(sigma, occ, **kwargs) -> int32 (H, W)``.
      processes: worker processes; ``None`` uses every core, ``1`` labels in this process.
      on_done: optional ``f()`` called after each image is labelled (progress display).
      **kwargs: passed to the solver (e.g. ``lam``, ``mu``).

    Returns:
      list of ``int32 (H, W)`` labelings, in input order. Workers are started with ``spawn`` so that a
      parent holding threads (e.g. JAX) is never forked, and kept for the next call (`close_pool`).

    Raises:
      BatchError: (a ``ValueError``) when some items failed; it names each failed item's index (the errors of
        the first five), and carries the other items' labelings (``results``) and the errors (``failures``).
    """
    solver = _resolve(method)
    jobs = [(solver, item, kwargs) for item in inputs]
    processes = (os.cpu_count() or 1) if processes is None else processes
    if isinstance(processes, bool) or not isinstance(processes, (int, np.integer)) or processes < 1:
        raise ValueError(f"processes must be None (every core) or an int >= 1, got {processes!r}")
    if processes == 1 or len(jobs) <= 1:
        return _collect(map(_label_one, jobs), on_done)
    try:
        pickle.dumps((solver, kwargs))
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"crf.solve_many: with processes > 1 the method and its keyword arguments must be "
                         f"picklable (a module-level function): {type(err).__name__}: {err}") from err
    jobs = [(solver, _sendable(item), kwargs) for _, item, kwargs in jobs]
    workers = min(processes, len(jobs))
    try:
        return _collect(_pool(processes).map(_label_one, jobs, chunksize=max(1, len(jobs) // (8 * workers))),
                        on_done)
    except concurrent.futures.process.BrokenProcessPool as err:
        close_pool()  # the next call starts new workers
        raise concurrent.futures.process.BrokenProcessPool(
            f"crf.solve_many: a worker process died while labelling {len(jobs)} items (killed, out of memory or "
            "crashed); no result of this call is kept") from err


_POOL = {"executor": None, "processes": 0, "pid": 0}
_POOL_LOCK = threading.Lock()


def _pool(processes):
    """The kept pool of up to ``processes`` spawned workers (started as work arrives), replaced when a call
    asks for another size, when a worker died since the last call (the executor is then broken for good), or
    when this is a forked child of the process that made it."""
    with _POOL_LOCK:
        executor = _POOL["executor"]
        if executor is not None and ((_POOL["processes"], _POOL["pid"]) != (processes, os.getpid())
                                     or getattr(executor, "_broken", False)):
            _shutdown_locked()
        if _POOL["executor"] is None:
            context = multiprocessing.get_context("spawn")
            executor = concurrent.futures.ProcessPoolExecutor(processes, mp_context=context)
            _POOL.update(executor=executor, processes=processes, pid=os.getpid())
        return _POOL["executor"]


def close_pool():
    """Stop the worker processes `solve_many` keeps between calls (the next call starts new ones)."""
    with _POOL_LOCK:
        _shutdown_locked()


def _shutdown_locked():
    executor, _POOL["executor"] = _POOL["executor"], None
    if executor is not None and _POOL["pid"] == os.getpid():
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
