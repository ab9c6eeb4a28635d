"""The runnable example of the crf package docstring (it lists ``crf.solve``, the default minimiser)."""

import doctest

import crf


def test_package_docstring_example_runs():
    assert "solve(" in crf.__doc__
    result = doctest.testmod(crf)
    assert result.attempted > 0 and result.failed == 0
