"""Labelling many images on all CPU cores with a process pool (whole-dataset evaluation).

No progress display here (the package needs numpy and numba only): pass ``on_done``, e.g. a tqdm bar's
``update``, to be called once per labelled image.
"""

import concurrent.futures
import multiprocessing
import os

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


def _label_one(job):
    solver, sigma, occ, kwargs = job
    return solver(sigma, occ, **kwargs)


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
      parent holding threads (e.g. JAX) is never forked.
    """
    solver = _resolve(method)
    jobs = [(solver, sigma, occ, kwargs) for sigma, occ in inputs]
    processes = (os.cpu_count() or 1) if processes is None else processes
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if processes == 1 or len(jobs) <= 1:
        return _collect(map(_label_one, jobs), on_done)
    context = multiprocessing.get_context("spawn")
    workers = min(processes, len(jobs))
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return _collect(pool.map(_label_one, jobs, chunksize=max(1, len(jobs) // (8 * workers))), on_done)


def _collect(labelings, on_done):
    results = []
    for labels in labelings:
        results.append(labels)
        if on_done is not None:
            on_done()
    return results
