"""Stopping a training run cleanly when it is told to end (a cluster's preemption notice, ``kill``: SIGTERM).

A scheduler that preempts or ends a job (SLURM, Kubernetes, Cloud TPU maintenance) sends SIGTERM and, a grace
period later, SIGKILL. Left to its default, SIGTERM ends the process at once and loses every step since the
last checkpoint (``checkpoint_every`` steps, an hour of a long run). While a `Preemption` listens the notice is
noted instead; the training loop asks `Preemption.reached` after each step, saves that step and raises
`Preempted`, and the run resumes from it with the same command (`oosis_jax.training.loop.train` resumes by
itself).

With several processes the processes must agree on the step they save: JAX's preemption service (started by
``jax.distributed.initialize``) catches SIGTERM on any of them and names one step for all
(``multihost_utils.reached_preemption_sync_point``, asked through orbax's ``CheckpointManager``): the step after
the highest one any process has asked about, so it is asked first with the restored step and then at every step.
A notice that comes before that first question (while a resumed run restores its checkpoint) names step 1, which
a resumed run never reaches: it then goes on until SIGKILL, as without this module.
"""

from __future__ import annotations

import signal
import threading

import jax


class Preempted(RuntimeError):
    """A run stopped by a preemption notice after saving its step ``step`` in ``workdir``; running it again
    resumes it."""

    EXIT_STATUS = 128 + signal.SIGTERM  # a command line's status: the one a shell gives a process SIGTERM ended

    def __init__(self, step: int, workdir: str):
        super().__init__(f"{workdir}: stopped by a preemption notice (SIGTERM) after saving step {step}; the same "
                         "command resumes the run from there")
        self.step, self.workdir = step, workdir

    def __reduce__(self):
        return type(self), (self.step, self.workdir)


class Preemption:
    """``notice.listen(mngr, start)``, ``notice.reached(mngr, step)`` after each step, ``notice.close()`` once the
    last save is on disk. One process notes SIGTERM (on the main thread; elsewhere, e.g. in a notebook's worker
    thread, signals cannot be caught and SIGTERM keeps its effect); several ask JAX's preemption service. A noted
    notice that no `reached` answered (it came during the last step) is sent again on `close`, under the
    previous handler, so that a caller that goes on (the demo's evaluation) is still stopped."""

    def __init__(self):
        self._received = self._answered = False
        self._previous = None

    def listen(self, mngr, step: int) -> None:
        """Start noting notices; ``step``: the run's restored step (0 for a new run)."""
        if jax.process_count() > 1:
            mngr.reached_preemption(step)  # the service's count starts from the first step asked
        elif threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._note)

    def _note(self, signum, frame) -> None:
        self._received = True

    def reached(self, mngr, step: int) -> bool:
        """Whether to save ``step`` and stop: a notice has come (one process), or every process has reached the
        step JAX's preemption service chose (several; ask at every step on every process). A True answer must
        be acted on."""
        answer = bool(mngr.reached_preemption(step)) if jax.process_count() > 1 else self._received
        self._answered = self._answered or answer
        return answer

    def close(self) -> None:
        """Put the previous SIGTERM handler back (and send a notice no answer acted on again)."""
        if self._previous is None:
            return
        signal.signal(signal.SIGTERM, self._previous)
        self._previous = None
        if self._received and not self._answered:
            signal.raise_signal(signal.SIGTERM)
