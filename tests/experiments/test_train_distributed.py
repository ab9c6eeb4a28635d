"""`python -m experiments.train --distributed` as 2 JAX processes on this machine (CPU devices, gloo collectives),
the way a run spans hosts: a run stopped by a preemption notice to one process (both stop at one saved step), its
resume over that step damaged, and a refused resume, each handled the same on every process (before, only process 0
set the damaged step aside, and process 1 then failed to save it while process 0 waited for it; a refused config
stopped process 0 alone), and the validation, whose network and boundary matchings the processes share out,
checked against one process computing it all. That a resume gives the weights of a straight run is tested with
one process (``tests/oosis_jax/training/test_checkpoint_recovery.py``)."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from helpers.checkpoints import truncate_data_files
from oosis_jax.training import checkpointing, validation
from oosis_jax.training import loop as train

ROOT = Path(__file__).resolve().parents[2]
# the smoke preset's 6 steps, doubled: JAX's preemption sync point, agreed between the processes some steps after
# the notice, reached the last step on a loaded machine (and then nothing is preempted)
STEPS = 12


# experiments.train whose process 1 gets SIGTERM after step 2, as a scheduler's preemption notice
PREEMPTED = """
import os, signal, sys
import jax
from experiments import train as cli
from oosis_jax.training import loop

run = loop.train

def notice(step):
    if step == 2 and jax.process_index() == 1:
        os.kill(os.getpid(), signal.SIGTERM)

loop.train = lambda config, workdir: run(config, workdir, on_step=notice)
cli.main(sys.argv[1:])
"""


def launch(workdir, *extra, script=None):
    """Exit statuses and outputs of the 2 processes of ``experiments.train --config smoke --distributed`` (or of
    ``script``, a Python program given the same arguments)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="1")
    program = ["-c", script] if script else ["-m", "experiments.train"]
    procs = [subprocess.Popen(
        [sys.executable, *program, "--config", "smoke", "--workdir", str(workdir), "--distributed",
         "--coordinator-address", f"localhost:{port}", "--num-processes", "2", "--process-id", str(i),
         "--set", f"num_steps={STEPS}", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        outputs = [proc.communicate(timeout=150)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [proc.returncode for proc in procs], outputs


def validation_again(workdir):
    """The validation of ``workdir``'s newest step, computed again by this one process (its devices split each
    batch as the 2 processes' devices did)."""
    config = checkpointing.read_config(str(workdir))
    mesh = train.make_mesh()
    mngr = checkpointing.manager(str(workdir))
    try:
        state = checkpointing.restore_latest(mngr, train.state_template(config, NamedSharding(mesh, P())))
    finally:
        mngr.close()
    _, eval_step = train.jitted_steps(config, STEPS)
    batches = validation.batches(config, train.open_sources(config)[1])
    return validation.evaluate(eval_step, state, batches, mesh, train.step_keys(config))


def test_two_processes_stop_together_resume_over_a_damaged_step_and_refuse_another_config(tmp_path):
    workdir = tmp_path / "run"
    codes, outputs = launch(workdir, script=PREEMPTED)  # a notice to process 1 stops both at one saved step
    assert codes == [143, 143], outputs
    stopped = {re.search(r"after saving step (\d+); the same command resumes", out).group(1) for out in outputs}
    assert len(stopped) == 1 and 2 < int(*stopped) < STEPS and (workdir / "checkpoints" / next(iter(stopped))).is_dir()

    step = stopped.pop()
    truncate_data_files(workdir / "checkpoints" / step)  # and a kill cut its save short
    codes, outputs = launch(workdir)
    assert codes == [0, 0], outputs
    assert all(f"checkpoint step {step} in " in out and "is damaged" in out for out in outputs)
    assert sorted(os.listdir(workdir / "damaged")) == [f"step_{step}"]  # moved once, by process 0
    assert [f"finished at step {STEPS}" in out for out in outputs] == [True, False]  # process 0 reports, once
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records]
    assert steps == sorted(steps) and steps[-1] == STEPS  # one log, written by process 0
    # each process computed and matched its image of the batch of 2; the gathered numbers are one process's
    logged = next(r for r in records if "val_boundary_ods" in r and r["step"] == STEPS)
    again = validation_again(workdir)
    assert again["val_boundary_ods"] > 0
    for key, value in again.items():
        np.testing.assert_allclose(logged[key], value, rtol=1e-4, err_msg=key)

    shutil.rmtree(workdir / "damaged")
    codes, outputs = launch(workdir, "--set", "base_lr=0.02")
    assert codes == [2, 2], outputs
    for out in outputs:
        assert "holds a different configuration than this run (base_lr: 0.05 -> 0.02)" in out, out


def test_the_processes_of_a_distributed_run_must_be_named_or_found():
    def run(*args):
        env = {key: value for key, value in os.environ.items() if not key.startswith(("SLURM_", "OMPI_", "JAX_COORD"))}
        return subprocess.run([sys.executable, "-m", "experiments.train", "--config", "smoke", "--workdir",
                               "unused", *args], cwd=ROOT, env=dict(env, JAX_PLATFORMS="cpu"), capture_output=True,
                              text=True, timeout=120)

    proc = run("--num-processes", "2")
    assert proc.returncode == 2 and "--num-processes name the processes of a --distributed run" in proc.stderr
    proc = run("--distributed", "--num-processes", "2", "--process-id", "2")
    assert proc.returncode == 2 and "--process-id 2 is not one of the 2 processes (0 to 1)" in proc.stderr
    proc = run("--distributed")  # no cluster manager here, and no --coordinator-address / --num-processes
    assert proc.returncode == 2 and "error: --distributed: ValueError:" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr  # the usage line and one error, no traceback
    assert not (ROOT / "unused").exists()
