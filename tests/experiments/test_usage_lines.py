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


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_docstring_with_backslashes_is_raw(name):
    """A usage example continued with `` \\`` at a line's end lost the backslash and the line break in --help (its
    two lines printed as one) unless the module docstring is a raw string."""
    import io
    import tokenize

    source = (Path(experiments.__file__).parent / f"{name}.py").read_text()
    first = next(t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.STRING)
    assert "\\" not in first.string or first.string.lower().startswith("r"), first.string[:80]
