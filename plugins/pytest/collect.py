"""Reading ``pytest --collect-only`` output into dagpar's test list.

The listing is the flat ``-q`` form (``--verbosity=-1``): one node id per line, then sections
(``ERRORS``, ``short test summary info``, warnings). A file that fails to import lists no tests;
so that the file is not silently dropped, each collection error becomes one test named
:data:`COLLECTION_ERROR` in the broken file: selecting it (or the whole file) makes the slice run
the file, and pytest's report of the error comes back as that test's ``error`` result.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dagpar_cli.model import TestCase

from .paths import RootdirMap, path_exists

__all__ = ["COLLECTION_ERROR", "parse_collect_output"]

#: The name of the stand-in test for a file (or directory) that pytest could not collect.
COLLECTION_ERROR = "<collection error>"

# The "short test summary info" line of a collection error: ``ERROR path[ - message]``; pytest
# prints *path* relative to its invocation directory, i.e. already source-relative.
_ERROR_LINE = re.compile(r"^ERROR (?P<rest>.+)$")


def _error_path(rest: str, source_dir: Path) -> str:
    """The path of a summary ``ERROR`` line, whose message may follow after `` - ``."""
    # A path may itself contain " - "; the longest prefix that exists on disk is the path.
    cuts = [m.start() for m in re.finditer(" - ", rest)]
    for cut in reversed(cuts):
        if path_exists(source_dir / rest[:cut]):
            return rest[:cut]
    if path_exists(source_dir / rest) or not cuts:
        return rest
    return rest[: cuts[0]]


def parse_collect_output(stdout: str, rootdirs: RootdirMap) -> list[TestCase]:
    """The tests (and collection errors) of one ``--collect-only --verbosity=-1`` run.

    :param stdout: pytest's standard output.
    :param rootdirs: maps rootdir-relative node-id paths to source-relative paths.
    :returns: tests in pytest's order, then one :data:`COLLECTION_ERROR` test per broken path
        (in the order pytest reported them).
    """
    nodeids: list[tuple[str, str]] = []
    errors: list[str] = []
    in_listing = True
    in_summary = False
    for line in stdout.splitlines():
        if line.startswith(("=", "!")):
            # The first section header ends the listing; only the summary section matters after.
            in_listing = False
            in_summary = "short test summary info" in line
            continue
        if in_listing:
            # Node ids never start with white space; tolerate stray lines plugins print.
            if "::" in line and not line[:1].isspace():
                path, name = line.split("::", 1)
                nodeids.append((path, name))
        elif in_summary:
            match = _ERROR_LINE.match(line)
            if match:
                errors.append(_error_path(match["rest"], rootdirs.source_dir))
    rootdirs.fit(path for path, _ in nodeids)
    tests = [TestCase(path=rootdirs.map(path), name=name) for path, name in nodeids]
    seen: set[str] = set()
    for error in errors:
        path = os.path.normpath(error).replace(os.sep, "/")
        if path not in seen:
            seen.add(path)
            tests.append(TestCase(path=path, name=COLLECTION_ERROR))
    return tests
