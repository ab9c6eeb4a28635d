"""Assertions on how the experiment scripts end."""

import contextlib

import pytest


@contextlib.contextmanager
def usage_error(match: str):
    """The block ends its command for a mistake of the user's: ``SystemExit`` whose text matches ``match`` and
    whose exit status is 2 (`experiments.flags.UsageError`, as argparse's own errors)."""
    with pytest.raises(SystemExit, match=match) as stop:
        yield
    assert stop.value.code == 2, f"exit status {stop.value.code!r}, expected 2"
