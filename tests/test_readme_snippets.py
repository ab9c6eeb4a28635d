"""The README's Python snippets are scripts a user can paste and run: the CRF one is run as written; the
Predictor one (about 40 s on 2 cores, tested through its calls elsewhere) is checked to parse, to keep its work
under the ``__main__`` guard the CRF's spawned workers need, and to call only names that exist."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snippets() -> dict[str, str]:
    """The README's python blocks, keyed by their first import line."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return {next(line for line in block.splitlines() if "import" in line): block for block in blocks}


def _guarded(block: str) -> bool:
    tree = ast.parse(block)
    top = [node for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom))]
    return len(top) == 1 and isinstance(top[0], ast.If) and "__main__" in ast.unparse(top[0].test)


def test_the_crf_snippet_runs_as_a_script(tmp_path):
    block = snippets()["import numpy as np"]
    assert _guarded(block)
    script = tmp_path / "crf_snippet.py"
    script.write_text(block)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    first, last = run.stdout.splitlines()[0], run.stdout.split()
    assert first == "True" and int(last[-4]) > 0  # the energy claim holds, and the scene has instances


def test_the_predictor_snippet_is_guarded_and_calls_what_exists():
    from oosis_jax import Predictor

    block = snippets()["from oosis_jax import Predictor"]
    assert _guarded(block)
    for name in re.findall(r"predictor\.(\w+)\(", block) + re.findall(r"Predictor\.(\w+)\(", block):
        assert callable(getattr(Predictor, name, None)), name
