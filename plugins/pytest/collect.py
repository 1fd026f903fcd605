"""Listing tests with ``pytest --collect-only``, and reading its output into dagpar's test list.

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

from dagpar_cli import ExecutionError, RunnerHost, RunnerSpec, TestCase

from .interpreter import find_pytest
from .paths import RootdirMap, path_exists

__all__ = ["COLLECTION_ERROR", "COLLECT_TIMEOUT", "list_tests", "parse_collect_output"]

#: Seconds the listing may take before it counts as hung.
COLLECT_TIMEOUT = 600.0

# pytest exit codes (pytest.ExitCode): OK, INTERRUPTED (collection errors; the listing is still
# printed), NO_TESTS_COLLECTED.
_EXIT_OK, _EXIT_INTERRUPTED, _EXIT_NO_TESTS = 0, 2, 5

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
    files = _Files(rootdirs)
    #: Lines since the last node id that hold none: the start of a path with a newline, maybe.
    pending: list[str] = []
    # Only "\n" ends a line: a file name may hold a carriage return (or other line breaks
    # that str.splitlines() would split at).
    for line in stdout.split("\n"):
        if line.startswith(("=", "!")):
            # The first section header ends the listing; only the summary section matters after.
            in_listing = False
            in_summary = "short test summary info" in line
            continue
        if in_listing:
            if "::" in line and (pending or not line[:1].isspace()):
                nodeid, used = files.join(pending, line)
                # The lines the path did not take continue the name of the test before.
                _continue_name(nodeids, pending[: len(pending) - used])
                pending = []
                if nodeid is not None:
                    nodeids.append(nodeid)
            elif line:
                pending.append(line)
            else:
                # A blank line ends the listing ("N tests collected" follows): lines before it
                # continue the last test's name (ids with raw newlines).
                _continue_name(nodeids, pending)
                pending = []
                in_listing = False
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


def _continue_name(nodeids: list[tuple[str, str]], lines: list[str]) -> None:
    """Append *lines* to the last node id's name: it holds raw newlines (pytest's option that
    disables id escaping); lines before any node id are a plugin's stray output."""
    if nodeids and lines:
        path, name = nodeids[-1]
        nodeids[-1] = (path, "\n".join([name, *lines]))


class _Files:
    """Which ``::`` in a node id ends its file part, asked of the files on disk (cached)."""

    def __init__(self, rootdirs: RootdirMap) -> None:
        self.rootdirs = rootdirs
        self._known: dict[str, bool] = {}

    def is_file(self, path: str) -> bool:
        """Whether *path* (rootdir-relative) is a file under one of the candidate rootdirs."""
        known = self._known.get(path)
        if known is None:
            known = any(_is_file(c / path) for c in self.rootdirs.candidates)
            self._known[path] = known
        return known

    def split(self, nodeid: str) -> tuple[str, str] | None:
        """``(path, name)``: the path is the shortest ``::``-separated head that is a file
        (a file name may hold ``::``); the first ``::`` when none is."""
        parts = nodeid.split("::")
        if len(parts) < 2:
            return None
        if len(parts) > 2:  # else there is only one way to cut it
            for cut in range(1, len(parts)):
                head = "::".join(parts[:cut])
                if self.is_file(head):
                    return head, "::".join(parts[cut:])
        return parts[0], "::".join(parts[1:])

    def join(self, pending: list[str], line: str) -> tuple[tuple[str, str] | None, int]:
        """The node id that ends on *line*, and how many of the *pending* lines before it
        start it: its file name holds newlines (pytest prints it raw)."""
        for count in range(len(pending), 0, -1):
            candidate = "\n".join([*pending[-count:], line])
            split = self.split(candidate)
            if split is not None and self.is_file(split[0]):
                return split, count
        if line[:1].isspace():
            return None, 0  # a stray line a plugin printed
        return self.split(line), 0


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _tail(text: str, lines: int = 5) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


def list_tests(spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
    """List every test of the source tree with ``pytest --collect-only`` (see the package doc).

    :raises ExecutionError: when pytest cannot start, hangs, or fails without listing anything.
    """
    argv = (
        *find_pytest(spec),
        *spec.args,
        "--collect-only",
        # After the user's arguments, so that theirs cannot change the listing's form
        # (``-v``), stop it at the first broken file (``-x``), or colour it.
        "--verbosity=-1",
        "--maxfail=0",
        "-p",
        "no:cacheprovider",
        "--color=no",
        "-rfE",
    )
    outcome = host.run(argv, timeout=COLLECT_TIMEOUT)
    command = " ".join(argv)
    if outcome.not_started:
        raise ExecutionError(
            f"cannot start pytest ({command}): {_tail(outcome.stderr, 1)}; "
            "install pytest or set `runner:` for this toolchain in dagpar.yaml"
        )
    if outcome.timed_out:
        raise ExecutionError(f"listing tests timed out after {COLLECT_TIMEOUT:.0f}s: {command}")
    tests = parse_collect_output(outcome.stdout, RootdirMap(spec.source_dir, spec.args))
    code = outcome.exit_code
    if code in (_EXIT_OK, _EXIT_NO_TESTS) or (code == _EXIT_INTERRUPTED and tests):
        return tests
    if "No module named pytest" in outcome.stderr:
        raise ExecutionError(
            f"{argv[0]} has no pytest: install pytest into that environment, "
            "or set `runner:` for this toolchain in dagpar.yaml"
        )
    detail = _tail(outcome.stderr) or _tail(outcome.stdout)
    raise ExecutionError(f"listing tests failed (pytest exit code {code}): {command}: {detail}")
