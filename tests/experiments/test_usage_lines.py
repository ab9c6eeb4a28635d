"""Every command line of ``experiments`` says in its usage line how it is run (``python -m experiments.NAME``,
from the repository's root), not the file name argparse would take from ``sys.argv[0]``."""

import importlib
import re
from pathlib import Path

import pytest

import experiments

SCRIPTS = sorted(p.stem for p in Path(experiments.__file__).parent.glob("*.py")
                 if re.search(r"^def main\(argv=None\)", p.read_text(), re.MULTILINE))


def test_the_scripts_are_found():
    assert {"train", "evaluate", "predict", "demo", "crf_on_gt", "bench_crf"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_usage_line_names_the_module(name, capsys):
    module = importlib.import_module(f"experiments.{name}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m experiments.{name} ")
