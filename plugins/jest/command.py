"""Compiling a slice's selection into Jest runs.

Jest selects in two independent dimensions: files (``--runTestsByPath`` takes them as literal
paths, never as regular expressions) and names (``--testNamePattern``, one regular expression
for the whole run, matched case-insensitively against every test of every file). A selection
that narrows different files to different names therefore cannot always be one run: a pattern
``x|y`` for "file A wants x, file B wants y" would also run B's x. :func:`plan_runs` groups files
by the exact set of names they want, so each run's pattern selects in each of its files exactly
the wanted tests, and cuts a group into several runs when its command line would be too long.

One limit is Jest's own: it compiles the pattern with the ``i`` flag, and Node 20's regular
expressions have no way to turn that off inside a pattern. Selecting ``Foo`` in a file that also
has a test ``foo`` runs both; the parser reports only the selected one. Likewise a name selects
every test of a file with that name: when the selection holds only some of several same-named
tests (``TestCase.occurrence``), Jest runs them all and dagpar reports the selected ones.

Every run also loads dagpar's reporter (:mod:`dagpar_plugins.jest.stream`), written into the
report directory, first in ``--reporters`` and followed by Jest's ``default`` one. Reporters
given on the command line replace those of the project's configuration, so a project's own
reporters (``jest-junit``) do not run in dagpar's slices; dagpar writes the JUnit.

A slice is one of dagpar's workers, so its runs are in band (``--maxWorkers=1``: the tests run in
the Jest process itself) unless the toolchain's arguments choose Jest's workers themselves
(``-w``, ``--maxWorkers``, ``-i``, ``--runInBand``). Without it, Jest would start its own pool in
every slice (the CPU count less one, or the project's ``maxWorkers``) whenever a slice holds
more than one slow file or more than twenty files: workers times slices processes, each paying
the start-up of a Jest worker, on a machine whose cores dagpar's slices already fill.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dagpar_cli import REPORT_DIR_PLACEHOLDER, ExecutionError, RunnerCommand, RunnerSpec, Selection

from .names import (
    PROGRESS_ENV,
    REPORTER_FILE,
    STREAM_ENV,
    SUITE_FAILED,
    progress_file,
    reporter_source,
    stream_file,
)

__all__ = [
    "IN_BAND",
    "MAX_COMMAND_BYTES",
    "JestRun",
    "chooses_workers",
    "collect_args",
    "compile_commands",
    "escape_name",
    "find_jest",
    "name_pattern",
    "path_arg",
    "plan_runs",
    "run_args",
]

#: Budget for one command line, in bytes. Linux refuses a single argument over 128 KiB
#: (``MAX_ARG_STRLEN``) and a whole command over ``ARG_MAX`` (usually 2 MiB, environment
#: included); staying well under the first keeps the name pattern legal and leaves room for
#: a large environment.
MAX_COMMAND_BYTES = 100_000

#: A name pattern no test name can match (an empty negative look-ahead always fails).
_MATCH_NOTHING = "(?!)"
#: Arguments every Jest invocation gets: no watch mode, no interactive snapshot writing, and
#: every selected test runs even when the project's configuration says ``bail``.
_COMMON = ("--ci", "--json", "--watchAll=false", "--no-bail")
#: What runs a slice's tests in the Jest process itself (see the module documentation).
IN_BAND = "--maxWorkers=1"
#: Options with which the toolchain's arguments choose Jest's workers (then left to them).
_WORKER_OPTIONS = ("-w", "--maxWorkers", "--max-workers", "-i", "--runInBand", "--run-in-band")

# Every character with a meaning in a JavaScript regular expression outside a class. Jest builds
# the pattern with `new RegExp(pattern, "i")` (no "u" flag), where escaping these is always valid.
_REGEX_SPECIAL = re.compile(r"[\\^$.*+?()[\]{}|/]")


@dataclass(frozen=True, slots=True)
class JestRun:
    """One Jest invocation of a slice.

    :param files: the test files, relative to the source directory, in selection order.
    :param names: the exact test names to run in each file, or None to run the files whole.
    """

    files: tuple[str, ...]
    names: tuple[str, ...] | None = None

    @property
    def pattern(self) -> str | None:
        """The ``--testNamePattern`` value, or None when the files run whole."""
        return None if self.names is None else name_pattern(self.names)


def escape_name(name: str) -> str:
    """*name* as a JavaScript regular expression that matches exactly that text."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), name)


def name_pattern(names: Sequence[str]) -> str:
    """An anchored alternation matching exactly *names* (and nothing that merely contains one)."""
    return "^(?:" + "|".join(escape_name(n) for n in names) + ")$"


def path_arg(path: str) -> str:
    """*path* as a Jest argument, ``./`` in front: a leading ``-`` or a number stays a path."""
    return path if path.startswith(("./", "../", "/")) else f"./{path}"


def _wanted(selection: Selection) -> dict[str, set[str] | None]:
    """Per file, the names it must run, or None for the whole file; files in selection order."""
    wanted: dict[str, set[str] | None] = {}
    if selection.tests is None:
        for item in selection.items:
            if not item:
                continue
            path, finer = item[0], "::".join(item[1:])
            if not finer or finer == SUITE_FAILED:
                wanted[path] = None
            elif path not in wanted:
                wanted[path] = {finer}
            elif (names := wanted[path]) is not None:
                names.add(finer)
        return wanted
    # Files first in item order, so that commands list them the way the plan does.
    order = {item[0]: i for i, item in reversed(list(enumerate(selection.items))) if item}
    for test in sorted(selection.tests, key=lambda t: order.get(t.path, len(order))):
        if test.name == SUITE_FAILED:
            # The file could not be loaded when it was listed: only a whole run can report it.
            wanted[test.path] = None
        elif test.path not in wanted:
            wanted[test.path] = {test.name}
        elif (names := wanted[test.path]) is not None:
            names.add(test.name)
    return wanted


def _size(args: Sequence[str]) -> int:
    return sum(len(a.encode("utf-8")) + 1 for a in args)


def _chunks(
    values: Sequence[str], budget: int, size: Callable[[str], int]
) -> list[tuple[str, ...]]:
    """*values* cut into consecutive runs whose total ``size`` fits *budget*.

    A single value larger than the budget still gets a chunk of its own: splitting it would
    change its meaning, and the kernel, not dagpar, is then the judge.
    """
    chunks: list[tuple[str, ...]] = []
    current: list[str] = []
    used = 0
    for value in values:
        cost = size(value)
        if current and used + cost > budget:
            chunks.append(tuple(current))
            current, used = [], 0
        current.append(value)
        used += cost
    if current:
        chunks.append(tuple(current))
    return chunks


def _path_size(path: str) -> int:
    return len(path_arg(path).encode("utf-8")) + 1


def _name_size(name: str) -> int:
    return len(escape_name(name).encode("utf-8")) + 1


def plan_runs(
    selection: Selection,
    *,
    fixed_args: Sequence[str] = (),
    limit: int = MAX_COMMAND_BYTES,
) -> list[JestRun]:
    """The Jest runs that together run exactly the selected tests, each test once.

    Files run whole share runs; narrowed files share a run only with files that want the very
    same names. A group whose command line would exceed *limit* bytes is cut: its files into
    several runs, and a long name list into several patterns (each with every file of the
    group; the names are disjoint, so no test runs twice).

    :param selection: the slice's selection.
    :param fixed_args: the arguments every run has besides files and pattern (for the budget).
    :param limit: the budget for one command line, in bytes.
    """
    wanted = _wanted(selection)
    whole = [path for path, names in wanted.items() if names is None]
    groups: dict[tuple[str, ...], list[str]] = {}
    for path, wanted_names in wanted.items():
        if wanted_names:
            groups.setdefault(tuple(sorted(wanted_names)), []).append(path)

    budget = max(limit - _size(fixed_args) - len("--testNamePattern=^(?:)$ "), 1)
    runs = [JestRun(files=files) for files in _chunks(whole, budget, _path_size)]
    for names, paths in groups.items():
        # Half the budget at most for the pattern, so that files fit next to it.
        for chunk in _chunks(names, budget // 2, _name_size):
            file_budget = max(budget - sum(map(_name_size, chunk)), 1)
            for files in _chunks(paths, file_budget, _path_size):
                runs.append(JestRun(files=files, names=chunk))
    return runs


def find_jest(spec: RunnerSpec) -> tuple[str, ...]:
    """The command that starts Jest for *spec*, relative to its source directory.

    :raises ExecutionError: when there is no override and no ``node_modules/.bin/jest`` in the
        source directory or above it up to the workspace root.
    """
    if spec.command:
        return tuple(spec.command)
    source = spec.source_dir
    directories = [source, *source.parents]
    try:
        depth_limit = len(source.relative_to(spec.workspace).parts)
    except ValueError:
        depth_limit = 0  # a source outside the workspace: look only in the source itself
    for depth, directory in enumerate(directories[: depth_limit + 1]):
        if (directory / "node_modules" / ".bin" / "jest").exists():
            return (("../" * depth or "./") + "node_modules/.bin/jest",)
    where = spec.source or "."
    raise ExecutionError(
        f"Jest is not installed for {where}: no node_modules/.bin/jest there or above it up to "
        f"the workspace root; run `npm ci` in {where}/ (or set this toolchain's `runner:`)"
    )


def collect_args(spec: RunnerSpec) -> list[str]:
    """The listing command: a run whose name pattern matches nothing, report on stdout."""
    return [
        *find_jest(spec),
        *_COMMON,
        "--silent",
        "--coverage=false",
        "--passWithNoTests",
        # A file that opens a server at import time must not keep the listing waiting.
        "--forceExit",
        *spec.args,
        f"--testNamePattern={_MATCH_NOTHING}",
    ]


def chooses_workers(args: Sequence[str]) -> bool:
    """Whether *args* set how many workers Jest uses (``-w 2``, ``-w2``, ``--maxWorkers=50%``)."""
    for arg in args:
        if arg == "--":
            return False
        option = arg.split("=", 1)[0]
        if option in _WORKER_OPTIONS or (arg.startswith("-w") and arg[2:].isdigit()):
            return True
    return False


def run_args(spec: RunnerSpec, run: JestRun, index: int) -> list[str]:
    """The command line of one Jest run, writing ``{report_dir}/jest-<index>.json``."""
    argv = [
        *find_jest(spec),
        *_COMMON,
        *(() if chooses_workers(spec.args) else (IN_BAND,)),
        f"--outputFile={REPORT_DIR_PLACEHOLDER}/jest-{index}.json",
        f"--reporters={REPORT_DIR_PLACEHOLDER}/{REPORTER_FILE}",
        "--reporters=default",
        *spec.args,
        "--runTestsByPath",
    ]
    if run.pattern is not None:
        argv.append(f"--testNamePattern={run.pattern}")
    argv.extend(path_arg(p) for p in run.files)
    return argv


def compile_commands(spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
    """The Jest runs that execute exactly *selection* (see :func:`plan_runs`)."""
    fixed = run_args(spec, JestRun(files=()), 0)
    commands: list[RunnerCommand] = []
    # The budget is read at call time, so that a test can lower it to exercise batching.
    runs = plan_runs(selection, fixed_args=fixed, limit=MAX_COMMAND_BYTES)
    exact = _exact_tests(selection)
    reporter = reporter_source()
    for index, run in enumerate(runs, start=1):
        files: list[dict[str, Any]] = []
        for path in run.files:
            entry: dict[str, Any] = {"path": path, "names": run.names}
            pairs = exact.get(path)
            if run.names is not None and pairs is not None:
                chunk = set(run.names)
                entry["tests"] = [[n, k] for n, k in pairs if n in chunk]
            files.append(entry)
        wanted = {"files": files}
        # The engine substitutes {report_dir} in file contents too; a test named with that text
        # keeps it when its "{" is a JSON escape.
        text = json.dumps(wanted, ensure_ascii=False).replace(
            REPORT_DIR_PLACEHOLDER, "\\u007b" + REPORT_DIR_PLACEHOLDER[1:]
        )
        commands.append(
            RunnerCommand(
                argv=tuple(run_args(spec, run, index)),
                env={
                    STREAM_ENV: f"{REPORT_DIR_PLACEHOLDER}/{stream_file(index)}",
                    PROGRESS_ENV: f"{REPORT_DIR_PLACEHOLDER}/{progress_file(index)}",
                },
                files={f"jest-{index}.selection.json": text, REPORTER_FILE: reporter},
            )
        )
    return commands


def _exact_tests(selection: Selection) -> dict[str, list[tuple[str, int]]]:
    """Per narrowed file, the ``(name, occurrence)`` tests the selection holds, in its order."""
    exact: dict[str, list[tuple[str, int]]] = {}
    for test in selection.tests or ():
        if test.name != SUITE_FAILED:
            exact.setdefault(test.path, []).append((test.name, test.occurrence))
    return exact
