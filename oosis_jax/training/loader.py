"""The batches of a `grain.MapDataset` (e.g. `input_pipeline.train_dataset`), prepared ahead in threads of this
process or in spawned worker processes: the same batches, in the same order, either way.

Augmentation and targets are numpy code that holds the GIL, so threads add up to about one core; a GPU's step
needs processes (`oosis_jax.training.configs.TrainConfig.loader_processes`, RESULTS.md "The GPU check on a lent
H200": 68 images/s in 16 threads, 776 in 15 processes).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys

import cloudpickle
import grain
from absl import flags

from crf.batch import exit_with_parent


def _worker_setup(worker_index: int, worker_count: int) -> None:
    """In each loader worker: SIGINT and SIGTERM are the main process's to answer (a Ctrl-C or a scheduler's
    SIGTERM reaches the whole process group; on a SIGTERM the training loop saves the step under way, for which it
    may still need a batch; a Ctrl-C ends the run, its last checkpoint kept, and the loop closes the workers);
    the worker ends when the iterator is closed, or within a second of the main process dying (grain's
    workers do not notice that themselves and would run on as orphans)."""
    del worker_index, worker_count
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    exit_with_parent(multiprocessing.parent_process().pid)  # as the CRF's and the evaluation's workers do


def iterate(dataset: grain.MapDataset, start: int = 0, num_threads: int = 4, num_processes: int = 0):
    """Iterator over ``dataset[start:]`` with ``num_threads`` worker threads prefetching ahead, or, when
    ``num_processes`` > 0, that many spawned worker processes (grain's ``mp_prefetch``; one thread each: the
    transforms hold the GIL) computing every ``num_processes``-th element. The elements are the same, in the same
    order, either way. ``close()`` the iterator to end its workers (else they end when it is collected, at exit,
    or when this process dies; they ignore SIGINT and SIGTERM, which are this process's to answer, from the end of
    their start-up: a signal sent to the process group in a worker's first seconds, before it has made anything,
    still ends it, and the next batch is then an error).

    Worker processes are spawned: each imports the main module again from its file, so a script that builds the
    iterator must do so under ``if __name__ == "__main__":`` (else each worker runs the script again and fails),
    and a script read from stdin is refused (``ValueError``), as is a dataset the workers cannot receive
    (``ValueError`` naming why cloudpickle cannot send it). The first call marks absl's flags as parsed when
    nothing has parsed them (grain reads one of them as it starts the workers)."""
    if num_processes == 0:
        options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * max(num_threads, 1))
        return iter(dataset[start:].to_iter_dataset(options))
    main = sys.modules["__main__"]  # spawned workers import it again: by module name (-m, a zipapp), else by path
    main_file = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is None and main_file is not None and not os.path.exists(
            os.path.join(multiprocessing.process.ORIGINAL_DIR or "", main_file)):
        raise ValueError(f"worker processes for the batches re-import the main module from its file, but it is "
                         f"{main_file!r} (a script read from stdin?): run it from a file, or load in threads "
                         "(loader_processes=0)")
    if not flags.FLAGS.is_parsed():  # grain reads an absl flag when it starts workers; argparse programs never
        flags.FLAGS.mark_as_parsed()  # parse absl's, so its defaults are taken as given
    try:  # as grain sends it to each worker: fail here, naming what cannot go, not at the first batch
        cloudpickle.dumps(dataset)
    except Exception as err:  # pickling raises TypeError, AttributeError, PicklingError, ...
        raise ValueError(f"the loader's worker processes need the dataset pickled, and it cannot be "
                         f"({type(err).__name__}: {err}): make the source picklable (open files and locks when "
                         "first read, not in __init__), or load in threads (loader_processes=0)") from err
    stream = dataset[start:].to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))
    return iter(stream.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_processes),
                                   worker_init_fn=_worker_setup))
