"""Stopping a training run cleanly when it is told to end (a cluster's preemption notice, ``kill``: SIGTERM).

A scheduler that preempts or ends a job (SLURM, Kubernetes, Cloud TPU maintenance) sends SIGTERM and, a grace
period later, SIGKILL. Left to its default, SIGTERM ends the process at once and loses every step since the
last checkpoint (``checkpoint_every`` steps, an hour of a long run). Inside `Preemption` the notice is noted
instead; the training loop asks `Preemption.reached` after each step, saves that step and raises `Preempted`,
and the run resumes from it with the same command (`oosis_jax.training.loop.train` resumes by itself).

With several processes the processes must agree on the step they save: JAX's preemption service (started by
``jax.distributed.initialize``) catches SIGTERM on any of them and names one step for all
(``multihost_utils.reached_preemption_sync_point``, asked through orbax's ``CheckpointManager``), which must be
asked at every step.
"""

from __future__ import annotations

import signal
import threading

import jax


class Preempted(RuntimeError):
    """A run stopped by a preemption notice after saving its step (``step``); running it again resumes it."""

    def __init__(self, step: int, workdir: str):
        super().__init__(f"{workdir}: stopped by a preemption notice (SIGTERM) after saving step {step}; the same "
                         "command resumes the run from there")
        self.step = step


class Preemption:
    """``with Preemption() as notice: ... notice.reached(mngr, step)``: one process notes SIGTERM (on the main
    thread; elsewhere, e.g. in a notebook's worker thread, signals cannot be caught and SIGTERM keeps its
    effect), several ask JAX's preemption service. The previous handler is put back on leaving."""

    def __init__(self):
        self._received = False
        self._previous = None

    def __enter__(self) -> Preemption:
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._note)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _note(self, signum, frame) -> None:
        self._received = True

    def reached(self, mngr, step: int) -> bool:
        """Whether to save ``step`` and stop: a notice has come (one process), or every process has reached the
        step JAX's preemption service chose (several; call it at every step on every process)."""
        if jax.process_count() > 1:
            return bool(mngr.reached_preemption(step))
        return self._received
