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

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path

from dagpar_cli import untrusted
from dagpar_cli.errors import DagparError, ExecutionError, TestsFailedError
from dagpar_cli.execution.api import Outcome
from dagpar_cli.execution.output import KEEP_OUTPUT
from dagpar_cli.model import TestCase
from dagpar_cli.runner_api import REPORT_DIR_PLACEHOLDER as REPORT_DIR
from dagpar_cli.runner_api import Selection
from dagpar_cli.runtime.context import current_call, current_slice
from dagpar_cli.sdk.container import Container
from dagpar_cli.sdk.directory import Directory

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
        tests = tuple(replace(t, path=_strip_prefix(t.path, prefix)) for t in slice_ctx.plan.tests)
    # Where idle workers may take this slice's unstarted tail, its items run in the planned
    # order (unknown and long first), so that the tail holds short tests.
    in_order = slice_ctx is not None and slice_ctx.in_order
    selection = Selection(items=selectors, tests=tests, in_order=in_order)
    commands = runner_plugin.command(spec, selection)
    report_dir = (
        slice_ctx.report_dir if slice_ctx is not None else runtime.new_dir(f"{runner}-report")
    )
    report_path = str(report_dir.resolve())
    workspace_root = spec.workspace.resolve()
    outcomes: list[Outcome] = []
    broken: list[str] = []
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
            container = container.with_exec(
                argv, expect="any", redirect_stdout=redirect, keep_output=KEEP_OUTPUT
            )
            outcome = container.run().outcomes[-1]
            outcomes.append(outcome)
            if outcome.exit_code not in command.ok_exit_codes:
                tail = (outcome.stderr.strip() or outcome.stdout.strip()).splitlines()[-3:]
                broken.append(
                    f"{runner} exited with code {outcome.exit_code}"
                    + (": " + " | ".join(line.strip() for line in tail) if tail else "")
                )
    combined = Outcome(
        exit_code=max((o.exit_code for o in outcomes), default=0),
        stdout="".join(o.stdout for o in outcomes),
        stderr="".join(o.stderr for o in outcomes),
        seconds=sum(o.seconds for o in outcomes),
    )
    results = [r.under(prefix) for r in runner_plugin.parse(spec, report_dir, combined)]
    if slice_ctx is not None:
        slice_ctx.report(results)
    else:
        with call.lock:
            call.results.extend(results)
    if broken and not results:
        raise ExecutionError(broken[0])
    bad = sum(1 for r in results if r.status.is_bad)
    if broken:
        raise TestsFailedError(broken[0], broken[1:])
    if bad:
        raise TestsFailedError(f"{bad} of {len(results)} tests failed")


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
