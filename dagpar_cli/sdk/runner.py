"""Running a test runner through its plugin: the helpers built-in toolchains call.

A runner-backed toolchain stays a few lines of ordinary toolchain code::

    @object_type(runner="pytest")
    class PytestTests:
        workspace: Directory
        tests: list[list[str]] = field()  # +parallel

        # +parallel
        def test(self) -> None:
            run_tests("pytest", self.workspace, self.tests)

:func:`collect_items` asks the runner plugin for the items of a source tree; :func:`run_tests`
compiles the slice's selection into the runner's command, runs it on the slice's executor, parses
the report and hands per-test results to the run (through
:class:`~dagpar_cli.runtime.context.Runtime`).
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli import untrusted
from dagpar_cli.errors import DagparError, ExecutionError, TestsFailedError
from dagpar_cli.execution.api import Outcome
from dagpar_cli.execution.output import KEEP_OUTPUT
from dagpar_cli.model import Status, TestCase, TestResult, join_path
from dagpar_cli.runner_api import REPORT_DIR_PLACEHOLDER as REPORT_DIR
from dagpar_cli.runner_api import Selection
from dagpar_cli.runtime import resume
from dagpar_cli.runtime.context import current_call, current_slice
from dagpar_cli.sdk._stream import StreamTracker
from dagpar_cli.sdk.container import Container
from dagpar_cli.sdk.directory import Directory

if TYPE_CHECKING:
    from dagpar_cli.runner_api import Runner, RunnerSpec, TestStream
    from dagpar_cli.runtime.context import Runtime, SliceContext

__all__ = ["collect_items", "run_tests"]


def collect_items(runner: str, source: Directory) -> list[list[str]]:
    """The items of *source* as *runner* lists them: one ``[path]`` selector per test file
    (pytest, Jest) or package (Go), in the runner's order.

    :param runner: the runner plugin's name.
    :param source: the toolchain's source directory.
    :raises ExecutionError: when the runner is missing or its listing fails.
    """
    call = current_call()
    if call is None:
        raise DagparError("collect_items() lists tests only while dagpar runs a toolchain")
    tests = call.runtime.list_tests(call, runner, source)
    return [[path] for path in dict.fromkeys(t.path for t in tests)]


def run_tests(
    runner: str,
    workspace: Directory,
    items: Sequence[Sequence[str]] | Sequence[str],
    *,
    image: str | None = None,
) -> None:
    """Run the tests *items* select with *runner* and report them, one result per test.

    Inside a slice, *items* is the slice's share of the ``+parallel`` field; when ``--filter``
    narrowed whole files to some of their tests, exactly those tests run.

    When the runner streams its tests (:meth:`Runner.stream
    <dagpar_cli.runner_api.Runner.stream>`) and a run of it dies (a crash, a non-ok exit with
    tests unfinished, ``--timeout``), the tests that ended keep their results, the one that
    was running is an error naming the cause, and the tests it never started run again in a
    fresh run (:mod:`dagpar_cli.runtime.resume`).

    :param runner: the runner plugin's name.
    :param workspace: the directory the runner runs in (the toolchain's source).
    :param items: ``[path]`` or ``[path, test]`` selectors (or plain paths).
    :param image: the image for the docker executor (``image:`` in dagpar.yaml wins).
    :raises TestsFailedError: when a test failed or errored.
    :raises ExecutionError: when the runner could not run (missing, crashed, killed).
    """
    call = current_call()
    if call is None:
        raise DagparError("run_tests() runs tests only while dagpar runs a toolchain")
    runtime = call.runtime
    runner_plugin = runtime.runner(call, runner)
    slice_ctx = current_slice()
    spec = runtime.runner_spec(call, runner, workspace)
    selectors = tuple((i,) if isinstance(i, str) else tuple(i) for i in items)
    prefix = spec.source
    tests: tuple[TestCase, ...] | None = None
    if slice_ctx is not None and slice_ctx.narrowed:
        tests = tuple(_source_case(t, prefix) for t in slice_ctx.plan.tests)
    # Where idle workers may take this slice's unstarted tail, its items run in the planned
    # order (unknown and long first), so that the tail holds short tests.
    in_order = slice_ctx is not None and slice_ctx.in_order
    selection = Selection(items=selectors, tests=tests, in_order=in_order)
    report_dir = (
        slice_ctx.report_dir if slice_ctx is not None else runtime.new_dir(f"{runner}-report")
    )
    tracker = StreamTracker()
    if slice_ctx is not None:
        slice_ctx.tracker = tracker
    results: list[TestResult] = []
    broken: list[str] = []
    #: One line per run that died in a test: the slice's error.
    deaths: list[str] = []
    replacements = 0
    while True:
        run = _run_once(
            runtime, runner_plugin, spec, selection, report_dir, slice_ctx, image, tracker
        )
        results.extend(run.results)
        cause = run.death
        running = tracker.running()
        if cause is None or (run.error is None and not running):
            # It ended by itself (maybe with a bad exit code, reported as before).
            broken.extend(run.broken)
            break
        # The run died, and its stream says how far it got.
        deaths.append(
            "; ".join(f"{_join(prefix, t.path)}::{t.name} {cause.message}" for t, _ in running)
            or (run.error.message if run.error is not None else cause.message)
        )
        results.extend(
            resume.died_running(test, start, cause, time.time()).under(prefix)
            for test, start in running
        )
        unstarted = _unstarted(slice_ctx, results)
        if not unstarted:
            break
        if not cause.resumes:
            results.extend(_not_started(t, cause) for t in unstarted)
            break
        if replacements >= resume.MAX_REPLACEMENTS or not tracker.started():
            # Out of replacements, or a run that started nothing would not start them either.
            results.extend(resume.gave_up(t, cause, replacements) for t in unstarted)
            break
        replacements += 1
        assert slice_ctx is not None  # _unstarted knows tests only in a slice
        slice_ctx.replacements = replacements
        if slice_ctx.timeout is not None:
            # --timeout bounds each run of the runner: the tests after a hanging one get a
            # run, and a deadline, of their own.
            slice_ctx.deadline = time.monotonic() + slice_ctx.timeout
        wanted = {t.path for t in unstarted}
        selection = Selection(
            items=tuple(s for s in selectors if s and _join(prefix, s[0]) in wanted)
            or tuple((_strip_prefix(path, prefix),) for path in wanted),
            tests=tuple(_source_case(t, prefix) for t in unstarted),
            in_order=in_order,
        )
        report_dir = runtime.new_dir(f"{runner}-replacement-{replacements}")
    if slice_ctx is not None:
        slice_ctx.report(results)
    else:
        with call.lock:
            call.results.extend(results)
    if deaths:
        more = f" (and {len(deaths) - 1} more)" if len(deaths) > 1 else ""
        raise ExecutionError(deaths[0] + more)
    if broken and not results:
        raise ExecutionError(broken[0])
    bad = sum(1 for r in results if r.status.is_bad)
    if broken:
        raise TestsFailedError(broken[0], broken[1:])
    if bad:
        raise TestsFailedError(f"{bad} of {len(results)} tests failed")


def _not_started(test: TestCase, cause: resume.Death) -> TestResult:
    """The error of *test*, which an interrupt (or ``--failfast``) kept from starting."""
    return TestResult(
        path=test.path,
        name=test.name,
        occurrence=test.occurrence,
        status=Status.ERROR,
        message=cause.before_start,
    )


@dataclass(slots=True)
class _Run:
    """What one run of the runner (its commands for one selection) did."""

    #: Its results, workspace-relative: the report and the stream reconciled.
    results: list[TestResult] = field(default_factory=list)
    #: Why it died, or None when it ended by itself with every started test ended.
    death: resume.Death | None = None
    #: The execution error a command raised (kill, timeout, interrupt).
    error: ExecutionError | None = None
    #: "<runner> exited with code N: ..." for commands that ended with a code not ok.
    broken: list[str] = field(default_factory=list)


def _run_once(
    runtime: Runtime,
    runner_plugin: Runner,
    spec: RunnerSpec,
    selection: Selection,
    report_dir: Path,
    slice_ctx: SliceContext | None,
    image: str | None,
    tracker: StreamTracker,
) -> _Run:
    """Run the runner's commands for *selection* once, following its stream."""
    runner = spec.name
    commands = runner_plugin.command(spec, selection)
    stream: TestStream | None = None
    try:
        stream = runner_plugin.stream(spec, report_dir)
    except Exception:  # a plugin's bug costs the stream, never the run
        stream = None
    tracker.open(stream)
    report_path = str(report_dir.resolve())
    workspace_root = spec.workspace.resolve()
    outcomes: list[Outcome] = []
    run = _Run()
    exit_code: int | None = None
    ok_codes: frozenset[int] = frozenset({0})
    # Live progress follows the runner, and idle workers may take the tests this slice has not
    # started, only while the runner runs; a slice's results come after.
    running: AbstractContextManager[object] = (
        runtime.running(slice_ctx, spec, report_dir) if slice_ctx is not None else nullcontext()
    )
    with running:
        for command in commands:
            for name, content in command.files.items():
                # The container of an earlier command may have planted links here.
                _write_report_file(
                    report_dir,
                    name.replace(REPORT_DIR, "").lstrip("/"),
                    content.replace(REPORT_DIR, report_path),
                )
            container = (
                Container()
                .from_(image or "")
                .with_directory(str(workspace_root), Directory(workspace_root, ""))
                .with_directory(report_path, Directory(report_dir), writable=True)
                .with_workdir(str(spec.source_dir.resolve()))
            )
            for key, value in command.env.items():
                container = container.with_env_variable(key, value.replace(REPORT_DIR, report_path))
            argv = [arg.replace(REPORT_DIR, report_path) for arg in command.argv]
            # The executor writes the runner's standard output to its report file live.
            stdout_file = getattr(command, "stdout_file", None)
            redirect = None
            if stdout_file:
                redirect = f"{report_path}/{stdout_file.replace(REPORT_DIR, '').lstrip('/')}"
            try:
                outcome = (
                    container.with_exec(
                        argv, expect="any", redirect_stdout=redirect, keep_output=KEEP_OUTPUT
                    )
                    .run()
                    .outcomes[-1]
                )
            except ExecutionError as exc:
                if not tracker.streaming or exc.message.startswith("cannot start"):
                    raise
                run.error = exc
                break
            outcomes.append(outcome)
            tracker.poll()
            exit_code, ok_codes = outcome.exit_code, command.ok_exit_codes
            if outcome.exit_code not in command.ok_exit_codes:
                tail = (outcome.stderr.strip() or outcome.stdout.strip()).splitlines()[-3:]
                run.broken.append(
                    f"{runner} exited with code {outcome.exit_code}"
                    + (": " + " | ".join(line.strip() for line in tail) if tail else "")
                )
                if tracker.streaming and tracker.running():
                    break  # it died in a test: the rest resume in a fresh run
    tracker.poll()
    combined = Outcome(
        exit_code=max((o.exit_code for o in outcomes), default=0),
        stdout="".join(o.stdout for o in outcomes),
        stderr="".join(o.stderr for o in outcomes),
        seconds=sum(o.seconds for o in outcomes),
    )
    reported = runner_plugin.parse(spec, report_dir, combined)
    if run.error is not None or exit_code is not None:
        run.death = resume.death(
            error=None if run.error is None else run.error.message,
            exit_code=exit_code,
            ok_exit_codes=ok_codes,
            left_running=bool(tracker.running()),
            cancelled=runtime.cancel_reason_now(),
        )
    if run.death is not None and tracker.streaming:
        # The report of a run that died can only guess at the tests it did not finish ("did
        # not run"): the stream knows which were running (they get the cause) and which never
        # started (they resume).
        ended, started = tracker.ended(), tracker.started()
        reported = [
            r for r in reported if r.id in ended or (r.id not in started and not r.status.is_bad)
        ]
    run.results = _placed(
        resume.reconcile(tracker.ended(), reported, runner), spec.source, slice_ctx
    )
    if run.death is not None and run.error is None and not run.broken:
        run.broken.append(f"{runner} {run.death.message}")
    return run


def _placed(
    results: Sequence[TestResult], prefix: str, slice_ctx: SliceContext | None
) -> list[TestResult]:
    """*results* (source-relative) moved under *prefix*, and in a slice given its check and
    index as :meth:`SliceContext.report` will: one copy of each result, not two."""
    if slice_ctx is None:
        return [r.under(prefix) for r in results]
    check, index = slice_ctx.call.name, slice_ctx.plan.index
    joined: dict[str, str] = {}  # most results share a few paths
    placed: list[TestResult] = []
    for result in results:
        path = joined.get(result.path)
        if path is None:
            path = joined[result.path] = join_path(prefix, result.path)
        placed.append(result.replaced(path=path, check=check, slice=index))
    return placed


def _unstarted(slice_ctx: SliceContext | None, results: Sequence[TestResult]) -> list[TestCase]:
    """The slice's tests (workspace-relative) that have no result and were not handed over."""
    if slice_ctx is None:
        return []
    done = {r.id for r in results}
    with slice_ctx.lock:
        done.update(t.id for t in slice_ctx.handed)
    return [t for t in slice_ctx.plan.tests if t.id not in done]


def _source_case(test: TestCase, prefix: str) -> TestCase:
    return TestCase(_strip_prefix(test.path, prefix), test.name, test.occurrence)


def _join(prefix: str, path: str) -> str:
    return join_path(prefix, posixpath.normpath(path))


def _write_report_file(report_dir: Path, name: str, text: str) -> None:
    """Write *name* in the container-writable *report_dir* without following what a test left
    there (:mod:`dagpar_cli.untrusted`); a failure is the slice's execution error."""
    try:
        untrusted.write_text(report_dir, name, text)
    except OSError as exc:
        raise ExecutionError(f"cannot write {report_dir / name}: {exc}") from None


def _strip_prefix(path: str, prefix: str) -> str:
    if not prefix or prefix == ".":
        return path
    if path == prefix:
        return "."
    return path[len(prefix) + 1 :] if path.startswith(prefix + "/") else path
