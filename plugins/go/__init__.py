"""The Go runner: ``go list`` to find packages, ``go test -json`` to run them.

Registers :class:`GoRunner` under the name ``go`` (it has sub-tests: a filter may name
``TestX/sub``), and the built-in ``go`` toolchain.

Names
    An item is a package directory relative to the toolchain's source (``"."`` for the
    module's root package, ``store/internal/deep``); a test is a top-level ``TestXxx``,
    ``FuzzXxx`` or ``ExampleXxx`` with an output comment, i.e. exactly what ``go test -list``
    prints minus benchmarks. A selection may also name a subtest, ``TestX/sub name``: its
    results then carry that name. A package that does not even load and shows no test lists
    the placeholder test ``[package]``, so that its failure is still reported.

Commands
    ``go test -json -count=1 [-run PATTERN] [args...] ./pkg ...``, one command per group of
    packages with the same selection, because ``-run`` applies to every package of a command.
    Whole packages get no ``-run``. Names are anchored and escaped per level:
    ``^(TestA|TestB)$``; a subtest adds a ``/``-level alternative: ``^(TestA)$|^TestX$/^sub_name$``
    (the testing package rewrites spaces in subtest names to ``_``, so the pattern does too).
    ``-count=1`` because a cached result replays an old run: its timings would mislead the
    planner, and a slice would not have run what it reports. Selections longer than
    :data:`MAX_COMMAND_CHARS` are batched into more commands.
    Standard output is the report (:attr:`RunnerCommand.stdout_file` ``go-K.json``, written as
    go prints it); a manifest ``go-K.selection.json`` says which tests each package was asked
    for, so that a package that fails to build reports its build failure against exactly those
    tests.

Build cost
    Every command also writes go's action graph (``-debug-actiongraph``, ``go-K.actions.json``):
    each package's own compiles, link and vet, timed by go (:mod:`.build`). The parser puts that
    on the package's first result (``TestResult.setup_seconds``), so the timing store keeps it
    per package and the planner counts it whenever a slice holds the package: ``go test`` never
    caches a test binary, so each slice that runs any of a package's tests links it again.

Streaming
    :meth:`GoRunner.stream` reads the reports while go writes them (:mod:`.stream`): a test
    starts at its ``run`` event and ends at its verdict, so a test binary that exits in a test
    leaves that test open and the later ones unstarted, for dagpar to blame and to run again.

Environment
    Go never downloads anything during a run: ``GOTOOLCHAIN=local`` always, and ``GOPROXY=off``
    unless the environment sets ``GOPROXY`` (run ``go mod download`` before dagpar, once, rather
    than in every slice at once).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
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
    TestResult,
    TestStream,
    ToolchainRegistry,
    hookimpl,
)

if TYPE_CHECKING:
    from .command import MAX_COMMAND_CHARS, compile_commands, go_env, quote_meta, run_pattern
    from .report import PACKAGE_PLACEHOLDER, parse_reports
    from .stream import GoTestStream

__all__ = [
    "MAX_COMMAND_CHARS",
    "NAME",
    "PACKAGE_PLACEHOLDER",
    "GoRunner",
    "GoTestStream",
    "collect_tests",
    "compile_commands",
    "dagpar_detect_toolchains",
    "dagpar_register_runners",
    "dagpar_register_toolchains",
    "go_env",
    "parse_reports",
    "quote_meta",
    "run_pattern",
]

#: Names this package re-exports from the modules that compile, read and stream a slice's
#: runs. They are imported on first use, so that a run of another runner never loads them.
_LAZY = {
    "MAX_COMMAND_CHARS": ".command",
    "compile_commands": ".command",
    "go_env": ".command",
    "quote_meta": ".command",
    "run_pattern": ".command",
    "PACKAGE_PLACEHOLDER": ".report",
    "parse_reports": ".report",
    "GoTestStream": ".stream",
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


#: The runner's name (``use: go``, ``RunnerSpec.name``).
NAME = "go"
#: Seconds ``go list`` may take; it type-checks nothing, but a cold module cache is slow.
LIST_TIMEOUT = 300.0

_SKIPPED_DIRS = frozenset({"vendor", "node_modules", "testdata"})


class GoRunner(Runner):
    """``go test``, driven as the module documentation describes."""

    name = NAME
    # A filter may name subtests (``TestX/sub``) that the listing of top-level tests cannot know.
    has_subtests = True

    def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
        """List the Go tests of ``spec.source``: see :func:`collect_tests`."""
        return collect_tests(spec, host)

    def command(self, spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
        """Compile a slice's selection into ``go test`` commands: see :func:`compile_commands`."""
        from .command import compile_commands

        return compile_commands(spec, selection)

    def parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
        """Read a slice's ``go test -json`` reports: see :func:`parse_reports`."""
        from .report import parse_reports

        return parse_reports(spec, report_dir, outcome)

    def stream(self, spec: RunnerSpec, report_dir: Path) -> TestStream:
        """Read a running slice's reports test by test: see :class:`GoTestStream`."""
        from .stream import GoTestStream

        return GoTestStream(spec, report_dir)


# ------------------------------------------------------------------------------------------
# registration and detection
# ------------------------------------------------------------------------------------------


@hookimpl
def dagpar_register_runners(registry: RunnerRegistry) -> None:
    """Register :class:`GoRunner` as runner ``go``."""
    registry.add(GoRunner())


@hookimpl
def dagpar_register_toolchains(registry: ToolchainRegistry) -> None:
    """Register the built-in ``go`` toolchain."""
    registry.add(NAME, "dagpar_toolchains.go")


@hookimpl
def dagpar_detect_toolchains(workspace: Path) -> list[dict[str, Any]] | None:
    """Detect Go modules: a ``go.mod`` at the root or in a direct subdirectory.

    The root module is instance ``go``; a module in a subdirectory is ``go-<dir>``, or ``go``
    when it is the only one.
    """
    found: list[str] = []
    if (workspace / "go.mod").is_file():
        found.append(".")
    try:
        children = sorted(p for p in workspace.iterdir() if p.is_dir())
    except OSError:
        children = []
    for child in children:
        if child.name.startswith((".", "_")) or child.name in _SKIPPED_DIRS:
            continue
        if (child / "go.mod").is_file():
            found.append(child.name)
    entries: list[dict[str, Any]] = []
    taken: set[str] = set()
    for source in found:
        if source == "." or len(found) == 1:
            instance = "go"
        else:
            instance = "go-" + (re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-") or "mod")
        base, n = instance, 2
        while instance in taken:
            instance, n = f"{base}-{n}", n + 1
        taken.add(instance)
        why = "go.mod" if source == "." else f"{source}/go.mod"
        entries.append({"instance": instance, "use": NAME, "source": source, "why": why})
    return entries


# ------------------------------------------------------------------------------------------
# collect
# ------------------------------------------------------------------------------------------


def _decode_stream(text: str) -> Iterator[dict[str, Any]]:
    """The objects of ``go list -json`` output: concatenated JSON values, not an array."""
    decoder = json.JSONDecoder()
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return
        try:
            value, index = decoder.raw_decode(text, index)
        except (ValueError, RecursionError):
            return
        if isinstance(value, dict):
            yield value


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def collect_tests(spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
    """List every package's top-level tests, building nothing.

    ``go list -e -json . ./...`` names the packages and their test files even when they do
    not compile (``.`` also tells where go thinks the source directory is, which differs from
    the host path inside a container); the tests come from reading those files.

    :param spec: the runner and its source directory.
    :param host: runs ``go list`` where the slices will run.
    :raises ExecutionError: when go is missing or cannot list the module.
    """
    from .command import go_command, go_env
    from .report import PACKAGE_PLACEHOLDER
    from .source import scan_test_files

    argv = [*go_command(spec), "list", "-e", "-json", ".", "./..."]
    outcome = host.run(argv, env=go_env(), timeout=LIST_TIMEOUT)
    where = spec.source or "."
    if outcome.not_started:
        raise ExecutionError(
            f"cannot run {argv[0]!r} for the Go toolchain in {where}: install Go "
            "(https://go.dev/dl/) or set `runner:` in dagpar.yaml to the go binary"
        )
    if outcome.timed_out or outcome.exit_code != 0:
        detail = " ".join(outcome.stderr.split())[:300] or f"exit code {outcome.exit_code}"
        fix = ""
        if "go.mod file not found" in outcome.stderr:
            fix = f" (run `go mod init` in {where}, or point `source:` at the module)"
        elif "GOPROXY=off" in outcome.stderr:
            fix = " (run `go mod download` first, or set GOPROXY to allow downloads)"
        raise ExecutionError(f"`go list` failed in {where}: {detail}{fix}")
    records = list(_decode_stream(outcome.stdout))
    root = next((r.get("Dir") for r in records if "." in _strings(r.get("Match"))), None)
    root_dir = root if isinstance(root, str) and root else str(spec.source_dir)
    tests: list[TestCase] = []
    seen: set[str] = set()
    for record in records:
        directory = record.get("Dir")
        import_path = record.get("ImportPath")
        if "./..." not in _strings(record.get("Match")) or not isinstance(directory, str):
            continue
        if not directory:
            continue  # relpath() rejects an empty path
        if not isinstance(import_path, str) or import_path in seen:
            continue
        seen.add(import_path)
        rel = posixpath.normpath(posixpath.relpath(directory, root_dir))
        if rel.startswith(".."):
            continue  # not below the source directory: not ours to run
        files = [*_strings(record.get("TestGoFiles")), *_strings(record.get("XTestGoFiles"))]
        # A file that does not parse is "invalid" but still holds the tests to blame.
        files += [f for f in _strings(record.get("InvalidGoFiles")) if f.endswith("_test.go")]
        names = scan_test_files(spec.source_dir / rel / f for f in dict.fromkeys(files)).names
        broken = bool(record.get("Error") or record.get("DepsErrors"))
        if not names and broken:
            names = [PACKAGE_PLACEHOLDER]
        tests.extend(TestCase(rel, name) for name in names)
    return tests
