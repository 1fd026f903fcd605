"""The Jest runner plugin: list, select, run and read Jest tests.

Registered through the ``dagpar`` entry-point group like any third-party runner: it registers
:class:`JestRunner` under the name ``jest``, and the built-in ``jest`` toolchain.

Finding Jest
    The way a user runs it: the toolchain's ``runner:`` override (``spec.command``) when set,
    otherwise the project's own ``node_modules/.bin/jest``, searched from the source directory up
    to the workspace root. The command names it relative to the source directory, so the same
    command works on the host and in a container that mounts the workspace.

Test names
    A test's name is its describe titles and its own title joined by one space, the string Jest
    matches ``--testNamePattern`` against (its ``fullName``). Several tests of one file may share
    a name (a loop registering ``test("same", ...)``): Jest runs and reports each, and so does
    dagpar, numbering them by ``occurrence`` (0, 1, ... in the file's order; the id of the second
    is ``path::same::#2``). Jest cannot select one of them apart from the others: a selection
    holding some of them runs them all and reports the selected ones. A file Jest cannot load is
    listed as one test named :data:`SUITE_FAILED`, so it is run and reported as an error rather
    than silently dropped.

Listing
    One Jest run whose name pattern matches nothing (``--testNamePattern=(?!)``, report on
    standard output): Jest loads every test file (the describe blocks run, so ``test.each``
    tables expand) and reports every test as skipped without running a single test body or
    hook. Files are listed in path order, tests in definition order.

Running
    ``jest --ci --json --watchAll=false --no-bail --maxWorkers=1
    --outputFile={report_dir}/jest-K.json [args] --runTestsByPath [--testNamePattern=^(?:a|b)$]
    ./file...`` (see :mod:`dagpar_plugins.jest.command` for when one slice needs several runs,
    and why it runs in band). Exit codes 0
    and 1 (a test failed) mean Jest ran; a missing report gives error results. Next to each
    report, ``jest-K.selection.json`` records what the run was asked for, so that parsing reports
    exactly the selected tests even though Jest also lists the ones its name filter skipped.
    Slices share Jest's default cache directory: Jest writes transform-cache entries atomically
    and rebuilds a haste map it cannot read, and a warm shared cache saves every slice from
    transforming the same sources again.

Streaming and progress
    Each run also loads dagpar's reporter, which appends a record per test start and end to
    ``jest-K.events.jsonl`` as the tests run (:mod:`dagpar_plugins.jest.stream`):
    :meth:`JestRunner.stream` reads them, and :meth:`JestRunner.progress` counts the finished
    tests from the size of ``jest-K.progress``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli import (
    ExecutionError,
    Outcome,
    Runner,
    RunnerCommand,
    RunnerHost,
    RunnerRegistry,
    RunnerSpec,
    Selection,
    TestCase,
    TestEvent,
    TestResult,
    TestStream,
    ToolchainRegistry,
    hookimpl,
)

if TYPE_CHECKING:
    from .command import collect_args, find_jest, run_args
    from .names import SUITE_FAILED
    from .stream import JestStream

__all__ = [
    "NAME",
    "SUITE_FAILED",
    "JestRunner",
    "JestStream",
    "collect_args",
    "dagpar_detect_toolchains",
    "dagpar_register_runners",
    "dagpar_register_toolchains",
    "find_jest",
    "run_args",
]

#: Names this package re-exports from the modules that compile, read and stream a slice's
#: runs. They are imported on first use, so that a run of another runner never loads them.
_LAZY = {
    "collect_args": ".command",
    "find_jest": ".command",
    "run_args": ".command",
    "SUITE_FAILED": ".names",
    "JestStream": ".stream",
}


def __getattr__(name: str) -> Any:
    """Import a re-exported name from its module on first use (see :data:`_LAZY`)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


#: The runner's name (``use: jest``, ``RunnerSpec.name``).
NAME = "jest"

_CONFIG_FILES = tuple(f"jest.config.{ext}" for ext in ("js", "ts", "mjs", "cjs", "cts", "json"))


def _tail(text: str, lines: int = 5) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(line.strip() for line in kept[-lines:])


class JestRunner(Runner):
    """Jest, driven as the module documentation describes."""

    name = NAME

    def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
        """List every Jest test without running one (see *Listing*)."""
        from .command import collect_args
        from .report import ReportError, report_from_stdout, tests_of

        argv = collect_args(spec)
        outcome = host.run(argv)
        where = spec.source or "."
        if outcome.not_started:
            raise ExecutionError(
                f"cannot start Jest ({argv[0]}) in {where}: {_tail(outcome.stderr)}"
            )
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

    def command(self, spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
        """The Jest runs that execute exactly *selection* (see *Running*)."""
        from .command import compile_commands

        return compile_commands(spec, selection)

    def stream(self, spec: RunnerSpec, report_dir: Path) -> TestStream:
        """The slice's per-test events, read from dagpar's reporter (see *Streaming*).

        The reader (:class:`~dagpar_plugins.jest.stream.JestStream`) is built on its first use,
        which comes after Jest has started: a slice does not wait for its import to start Jest.
        """
        return _DeferredStream(spec, report_dir)

    def progress(self, spec: RunnerSpec, report_dir: Path) -> int | None:
        """How many tests the slice's Jest runs have finished (the progress files' sizes)."""
        from .stream import finished

        return finished(report_dir)

    def parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
        """Read every ``jest-K.json`` of the slice into per-test results.

        A run that wrote no report (Jest crashed, bad configuration) yields error results for
        what it was asked to run, with the end of Jest's output as the message.
        """
        from .report import parse_reports

        return parse_reports(spec, report_dir, outcome)


class _DeferredStream:
    """A :class:`~dagpar_plugins.jest.stream.JestStream` made on first use (see
    :meth:`JestRunner.stream`); its other attributes (``restarted``) are the reader's own."""

    def __init__(self, spec: RunnerSpec, report_dir: Path) -> None:
        self._spec = spec
        self._report_dir = report_dir
        self._reader: JestStream | None = None

    def reader(self) -> JestStream:
        """The reader itself, made now if it was not yet."""
        if self._reader is None:
            from .stream import JestStream

            self._reader = JestStream(self._spec, self._report_dir)
        return self._reader

    def poll(self) -> list[TestEvent]:
        """What the reader has new (:meth:`JestStream.poll`)."""
        return self.reader().poll()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.reader(), name)


# --------------------------------------------------------------------------------------------
# registration and detection
# --------------------------------------------------------------------------------------------


@hookimpl
def dagpar_register_runners(registry: RunnerRegistry) -> None:
    """Register :class:`JestRunner` as runner ``jest``."""
    registry.add(JestRunner())


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
