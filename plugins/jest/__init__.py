"""The Jest runner plugin: list, select, run and read Jest tests.

Registered through the ``dagpar`` entry-point group like any third-party runner; every runner hook
answers None unless ``spec.name == "jest"``.

Finding Jest
    The way a user runs it: the toolchain's ``runner:`` override (``spec.command``) when set,
    otherwise the project's own ``node_modules/.bin/jest``, searched from the source directory up
    to the workspace root. The command names it relative to the source directory, so the same
    command works on the host and in a container that mounts the workspace.

Test names
    A test's name is its describe titles and its own title joined by one space, the string Jest
    matches ``--testNamePattern`` against (its ``fullName``). Two tests of one file with the same
    name cannot be selected apart by Jest, so they are listed once and reported as one result
    (failed if any failed, passed if any passed, else skipped; seconds added up). A file Jest
    cannot load is listed as one test named :data:`SUITE_FAILED`, so it is run and reported as
    an error rather than silently dropped.

Listing
    One Jest run whose name pattern matches nothing (``--testNamePattern=(?!)``, report on
    standard output): Jest loads every test file (the describe blocks run, so ``test.each``
    tables expand) and reports every test as skipped without running a single test body or
    hook. Files are listed in path order, tests in definition order.

Running
    ``jest --ci --json --watchAll=false --no-bail --outputFile={report_dir}/jest-K.json
    [args] --runTestsByPath [--testNamePattern=^(?:a|b)$] ./file...`` (see
    :mod:`dagpar_plugins.jest.command` for when one slice needs several runs). Exit codes 0
    and 1 (a test failed) mean Jest ran; a missing report gives error results. Next to each
    report, ``jest-K.selection.json`` records what the run was asked for, so that parsing reports
    exactly the selected tests even though Jest also lists the ones its name filter skipped.
    Slices share Jest's default cache directory: Jest writes transform-cache entries atomically
    and rebuilds a haste map it cannot read, and a warm shared cache saves every slice from
    transforming the same sources again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import Outcome
from dagpar_cli.model import (
    REPORT_DIR,
    RunnerCommand,
    RunnerSpec,
    Selection,
    Status,
    TestCase,
    TestResult,
)
from dagpar_cli.pluginmanager import ToolchainRegistry, hookimpl
from dagpar_cli.runners import RunnerHost

from . import command as _jest_command
from .command import JestRun, path_arg, plan_runs
from .report import (
    SUITE_FAILED,
    AssertionReport,
    FileReport,
    ReportError,
    first_line,
    load_report,
    report_from_stdout,
)

__all__ = [
    "NAME",
    "SUITE_FAILED",
    "collect_args",
    "dagpar_detect_toolchains",
    "dagpar_register_toolchains",
    "dagpar_runner_collect",
    "dagpar_runner_command",
    "dagpar_runner_parse",
    "find_jest",
    "run_args",
]

#: The runner's name (``use: jest``, ``RunnerSpec.name``).
NAME = "jest"

#: A name pattern no test name can match (an empty negative look-ahead always fails).
_MATCH_NOTHING = "(?!)"
#: Arguments every Jest invocation gets: no watch mode, no interactive snapshot writing, and
#: every selected test runs even when the project's configuration says ``bail``.
_COMMON = ("--ci", "--json", "--watchAll=false", "--no-bail")
_REPORT = re.compile(r"^jest-(\d+)\.json$")
_CONFIG_FILES = tuple(f"jest.config.{ext}" for ext in ("js", "ts", "mjs", "cjs", "cts", "json"))


# --------------------------------------------------------------------------------------------
# registration and detection
# --------------------------------------------------------------------------------------------


@hookimpl
def dagpar_register_toolchains(registry: ToolchainRegistry) -> None:
    """Register the built-in ``jest`` toolchain."""
    registry.add(NAME, "dagpar_toolchains.jest")


def _uses_jest(directory: Path) -> str | None:
    """The file that shows *directory* is a Jest project (relative to it), or None."""
    manifest = directory / "package.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if isinstance(data, dict):
            if "jest" in data:
                return "package.json"
            for key in ("devDependencies", "dependencies"):
                deps = data.get(key)
                if isinstance(deps, dict) and "jest" in deps:
                    return "package.json"
    for name in _CONFIG_FILES:
        if (directory / name).is_file():
            return name
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "web"


@hookimpl
def dagpar_detect_toolchains(workspace: Path) -> list[dict[str, Any]] | None:
    """Jest projects at the workspace root and in its direct subdirectories.

    A directory is a Jest project when its ``package.json`` names ``jest`` in ``dependencies`` or
    ``devDependencies`` or has a ``jest`` key, or when it holds a ``jest.config.*`` file. A
    single project is instance ``jest``; with several, the root one is ``jest`` and the others
    ``jest-<directory>``.
    """
    found: list[tuple[str, str]] = []
    why = _uses_jest(workspace)
    if why is not None:
        found.append((".", why))
    try:
        children = sorted(p for p in workspace.iterdir() if p.is_dir())
    except OSError:
        children = []
    for child in children:
        if child.name.startswith(".") or child.name == "node_modules":
            continue
        why = _uses_jest(child)
        if why is not None:
            found.append((child.name, f"{child.name}/{why}"))
    entries: list[dict[str, Any]] = []
    taken: set[str] = set()
    for source, why in found:
        base = NAME if len(found) == 1 or source == "." else f"{NAME}-{_slug(source)}"
        instance, n = base, 2
        while instance in taken:
            instance, n = f"{base}-{n}", n + 1
        taken.add(instance)
        entries.append({"instance": instance, "use": NAME, "source": source, "why": why})
    return entries


# --------------------------------------------------------------------------------------------
# finding Jest
# --------------------------------------------------------------------------------------------


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


def run_args(spec: RunnerSpec, run: JestRun, index: int) -> list[str]:
    """The command line of one Jest run, writing ``{report_dir}/jest-<index>.json``."""
    argv = [
        *find_jest(spec),
        *_COMMON,
        f"--outputFile={REPORT_DIR}/jest-{index}.json",
        *spec.args,
        "--runTestsByPath",
    ]
    if run.pattern is not None:
        argv.append(f"--testNamePattern={run.pattern}")
    argv.extend(path_arg(p) for p in run.files)
    return argv


# --------------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------------


def _relative_paths(
    paths: Iterable[str], spec: RunnerSpec, known: Iterable[str] = ()
) -> dict[str, str]:
    """Jest's absolute *paths*, each relative to the source directory.

    Jest may report real paths (symlinks resolved), or, when it runs in a container, paths under
    wherever the container mounts the source. A path under neither form of the source directory
    loses the same number of leading parts as the others: the number under which the most paths
    name a *known* file or a file of the source directory on the host (so a stray
    ``web/__tests__/a.test.js`` in the source cannot capture ``/app/web/__tests__/a.test.js``).
    A path that matches nothing stays as Jest wrote it, visible rather than guessed.
    """
    roots = [spec.source_dir.as_posix(), spec.source_dir.resolve().as_posix()]
    known_set = set(known)

    def exists(candidate: str) -> bool:
        try:
            return candidate in known_set or (spec.source_dir / candidate).is_file()
        except OSError:  # a name the OS rejects: a part over 255 bytes
            return False

    mapped: dict[str, str] = {}
    foreign: list[tuple[str, tuple[str, ...]]] = []
    for path in paths:
        pure = PurePosixPath(path)
        for root in roots:
            if pure.is_relative_to(root):
                mapped[path] = pure.relative_to(root).as_posix()
                break
        else:
            foreign.append((path, pure.parts))
    if foreign:
        depth = max(len(parts) for _, parts in foreign)
        hits = {
            drop: sum(1 for _, parts in foreign if exists("/".join(parts[drop:])))
            for drop in range(1, depth)
        }
        best = max(hits, key=lambda drop: (hits[drop], -drop)) if hits else 1
        for path, parts in foreign:
            candidate = "/".join(parts[best:])
            if not exists(candidate):
                found = (
                    c for c in ("/".join(parts[d:]) for d in range(1, len(parts))) if exists(c)
                )
                candidate = next(found, path)
            mapped[path] = candidate
    return mapped


# --------------------------------------------------------------------------------------------
# collect
# --------------------------------------------------------------------------------------------


def tests_of(files: list[FileReport], spec: RunnerSpec) -> list[TestCase]:
    """The tests of a listing run, files by path, tests in definition order, names unique."""
    cases: list[TestCase] = []
    relative = _relative_paths((f.path for f in files), spec)
    for path, report in sorted(((relative[f.path], f) for f in files), key=lambda pf: pf[0]):
        if report.failed_to_run:
            cases.append(TestCase(path, SUITE_FAILED))
            continue
        seen: set[str] = set()
        for test in report.tests:
            if test.name not in seen:
                seen.add(test.name)
                cases.append(TestCase(path, test.name))
    return cases


def _tail(text: str, lines: int = 5) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(line.strip() for line in kept[-lines:])


@hookimpl
def dagpar_runner_collect(spec: RunnerSpec, host: RunnerHost) -> list[TestCase] | None:
    """List every Jest test without running one (see the module docstring)."""
    if spec.name != NAME:
        return None
    argv = collect_args(spec)
    outcome = host.run(argv)
    where = spec.source or "."
    if outcome.not_started:
        raise ExecutionError(f"cannot start Jest ({argv[0]}) in {where}: {_tail(outcome.stderr)}")
    if outcome.timed_out:
        raise ExecutionError(f"listing Jest tests in {where} timed out")
    try:
        files = report_from_stdout(outcome.stdout)
    except ReportError as exc:
        raise ExecutionError(
            f"listing Jest tests in {where} failed (exit {outcome.exit_code}): {exc}: "
            f"{_tail(outcome.stderr) or _tail(outcome.stdout)}"
        ) from None
    return tests_of(files, spec)


# --------------------------------------------------------------------------------------------
# command
# --------------------------------------------------------------------------------------------


@hookimpl
def dagpar_runner_command(spec: RunnerSpec, selection: Selection) -> list[RunnerCommand] | None:
    """The Jest runs that execute exactly *selection* (see :func:`plan_runs`)."""
    if spec.name != NAME:
        return None
    fixed = run_args(spec, JestRun(files=()), 0)
    commands: list[RunnerCommand] = []
    # Read the budget at call time, so that it can be lowered to exercise batching.
    runs = plan_runs(selection, fixed_args=fixed, limit=_jest_command.MAX_COMMAND_BYTES)
    for index, run in enumerate(runs, start=1):
        wanted = {"files": [{"path": p, "names": run.names} for p in run.files]}
        # The engine substitutes {report_dir} in file contents too; a test named with that text
        # keeps it when its "{" is a JSON escape.
        text = json.dumps(wanted, ensure_ascii=False).replace(
            REPORT_DIR, "\\u007b" + REPORT_DIR[1:]
        )
        commands.append(
            RunnerCommand(
                argv=tuple(run_args(spec, run, index)),
                files={f"jest-{index}.selection.json": text},
            )
        )
    return commands


# --------------------------------------------------------------------------------------------
# parse
# --------------------------------------------------------------------------------------------

_STATUSES = {
    "passed": Status.PASSED,
    "failed": Status.FAILED,
    "pending": Status.SKIPPED,
    "skipped": Status.SKIPPED,
    "disabled": Status.SKIPPED,
    "todo": Status.SKIPPED,
}


_SUITE_HEADERS = ("Test suite failed to run",)


def _suite_message(text: str) -> str:
    """The one line that says why a file failed to run.

    For a file Jest cannot parse, the first line is a generic "Jest encountered an unexpected
    token" and the real cause (``SyntaxError: file: Unexpected token (5:0)``) follows
    ``Details:``; prefer it.
    """
    _, details, after = text.partition("\n    Details:\n")
    return first_line(after if details else text, skip=_SUITE_HEADERS) or "test file failed"


def _merge(path: str, name: str, tests: list[AssertionReport], file_error: str) -> TestResult:
    """One result for the tests of one file that share a name (usually exactly one)."""
    seconds = sum(t.seconds for t in tests)
    statuses = [_STATUSES.get(t.status) for t in tests]
    unknown = [t.status for t, s in zip(tests, statuses, strict=True) if s is None]
    if unknown:
        return TestResult(
            path=path,
            name=name,
            status=Status.ERROR,
            seconds=seconds,
            message=f"Jest reported an unknown status {unknown[0]!r}",
        )
    failing = [t for t in tests if t.status == "failed"]
    if failing:
        details = "\n\n".join(f for t in failing for f in t.failures)
        return TestResult(
            path=path,
            name=name,
            status=Status.FAILED,
            seconds=seconds,
            message=first_line(details) or "failed",
            details=details,
        )
    if Status.PASSED in statuses:
        if file_error:
            # The tests passed but the file failed (an error after them, e.g. an unhandled
            # rejection): Jest fails the run, so must dagpar.
            return TestResult(
                path=path,
                name=name,
                status=Status.ERROR,
                seconds=seconds,
                message=_suite_message(file_error),
                details=file_error,
            )
        return TestResult(path=path, name=name, status=Status.PASSED, seconds=seconds)
    todo = any(t.status == "todo" for t in tests)
    return TestResult(
        path=path,
        name=name,
        status=Status.SKIPPED,
        seconds=seconds,
        message="todo" if todo else "",
    )


def _errors(
    path: str, names: list[str] | None, message: str, details: str = "", seconds: float = 0.0
) -> list[TestResult]:
    """Error results for a file that did not run: its wanted tests, or the file itself."""
    return [
        TestResult(
            path=path,
            name=name,
            status=Status.ERROR,
            seconds=seconds,
            message=message,
            details=details,
        )
        for name in (names if names else [SUITE_FAILED])
    ]


def _wanted(report_dir: Path, index: str) -> dict[str, list[str] | None] | None:
    """What run *index* was asked for (path → names or None), or None when unknown."""
    manifest = report_dir / f"jest-{index}.selection.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        wanted = {entry["path"]: entry["names"] for entry in data["files"]}
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    for path, names in wanted.items():
        # Only what run_args wrote counts: a path, and a list of names or null.
        if not isinstance(path, str) or not (
            names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names))
        ):
            return None
    return wanted


def _file_results(report: FileReport, path: str, names: list[str] | None) -> list[TestResult]:
    """The results of one file of one report, restricted to *names* when given."""
    if report.failed_to_run:
        message = _suite_message(report.message)
        return _errors(path, names, message, report.message, report.seconds)
    wanted = set(names) if names is not None else None
    by_name: dict[str, list[AssertionReport]] = {}
    for test in report.tests:
        # Tests outside the wanted names were skipped by the name filter, not by the project.
        if wanted is None or test.name in wanted:
            by_name.setdefault(test.name, []).append(test)
    file_error = report.message if report.status == "failed" else ""
    if file_error and any(t.status == "failed" for t in report.tests):
        file_error = ""  # the message is the formatted test failures themselves
    results = [_merge(path, name, tests, file_error) for name, tests in by_name.items()]
    for name in sorted((wanted or set()) - set(by_name)):
        results.append(
            TestResult(
                path=path,
                name=name,
                status=Status.ERROR,
                message="Jest did not report this test (renamed or removed since it was listed?)",
            )
        )
    return results


def _parse_one(
    report_dir: Path, index: str, spec: RunnerSpec, outcome: Outcome
) -> list[TestResult]:
    report_file = report_dir / f"jest-{index}.json"
    wanted = _wanted(report_dir, index)
    try:
        files = load_report(report_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        reason = f"Jest wrote no report {report_file.name} (exit {outcome.exit_code})"
        tail = outcome.stderr.strip()
        last = tail.splitlines()[-1].strip() if tail else ""
        reason = f"{reason}: {last}" if last else reason
    except (OSError, UnicodeDecodeError, ReportError) as exc:
        reason = f"Jest's report {report_file.name} is unreadable: {exc}"
        tail = outcome.stderr.strip()
    else:
        return _results(files, wanted, spec)
    if wanted is None:
        return _errors(report_file.name, None, reason, tail)
    return [r for path, names in wanted.items() for r in _errors(path, names, reason, tail)]


def _results(
    files: list[FileReport], wanted: dict[str, list[str] | None] | None, spec: RunnerSpec
) -> list[TestResult]:
    """The results of one parsed report, restricted to what its run was asked for."""
    results: list[TestResult] = []
    reported: set[str] = set()
    relative = _relative_paths((f.path for f in files), spec, wanted or ())
    for report in files:
        path = relative[report.path]
        reported.add(path)
        names = wanted.get(path) if wanted is not None else None
        results.extend(_file_results(report, path, names))
    for path, names in (wanted or {}).items():
        if path not in reported:
            results.extend(
                _errors(path, names, "Jest did not run this file (not a test file for Jest?)")
            )
    return results


@hookimpl
def dagpar_runner_parse(
    spec: RunnerSpec, report_dir: Path, outcome: Outcome
) -> list[TestResult] | None:
    """Read every ``jest-K.json`` of the slice into per-test results.

    A run that wrote no report (Jest crashed, bad configuration) yields error results for what it
    was asked to run, with the end of Jest's output as the message.
    """
    if spec.name != NAME:
        return None
    indexes: set[str] = set()
    if report_dir.is_dir():
        for entry in report_dir.iterdir():
            match = _REPORT.match(entry.name)
            if match:
                indexes.add(match.group(1))
            elif entry.name.endswith(".selection.json") and entry.name.startswith("jest-"):
                indexes.add(entry.name[len("jest-") : -len(".selection.json")])
    results: list[TestResult] = []
    for index in sorted(indexes, key=lambda i: (len(i), i)):
        results.extend(_parse_one(report_dir, index, spec, outcome))
    return results
