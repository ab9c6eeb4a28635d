"""Silences three tensorflow-datasets log lines that only describe this project's own choices or say again
what its own error says.

`silence()` (called when every tfds builder of ``data`` and ``data.loading`` are imported) adds one filter to
the ``absl`` logger, through which tfds logs: our builders always take a custom config ("Using custom data
configuration"), images are decoded with PIL on purpose ("OpenCV is not installed"), and a dataset not built
(or not finished) is named by ``data.loading``'s error with the command that builds it, after tfds's own line
about the folder it looked in ("Variant folder ... has no dataset_info.json"). Every other message passes.
"""

from __future__ import annotations

import logging


class QuietTfds(logging.Filter):
    """Drops the records whose message starts with one of `MESSAGES`, or with the start and end of one of
    `FRAMED` (tfds's other "Variant folder" lines, an invalid version or no features.json, still pass)."""

    MESSAGES = ("Using custom data configuration", "OpenCV is not installed")
    FRAMED = (("Variant folder ", " has no dataset_info.json"),)

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(self.MESSAGES):
            return False
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: logging reports it, not us
            return True
        return not any(text.startswith(start) and text.endswith(end) for start, end in self.FRAMED)


def silence() -> None:
    """Adds a `QuietTfds` filter to the ``absl`` logger, once."""
    absl = logging.getLogger("absl")
    if not any(isinstance(f, QuietTfds) for f in absl.filters):
        absl.addFilter(QuietTfds())
