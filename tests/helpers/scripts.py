"""Python scripts run in a fresh interpreter, for what one process cannot show (another JAX device count)."""

import os
import subprocess
import sys
from pathlib import Path


def run_script(script: str, *args: str, timeout: int = 300, **env: str) -> str:
    """The stdout of ``script`` (with ``args``) run by a fresh Python on JAX's CPU platform, in this process's
    environment less its device settings (``XLA_FLAGS``, ``JAX_NUM_CPU_DEVICES``) plus ``env``; a non-zero
    exit fails the test with the script's stderr."""
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    result = subprocess.run([sys.executable, "-c", script, *args], env=dict(base, JAX_PLATFORMS="cpu", **env),
                            capture_output=True, text=True, timeout=timeout,
                            cwd=Path(__file__).resolve().parents[2])  # the repository root: its packages import
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
