"""Read ``go test -json`` event streams into per-test facts.

``go test -json`` writes one JSON event per line (``cmd/test2json``): ``run``, ``pause``,
``cont``, ``output``, ``pass``, ``fail``, ``skip`` (and ``bench``, ``start``,
``build-output`` in newer releases), each with the package's import path and, for test events,
the test's name as the testing package prints it: subtest parts joined by ``/``, spaces
rewritten to ``_``, duplicates suffixed ``#01``.

Before Go 1.24, a package that does not build is not an event at all: ``go test`` prints a plain
``FAIL\\tpkg [build failed]`` (or ``[setup failed]``) line on standard output and the compiler's
messages, headed ``# pkg``, on standard error. Both forms are understood here. Lines that are
neither JSON events nor such a line are skipped: a test binary may print anything.

A test may also print lines ``go test -json`` reads as events (a suite framework testing itself
on a mock ``testing.T`` prints ``=== RUN`` and ``--- FAIL:`` lines). The verdicts here are those
of ``go test``: a test that starts while another top-level test runs is that test's output, and
a subtest cannot fail under a test that passed (see :func:`_verdict`). Of each top-level
test's output the first and last :data:`OUTPUT_KEEP` characters are kept, with a line saying
how much was cut between.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dagpar_cli import Outcome, RunnerSpec, Status, TestResult, untrusted

from .build import build_seconds
from .names import reported_name, rewrite_subtest_name
from .source import import_path_of, module_of, package_scanner, path_of

__all__ = [
    "OUTPUT_KEEP",
    "PACKAGE_PLACEHOLDER",
    "GoPackageRun",
    "GoStream",
    "GoTestRun",
    "compiler_output",
    "package_results",
    "parse_reports",
    "read_events",
    "read_line",
    "rewrite_subtest_name",
    "test_result",
]

#: The test name dagpar lists for a package whose tests cannot be found because it does not
#: even load (its build failure must still be reported against something).
PACKAGE_PLACEHOLDER = "[package]"

#: Characters of output kept of the start of each top-level test's output, and as many of its
#: end: a test printing hundreds of megabytes must not take dagpar's memory with it.
OUTPUT_KEEP = 1 << 20

_BUILD_FAILED = re.compile(r"^FAIL\s+(\S+)\s+\[(build failed|setup failed)\]\s*$")
# "# pkg", or "# pkg_test [pkg.test]" for an external test package: the bracket names the
# package under test, whose tests the messages belong to.
_COMPILER_HEADER = re.compile(r"^# (\S+)(?: \[(\S+)\.test\])?")


@dataclass(slots=True)
class GoTestRun:
    """What the stream says about one test or subtest (by its reported name)."""

    #: The reported name, ``TestX`` or ``TestX/sub_name``.
    name: str
    #: ``pass``, ``fail`` or ``skip``; empty when it started and never ended.
    action: str = ""
    #: Seconds the testing package measured (``Elapsed`` of the final event).
    elapsed: float = 0.0
    #: Its output lines, in order.
    output: list[str] = field(default_factory=list)


@dataclass(slots=True)
class GoPackageRun:
    """What the stream says about one package."""

    #: The import path.
    import_path: str
    #: ``pass``, ``fail`` or ``skip`` for the package as a whole; empty when unknown.
    action: str = ""
    #: Seconds the package's test binary ran.
    elapsed: float = 0.0
    #: ``build failed`` or ``setup failed`` when the test binary was never built.
    build_failure: str = ""
    #: Output not attributed to a test (``PASS``, ``FAIL``, panics outside tests, timeouts).
    output: list[str] = field(default_factory=list)
    #: Every test and subtest the stream names, in the order they started.
    tests: dict[str, GoTestRun] = field(default_factory=dict)
    #: Every output line with the test it belongs to (``""`` for the package), in stream order:
    #: parallel subtests interleave, and a test's details should read as go printed them.
    lines: list[tuple[str, str]] = field(default_factory=list)
    #: The same lines, by the top-level test they belong to (a test's details without a walk
    #: through every other test's lines).
    by_top: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: Every test and subtest, by its top-level test.
    families: dict[str, list[GoTestRun]] = field(default_factory=dict)
    #: Top-level tests running now: started or resumed, not paused or ended.
    active: list[str] = field(default_factory=list)
    #: Characters of output kept so far per top-level test (its head, see :meth:`keep`).
    kept: dict[str, int] = field(default_factory=dict)
    #: Per top-level test past its head: its latest lines, until they are put back.
    tails: dict[str, _Tail] = field(default_factory=dict)
    #: Top-level names that are a test's printed output, not tests: ``go test -json`` reads
    #: any ``=== RUN`` or ``--- FAIL:`` line a test prints as an event. Go runs top-level tests
    #: one at a time (parallel ones resume only after the last sequential one ended), so a test
    #: starting while another one runs is that one's output. Maps the name to the printing test.
    printed: dict[str, str] = field(default_factory=dict)

    def test(self, name: str) -> GoTestRun:
        """The record of test *name*, created on first mention."""
        run = self.tests.get(name)
        if run is None:
            run = self.tests[name] = GoTestRun(name)
            self.families.setdefault(name.split("/", 1)[0], []).append(run)
        return run

    def keep(self, test: str, output: str) -> None:
        """Record an output line of *test*: of each top-level test (its subtests included) the
        first :data:`OUTPUT_KEEP` characters and the last as many are kept, and what lies
        between is counted (:meth:`flush` puts the end back, after a line saying so)."""
        top = test.split("/", 1)[0]
        used = self.kept.get(top, 0)
        if used < OUTPUT_KEEP:
            self.kept[top] = used + len(output)
            self._add(test, output)
        else:
            self.tails.setdefault(top, _Tail()).add(test, output)

    def flush(self, top: str | None = None) -> None:
        """Append the kept end of the output of top-level test *top* (of every test: None)."""
        for name in [top] if top is not None else list(self.tails):
            tail = self.tails.pop(name, None)
            if tail is None:
                continue
            if tail.cut:
                tail.lines.appendleft((name, f"[... {tail.cut} characters of output cut ...]\n"))
            for test, output in tail.lines:
                self._add(test, output)

    def _add(self, test: str, output: str) -> None:
        self.test(test).output.append(output)
        self.lines.append((test, output))
        self.by_top.setdefault(test.split("/", 1)[0], []).append((test, output))


@dataclass(slots=True)
class _Tail:
    """The latest output lines of a test past its kept head, and how much was dropped."""

    lines: deque[tuple[str, str]] = field(default_factory=deque)
    size: int = 0
    cut: int = 0

    def add(self, test: str, output: str) -> None:
        self.lines.append((test, output))
        self.size += len(output)
        while self.size > OUTPUT_KEEP and len(self.lines) > 1:
            _, dropped = self.lines.popleft()
            self.size -= len(dropped)
            self.cut += len(dropped)


@dataclass(slots=True)
class GoStream:
    """Every package of one or more ``go test -json`` streams, by import path."""

    packages: dict[str, GoPackageRun] = field(default_factory=dict)

    def package(self, import_path: str) -> GoPackageRun:
        """The record of package *import_path*, created on first mention."""
        run = self.packages.get(import_path)
        if run is None:
            run = self.packages[import_path] = GoPackageRun(import_path)
        return run


def _number(value: object) -> float:
    """Non-negative finite seconds; 0 for anything else (the planner adds these up)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return 0.0
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond float's range
        return 0.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 0.0


def read_events(text: str, stream: GoStream | None = None) -> GoStream:
    """Fold a ``go test -json`` standard output into *stream* (a new one by default).

    Never raises on malformed input: such lines are skipped.

    :param text: the standard output of ``go test -json``.
    :param stream: a stream to add to (several commands of one slice share one).
    """
    stream = stream if stream is not None else GoStream()
    for line in text.splitlines():
        read_line(line, stream)
    for package in stream.packages.values():
        package.flush()  # the ends of tests that never ended
    return stream


def read_line(line: str, stream: GoStream) -> dict[str, Any] | None:
    """Fold one line of a ``go test -json`` output into *stream*; the event, if it was one."""
    if not line.startswith("{"):
        failed = _BUILD_FAILED.match(line)
        if failed:
            stream.package(failed.group(1)).build_failure = failed.group(2)
        return None
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict):
        return None
    _apply(stream, event)
    return event


def _apply(stream: GoStream, event: dict[str, object]) -> None:
    action = event.get("Action")
    package = event.get("Package")
    if not isinstance(action, str):
        return
    if action == "build-output":  # Go 1.24+: compiler output as events
        import_path = event.get("ImportPath")
        output = event.get("Output")
        if isinstance(import_path, str) and isinstance(output, str):
            header = _COMPILER_HEADER.match("# " + import_path)
            if header:
                name = header.group(2) or header.group(1)
                stream.package(name).output.append(output)
        return
    if not isinstance(package, str) or not package:
        return
    pkg = stream.package(package)
    test = event.get("Test")
    output = event.get("Output")
    if isinstance(test, str) and test:
        host = _printed_by(pkg, test, action)
        if host is not None:
            if action == "output" and isinstance(output, str):
                pkg.keep(host, output)
            return
        if "/" not in test and action in ("run", "cont", "pause", "pass", "fail", "skip"):
            # Once each, the last one to resume last: that is the test printing now.
            pkg.active = [a for a in pkg.active if a != test]
            if action in ("run", "cont"):
                pkg.active.append(test)
        run = pkg.test(test)
        if action == "output" and isinstance(output, str):
            pkg.keep(test, output)
        elif action in ("pass", "fail", "skip"):
            if "/" not in test:
                pkg.flush(test)
            run.action = action
            run.elapsed = _number(event.get("Elapsed"))
        return
    if action == "output" and isinstance(output, str):
        pkg.output.append(output)
        pkg.lines.append(("", output))
        failed = _BUILD_FAILED.match(output.rstrip("\n"))
        if failed and failed.group(1) == package:
            pkg.build_failure = failed.group(2)
    elif action in ("pass", "fail", "skip"):
        pkg.flush()
        pkg.action = action
        pkg.elapsed = _number(event.get("Elapsed"))
        if event.get("FailedBuild"):
            pkg.build_failure = pkg.build_failure or "build failed"


def _printed_by(pkg: GoPackageRun, test: str, action: str) -> str | None:
    """The test that printed this event's line, or None when the event is go's own."""
    top = test.split("/", 1)[0]
    if top in pkg.active:
        return None
    host = pkg.active[-1] if pkg.active else None
    if action == "run" and (test == top or top not in pkg.tests):
        if host is None:
            pkg.printed.pop(top, None)  # a real test of that name starts now
        else:
            pkg.printed[top] = host
    elif host is not None and top not in pkg.printed:
        if top not in pkg.tests:  # go starts every test with a "run" event
            pkg.printed[top] = host
        elif action in ("pass", "fail", "skip"):
            return host  # a verdict on a test that is not running, printed by one that is
    return pkg.printed.get(top)


def compiler_output(stderr: str) -> dict[str, str]:
    """Split ``go test``'s standard error into compiler messages per package under test.

    Blocks start with ``# import/path``, ``# import/path [import/path.test]`` or, for an
    external test package, ``# import/path_test [import/path.test]``.

    :param stderr: standard error of one or more ``go test`` commands.
    """
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stderr.splitlines(keepends=True):
        header = _COMPILER_HEADER.match(line)
        if header:
            current = blocks.setdefault(header.group(2) or header.group(1), [])
        if current is not None:
            current.append(line)
    return {path: "".join(lines) for path, lines in blocks.items()}


def subtree(runs: Iterable[GoTestRun], name: str) -> list[GoTestRun]:
    """The runs of test *name* and of every subtest below it, in stream order."""
    prefix = name + "/"
    return [r for r in runs if r.name == name or r.name.startswith(prefix)]


_LOG_LINE = re.compile(r"^\s+(\S+\.go:\d+: .*)$")
_PANIC_LINE = re.compile(r"^\s*(panic: .*)$")
_STATUS = {"pass": Status.PASSED, "fail": Status.FAILED, "skip": Status.SKIPPED}


def _first_line(text: str, default: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return default


def _panic(lines: Iterable[str]) -> str:
    for line in lines:
        match = _PANIC_LINE.match(line.rstrip("\n"))
        if match:
            return match.group(1)
    return ""


def _failure_message(runs: Sequence[GoTestRun]) -> str:
    """The panic if there was one, else the last log line of the first failed leaf test."""
    panic = _panic(line for run in runs for line in run.output)
    if panic:
        return panic
    failed = [r for r in runs if r.action == "fail"]
    leaves = [r for r in failed if not any(o.name.startswith(r.name + "/") for o in failed)]
    if not leaves:
        return f"--- FAIL: {runs[0].name}" if runs else "failed"
    leaf = leaves[0]
    logs = [m.group(1) for m in map(_LOG_LINE.match, (o.rstrip("\n") for o in leaf.output)) if m]
    text = logs[-1] if logs else _example_mismatch(leaf.output) or f"--- FAIL: {leaf.name}"
    return text if leaf is runs[0] or not logs else f"{leaf.name}: {text}"


def _example_mismatch(output: Sequence[str]) -> str:
    """``got X, want Y`` from a failed example's ``got:`` / ``want:`` blocks (first lines)."""
    lines = [o.rstrip("\n") for o in output]
    if "got:" not in lines or "want:" not in lines:
        return ""
    got_at, want_at = lines.index("got:"), lines.index("want:")
    got = lines[got_at + 1] if got_at + 1 < want_at else ""
    want = lines[want_at + 1] if want_at + 1 < len(lines) else ""
    return f"output differs: got {got!r}, want {want!r}"


def _skip_message(run: GoTestRun) -> str:
    logs = [m.group(1) for m in map(_LOG_LINE.match, (o.rstrip("\n") for o in run.output)) if m]
    if not logs:
        return "skipped"
    # "store_test.go:48: not on this platform" -> the reason only
    return logs[-1].split(": ", 1)[1]


def _output(pkg: GoPackageRun, name: str) -> str:
    prefix = name + "/"
    lines = pkg.by_top.get(name.split("/", 1)[0], [])
    return "".join(o for t, o in lines if t == name or t.startswith(prefix))


@dataclass(frozen=True, slots=True, kw_only=True)
class _PackageFailure:
    """Why no test of a package could have run: the text every result of it carries."""

    message: str
    details: str


def _package_failure(
    path: str, run: GoPackageRun | None, compiler: str, stderr: str
) -> _PackageFailure | None:
    if run is not None and run.build_failure:
        kind = run.build_failure
        details = compiler or "".join(run.output) or stderr
        return _PackageFailure(message=f"{kind}: {_first_line(details, kind)}", details=details)
    if run is None or (not run.action and not run.tests):
        details = compiler or stderr
        if compiler:
            return _PackageFailure(
                message=f"build failed: {_first_line(compiler, 'build failed')}", details=details
            )
        return _PackageFailure(
            message=f"go test reported nothing for package {path}: "
            + _first_line(stderr, "no output"),
            details=details,
        )
    return None


def package_results(
    path: str,
    run: GoPackageRun | None,
    selected: Sequence[str] | None,
    *,
    scanned: Callable[[], list[str]],
    compiler: str = "",
    stderr: str = "",
    timed_out: bool = False,
) -> list[TestResult]:
    """The results of one package of one ``go test`` command.

    :param path: the package directory, relative to the toolchain's source.
    :param run: what the event stream says about the package (None: not a word).
    :param selected: the selected test names (``TestX``, ``TestX/sub name``), or None for the
        whole package.
    :param scanned: lists the package's tests from its sources, for the tests of a package
        whose test binary never ran them (called only then).
    :param compiler: the package's compiler messages.
    :param stderr: the command's standard error, for failures nothing else explains.
    :param timed_out: whether the command was killed for its timeout.
    """
    whole = selected is None or PACKAGE_PLACEHOLDER in selected
    failure = _package_failure(path, run, compiler, stderr)
    tests = run.tests if run is not None else {}
    binary_failed = failure is not None or (run is not None and run.action == "fail")
    wanted: list[tuple[str, str]]  # (name to report, name go reports)
    if whole:
        names = [n for n in tests if "/" not in n]
        if binary_failed:
            names += [n for n in scanned() if n not in tests]
        listed = selected is not None and PACKAGE_PLACEHOLDER in selected
        if listed or (binary_failed and not names):
            names.append(PACKAGE_PLACEHOLDER)
        wanted = [(n, n) for n in dict.fromkeys(names)]
    else:
        assert selected is not None
        wanted = [(n, reported_name(n)) for n in dict.fromkeys(selected)]
        chosen = {go.split("/", 1)[0] for _, go in wanted}
        # Anything else go ran is reported too: the contract is that nothing else runs.
        wanted += [(n, n) for n in tests if "/" not in n and n not in chosen]
    results: list[TestResult] = []
    for name, go_name in wanted:
        results.append(_result(path, name, go_name, run, failure, binary_failed, stderr, timed_out))
    return results


def _verdict(pkg: GoPackageRun, name: str) -> str:
    """The action of test *name* as ``go test`` decides it; empty when it never ended.

    A ``fail`` event can be a ``--- FAIL:`` line the test printed. Go fails every test above a
    failed subtest and waits for its subtests to end, so a subtest that failed or never ended
    under a test that passed or was skipped is printed output, and so is a top-level failure
    in a package that passed.
    """
    test = pkg.tests.get(name)
    action = test.action if test is not None else ""
    if action not in ("fail", ""):
        return action
    parent = name.rpartition("/")[0]
    if parent:
        return "pass" if _verdict(pkg, parent) in ("pass", "skip") else action
    return "pass" if action == "fail" and pkg.action == "pass" else action


def test_result(path: str, name: str, run: GoPackageRun) -> TestResult:
    """The result of the selected test *name* (``TestX`` or ``TestX/sub name``) of package
    directory *path*, from what the stream *run* says so far (as :func:`package_results`)."""
    return _result(path, name, reported_name(name), run, None, False, "", False)


def _result(
    path: str,
    name: str,
    go_name: str,
    run: GoPackageRun | None,
    failure: _PackageFailure | None,
    binary_failed: bool,
    stderr: str,
    timed_out: bool,
) -> TestResult:
    if failure is not None:
        return TestResult(
            path=path,
            name=name,
            status=Status.ERROR,
            message=failure.message,
            details=failure.details,
        )
    assert run is not None
    if name == PACKAGE_PLACEHOLDER:
        status = Status.ERROR if run.action == "fail" else Status.PASSED
        output = "".join(run.output)
        return TestResult(
            path=path,
            name=name,
            status=status,
            seconds=run.elapsed,
            message=_first_line(output, "package failed") if status.is_bad else "",
            details=output if status.is_bad else "",
        )
    test = run.tests.get(go_name)
    verdict = _verdict(run, go_name) if test is not None else ""
    if test is not None and verdict:
        status = _STATUS[verdict]
        output = _output(run, go_name)
        runs = [
            t
            for t in subtree(run.families.get(go_name.split("/", 1)[0], []), go_name)
            if t is test or _verdict(run, t.name) == "fail"
        ]
        message = ""
        if status is Status.FAILED:
            message = _failure_message(runs)
        elif status is Status.SKIPPED:
            message = _skip_message(test)
        return TestResult(
            path=path,
            name=name,
            status=status,
            seconds=test.elapsed,
            message=message,
            details=output if status is not Status.PASSED else "",
            stdout=output if status is Status.PASSED else "",
        )
    package_output = "".join(run.output)
    if test is not None:
        panic = _panic([*test.output, *(o for _, o in run.lines)])
        why = panic or ("timed out" if timed_out else "the test binary exited")
        return TestResult(
            path=path,
            name=name,
            status=Status.ERROR,
            seconds=test.elapsed,
            message=f"did not finish: {why}",
            details=_output(run, go_name) + package_output,
        )
    if binary_failed or timed_out:
        cause = _panic(o for _, o in run.lines) or ("timed out" if timed_out else "")
        cause = cause or _first_line(package_output, "the test binary failed")
        return TestResult(
            path=path,
            name=name,
            status=Status.ERROR,
            message=f"did not run: the test binary of {path} stopped early ({cause})",
            details=package_output or stderr,
        )
    return TestResult(
        path=path,
        name=name,
        status=Status.ERROR,
        message=f"go test did not run it: no test of that name in {path}",
        details=package_output,
    )


# ------------------------------------------------------------------------------------------
# a slice's results
# ------------------------------------------------------------------------------------------

_MANIFEST_NAME = re.compile(r"^go-(\d+)\.selection\.json$")
_REPORT_NAME = re.compile(r"^go-(\d+)\.json$")


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
            data = json.loads(untrusted.read_text(report_dir, entry.name))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            manifests.append((int(match.group(1)), data))
    return [data for _, data in sorted(manifests, key=lambda m: m[0])]


def _read_report(report_dir: Path, name: str) -> GoStream:
    """A report the container wrote, line by line (it may be large); nothing when missing or
    not a regular file (never followed)."""
    stream = GoStream()
    try:
        with untrusted.open_binary(report_dir, name) as file:
            for raw in file:
                for line in raw.decode("utf-8", "replace").splitlines():
                    read_line(line, stream)
    except OSError:
        pass
    return read_events("", stream)


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
    module = module_of(spec)
    results: list[TestResult] = []
    if not manifests:
        # Reports without manifests: every package the streams name, whole.
        for name in sorted(untrusted.list_names(report_dir)):
            if _REPORT_NAME.match(name):
                manifests.append({"report": name, "packages": None})
    for manifest in manifests:
        report = manifest.get("report")
        stream = _read_report(report_dir, report) if isinstance(report, str) else GoStream()
        packages = manifest.get("packages")
        if not isinstance(packages, list):
            packages = [
                {"path": path_of(module, p), "import_path": p, "tests": None}
                for p in stream.packages
            ]
        index = _REPORT_NAME.match(report) if isinstance(report, str) else None
        owners = set(stream.packages) | {
            e["import_path"]
            for e in packages
            if isinstance(e, dict) and isinstance(e.get("import_path"), str)
        }
        builds = build_seconds(report_dir, int(index[1]), owners) if index else {}
        for entry in packages:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                continue
            path = entry["path"]
            import_path = entry.get("import_path")
            import_path = import_path if isinstance(import_path, str) and import_path else ""
            import_path = import_path or import_path_of(module, path)
            names = entry.get("tests")
            selected = [n for n in names if isinstance(n, str)] if isinstance(names, list) else None
            key = _find_run(stream, import_path, path)
            first = len(results)
            results.extend(
                package_results(
                    path,
                    stream.packages.get(key) if key is not None else None,
                    selected,
                    scanned=package_scanner(spec, path),
                    compiler=compiler.get(key or import_path, ""),
                    stderr=stderr,
                    timed_out=timed_out,
                )
            )
            setup = builds.get(key or import_path, 0.0)
            if setup > 0 and len(results) > first:
                results[first] = replace(results[first], setup_seconds=setup)
    return results
