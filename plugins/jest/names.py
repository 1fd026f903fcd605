"""The names a Jest slice's command shares with the modules that read what it wrote.

Compiling a slice's commands needs only these constants and the reporter's source; they live
here, away from :mod:`.report` and :mod:`.stream` (and their dataclasses and regular
expressions), so that a slice starts Jest without importing the code that reads its results.
Those modules re-export every name, so importing them from there keeps working.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = [
    "PROGRESS_ENV",
    "REPORTER_FILE",
    "STREAM_ENV",
    "SUITE_FAILED",
    "progress_file",
    "reporter_source",
    "stream_file",
]

#: The name dagpar gives a test file that Jest could not load: it stands for the whole file, so
#: that a broken file is listed, selected, run and reported as an error instead of vanishing.
SUITE_FAILED = "(test suite failed to run)"

#: The environment variable that names the file the reporter appends records to.
STREAM_ENV = "DAGPAR_JEST_STREAM"
#: The environment variable that names the file the reporter appends one byte per test to.
PROGRESS_ENV = "DAGPAR_JEST_PROGRESS"
#: The reporter's file name in the report directory.
REPORTER_FILE = "dagpar-jest-reporter.js"


def stream_file(index: int) -> str:
    """The record file of run *index* of a slice, in its report directory."""
    return f"jest-{index}.events.jsonl"


def progress_file(index: int) -> str:
    """The progress file of run *index* of a slice, in its report directory."""
    return f"jest-{index}.progress"


@functools.cache
def reporter_source() -> str:
    """The reporter module's JavaScript source (``stream_reporter.js``, next to this module)."""
    shipped = Path(__file__).with_name("stream_reporter.js")
    try:
        return shipped.read_text(encoding="utf-8")
    except OSError:  # not a plain directory (a zip import): ask the package's loader
        from importlib import resources

        return resources.files(__package__).joinpath("stream_reporter.js").read_text("utf-8")
