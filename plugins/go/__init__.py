"""The Go runner: ``go list`` to find packages, ``go test -json`` to run them.

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
    Standard output is the report (:attr:`RunnerCommand.stdout_file` ``go-K.json``); a manifest
    ``go-K.selection.json`` says which tests each package was asked for, so that a package that
    fails to build reports its build failure against exactly those tests.

Environment
    Go never downloads anything during a run: ``GOTOOLCHAIN=local`` always, and ``GOPROXY=off``
    unless the environment sets ``GOPROXY`` (run ``go mod download`` before dagpar, once, rather
    than in every slice at once).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli.errors import ExecutionError
from dagpar_cli.model import RunnerCommand, RunnerSpec, Selection, TestCase, TestResult
from dagpar_cli.pluginmanager import hookimpl

from .report import (
    PACKAGE_PLACEHOLDER,
    GoStream,
    compiler_output,
    package_results,
    read_events,
    rewrite_subtest_name,
)
from .source import builds_here, scan_test_files

if TYPE_CHECKING:
    from dagpar_cli.execution.api import Outcome
    from dagpar_cli.pluginmanager import ToolchainRegistry
    from dagpar_cli.runners import RunnerHost

__all__ = [
    "MAX_COMMAND_CHARS",
    "PACKAGE_PLACEHOLDER",
    "collect_tests",
    "compile_commands",
    "dagpar_detect_toolchains",
    "dagpar_register_toolchains",
    "dagpar_runner_collect",
    "dagpar_runner_command",
    "dagpar_runner_parse",
    "go_env",
    "parse_reports",
    "quote_meta",
    "run_pattern",
]

#: The runner name this plugin answers to.
RUNNER = "go"
#: Longest command line (in characters) a command may have before its selection is batched.
#: Far below Linux's 128 KiB limit on one argument, and short enough for ``docker exec``.
MAX_COMMAND_CHARS = 30_000
#: Seconds ``go list`` may take; it type-checks nothing, but a cold module cache is slow.
LIST_TIMEOUT = 300.0

_REPORT = "go-{index}.json"
_MANIFEST = "go-{index}.selection.json"
_MANIFEST_NAME = re.compile(r"^go-(\d+)\.selection\.json$")
_REPORT_NAME = re.compile(r"^go-(\d+)\.json$")
# Go's regexp.QuoteMeta escapes exactly these.
_GO_SPECIAL = frozenset("\\.+*?()|[]{}^$")
_SKIPPED_DIRS = frozenset({"vendor", "node_modules", "testdata"})


# ------------------------------------------------------------------------------------------
# registration and detection
# ------------------------------------------------------------------------------------------


@hookimpl
def dagpar_register_toolchains(registry: ToolchainRegistry) -> None:
    """Register the built-in ``go`` toolchain."""
    registry.add(RUNNER, "dagpar_toolchains.go")


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
        entries.append({"instance": instance, "use": RUNNER, "source": source, "why": why})
    return entries


# ------------------------------------------------------------------------------------------
# collect
# ------------------------------------------------------------------------------------------


def go_env() -> dict[str, str]:
    """The environment every go command of dagpar's gets: no downloads of any kind."""
    return {"GOTOOLCHAIN": "local", "GOPROXY": os.environ.get("GOPROXY") or "off"}


def _go(spec: RunnerSpec) -> list[str]:
    return list(spec.command) if spec.command else ["go"]


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
    argv = [*_go(spec), "list", "-e", "-json", ".", "./..."]
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


@hookimpl
def dagpar_runner_collect(spec: RunnerSpec, host: RunnerHost) -> list[TestCase] | None:
    """List the Go tests of ``spec.source``: see :func:`collect_tests`."""
    if spec.name != RUNNER:
        return None
    return collect_tests(spec, host)


# ------------------------------------------------------------------------------------------
# command
# ------------------------------------------------------------------------------------------


def quote_meta(text: str) -> str:
    """*text* as a Go regexp that matches it literally (``regexp.QuoteMeta``)."""
    return "".join("\\" + c if c in _GO_SPECIAL else c for c in text)


def run_pattern(names: Iterable[str]) -> str:
    """The ``-run`` pattern that selects exactly *names* (``TestX`` or ``TestX/sub name``).

    Top-level names share one anchored group, ``^(TestA|TestB)$``; each subtest is its own
    alternative, anchored at every level: ``^TestX$/^sub_name$``. The testing package splits
    the pattern at ``|`` and ``/`` outside brackets and parentheses, after which every level
    is a regexp matched against one level of the (rewritten) name.
    """
    top: list[str] = []
    nested: list[str] = []
    for name in dict.fromkeys(names):
        first, *subs = name.split("/")
        if not subs:
            top.append(quote_meta(first))
        else:
            levels = [first, *(rewrite_subtest_name(s) for s in subs)]
            nested.append("/".join(f"^{quote_meta(level)}$" for level in levels))
    alternatives = ([f"^({'|'.join(top)})$"] if top else []) + nested
    return "|".join(alternatives)


def _package_arg(path: str) -> str:
    return "." if path == "." else "./" + path


def _normalise(path: str) -> str:
    path = posixpath.normpath(path.strip() or ".")
    return path[2:] if path.startswith("./") else path


def _selected(selection: Selection) -> dict[str, list[str] | None]:
    """Package → selected test names (None: the whole package), in selection order."""
    packages: dict[str, list[str] | None] = {}
    if selection.tests is None:
        for selector in selection.items:
            if not selector:
                continue
            path = _normalise(selector[0])
            if len(selector) == 1:
                packages[path] = None
                continue
            names = packages.setdefault(path, [])
            if names is not None:
                names.append("/".join(selector[1:]))
    else:
        for test in selection.tests:
            names = packages.setdefault(_normalise(test.path), [])
            if names is not None:
                names.append(test.name)
    for path, names in packages.items():
        if names is not None and PACKAGE_PLACEHOLDER in names:
            packages[path] = None  # it stands for the whole package
        elif names is not None:
            packages[path] = list(dict.fromkeys(names))
    return packages


def _chunks(
    items: Sequence[str], budget: int, size_of: Callable[[str], int] = lambda s: len(s) + 1
) -> Iterator[list[str]]:
    """*items* in order, cut so that the summed ``size_of`` of each chunk fits *budget*."""
    chunk: list[str] = []
    used = 0
    for item in items:
        size = size_of(item)
        if chunk and used + size > budget:
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += size
    if chunk:
        yield chunk


def _pattern_size(name: str) -> int:
    # What the name adds to the -run pattern, anchors and separators included.
    return len(run_pattern([name])) + 1


@dataclass(frozen=True, slots=True)
class _Group:
    names: tuple[str, ...] | None
    paths: tuple[str, ...]


def compile_commands(
    spec: RunnerSpec, selection: Selection, *, max_chars: int = MAX_COMMAND_CHARS
) -> list[RunnerCommand]:
    """The ``go test -json`` commands that run exactly *selection*.

    :param spec: the runner and its source directory.
    :param selection: package items, or the exact tests when a filter narrowed them.
    :param max_chars: the longest command line; longer selections become several commands.
    """
    grouped: dict[tuple[str, ...] | None, list[str]] = {}
    for path, names in _selected(selection).items():
        grouped.setdefault(None if names is None else tuple(sorted(names)), []).append(path)
    base = [*_go(spec), "test", "-json", "-count=1"]
    base_chars = sum(len(a) + 1 for a in [*base, *spec.args]) + 8  # + "-run" and slack
    groups: list[_Group] = []
    for key, paths in grouped.items():
        name_chunks: list[list[str] | None] = [None]
        if key is not None:
            # Half the budget for the pattern; the package paths get the rest.
            name_chunks = list(_chunks(key, max(max_chars // 2, 1), _pattern_size))
        for chunk in name_chunks:
            pattern_chars = len(run_pattern(chunk)) + 1 if chunk is not None else 0
            path_budget = max(max_chars - base_chars - pattern_chars, 1)
            for batch in _chunks([_package_arg(p) for p in paths], path_budget):
                chosen = tuple(chunk) if chunk is not None else None
                groups.append(_Group(chosen, tuple(_normalise(b) for b in batch)))
    commands: list[RunnerCommand] = []
    env = go_env()
    module = _module(spec)
    for index, group in enumerate(groups, start=1):
        run = ["-run", run_pattern(group.names)] if group.names is not None else []
        argv = (*base, *run, *spec.args, *(_package_arg(p) for p in group.paths))
        manifest = {
            "report": _REPORT.format(index=index),
            "packages": [
                {
                    "path": p,
                    "import_path": _import_path(module, p),
                    "tests": list(group.names) if group.names is not None else None,
                }
                for p in group.paths
            ],
        }
        commands.append(
            RunnerCommand(
                argv=argv,
                env=env,
                files={_MANIFEST.format(index=index): json.dumps(manifest, indent=1)},
                # 1: tests failed; 2: a package did not build (reported as test errors).
                ok_exit_codes=frozenset({0, 1, 2}),
                stdout_file=_REPORT.format(index=index),
            )
        )
    return commands


@hookimpl
def dagpar_runner_command(spec: RunnerSpec, selection: Selection) -> list[RunnerCommand] | None:
    """Compile a slice's selection into ``go test`` commands: see :func:`compile_commands`."""
    if spec.name != RUNNER:
        return None
    return compile_commands(spec, selection)


# ------------------------------------------------------------------------------------------
# parse
# ------------------------------------------------------------------------------------------


def _module(spec: RunnerSpec) -> tuple[str, str] | None:
    """The module path of the ``go.mod`` at or above the source, and the source's place in it."""
    directory = spec.source_dir.resolve()
    for candidate in (directory, *directory.parents):
        go_mod = candidate / "go.mod"
        if go_mod.is_file():
            try:
                text = go_mod.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            match = re.search(r'^\s*module\s+"?([^\s"]+)"?', text, re.MULTILINE)
            if match is None:
                return None
            return match.group(1), directory.relative_to(candidate).as_posix()
    return None


def _import_path(module: tuple[str, str] | None, path: str) -> str:
    """The import path of package directory *path* in *module* (see :func:`_module`).

    ``""`` when there is no go.mod to derive it from.
    """
    if module is None:
        return ""
    module_path, inside = module
    rel = posixpath.normpath(posixpath.join(inside, path))
    return module_path if rel == "." else f"{module_path}/{rel}"


def _load_manifests(report_dir: Path) -> list[dict[str, Any]]:
    manifests: list[tuple[int, dict[str, Any]]] = []
    try:
        entries = list(report_dir.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = _MANIFEST_NAME.match(entry.name)
        if match is None:
            continue
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            manifests.append((int(match.group(1)), data))
    return [data for _, data in sorted(manifests, key=lambda m: m[0])]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return ""


def _scanner(spec: RunnerSpec, path: str) -> Callable[[], list[str]]:
    """Lists a package's tests from its sources, for when its test binary never listed them."""

    def scan() -> list[str]:
        internal: list[Path] = []
        external: list[Path] = []
        try:
            files = sorted((spec.source_dir / path).glob("*_test.go"))
        except OSError:
            return []
        for file in files:
            if file.name.startswith((".", "_")):
                continue  # go ignores these
            text = _read(file)
            if not builds_here(file, text):
                continue
            package = re.search(r"^\s*package\s+(\w+)", text, re.MULTILINE)
            external_test = bool(package and package.group(1).endswith("_test"))
            (external if external_test else internal).append(file)
        # go list's order: internal test files first, then the external test package's.
        return scan_test_files([*internal, *external]).names

    return scan


def _find_run(stream: GoStream, import_path: str, path: str) -> str | None:
    """The import path under which *stream* reports the package in directory *path*."""
    if import_path:
        return import_path if import_path in stream.packages else None
    # No go.mod to derive it from: the import path ends with the directory.
    for candidate in stream.packages:
        if path != "." and (candidate == path or candidate.endswith("/" + path)):
            return candidate
    return None


def parse_reports(spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
    """Read every ``go-K.json`` report of a slice into results, one per selected test.

    :param spec: the runner and its source directory.
    :param report_dir: the host directory the commands' ``{report_dir}`` pointed at.
    :param outcome: the commands' combined outcome; its standard error holds compiler errors.
    """
    compiler = compiler_output(outcome.stderr)
    stderr = outcome.stderr
    timed_out = outcome.timed_out or bool(outcome.killed)
    manifests = _load_manifests(report_dir)
    module = _module(spec)
    results: list[TestResult] = []
    if not manifests:
        # Reports without manifests: every package the streams name, whole.
        for entry in sorted(report_dir.glob("go-*.json")):
            if _REPORT_NAME.match(entry.name):
                manifests.append({"report": entry.name, "packages": None})
    for manifest in manifests:
        report = manifest.get("report")
        text = _read(report_dir / report) if isinstance(report, str) else ""
        stream = read_events(text)
        packages = manifest.get("packages")
        if not isinstance(packages, list):
            packages = [
                {"path": _path_of(module, p), "import_path": p, "tests": None}
                for p in stream.packages
            ]
        for entry in packages:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                continue
            path = entry["path"]
            import_path = entry.get("import_path")
            import_path = import_path if isinstance(import_path, str) and import_path else ""
            import_path = import_path or _import_path(module, path)
            names = entry.get("tests")
            selected = [n for n in names if isinstance(n, str)] if isinstance(names, list) else None
            key = _find_run(stream, import_path, path)
            results.extend(
                package_results(
                    path,
                    stream.packages.get(key) if key is not None else None,
                    selected,
                    scanned=_scanner(spec, path),
                    compiler=compiler.get(key or import_path, ""),
                    stderr=stderr,
                    timed_out=timed_out,
                )
            )
    return results


def _path_of(module: tuple[str, str] | None, import_path: str) -> str:
    """The package directory of *import_path* in *module*; the import path itself outside it."""
    if module is None:
        return import_path
    module_path, inside = module
    base = posixpath.normpath(posixpath.join(module_path, inside))
    if import_path == base:
        return "."
    if import_path.startswith(base + "/"):
        return import_path[len(base) + 1 :]
    return import_path


@hookimpl
def dagpar_runner_parse(
    spec: RunnerSpec, report_dir: Path, outcome: Outcome
) -> list[TestResult] | None:
    """Read a slice's ``go test -json`` reports: see :func:`parse_reports`."""
    if spec.name != RUNNER:
        return None
    return parse_reports(spec, report_dir, outcome)
