"""``dagpar queue ...``: the commands of queue mode that are not a run (``report``)."""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dagpar_cli.model import SlicePlan

if TYPE_CHECKING:
    from dagpar_cli.model import RunResult
    from dagpar_cli.run_context import RunContext

__all__ = ["make_queue_group"]

#: How the ``dagpar`` command runs a command body: ``run(debug, body)`` prints a handled error
#: as one line and exits with the body's code (``dagpar_cli.cli._run``).
RunBody = Callable[[bool, Callable[[], int]], None]


def make_queue_group(run: RunBody) -> click.Group:
    """The ``dagpar queue`` group; *run* runs each command's body."""
    group = click.Group("queue", help=queue.help, callback=queue.callback)
    group.add_command(_report_command(run))
    return group


@click.group()
def queue() -> None:
    """Work with a queue build (nodes running ``dagpar check --queue URL --build ID``).

    \b
    Example:
      dagpar queue report --queue redis://redis:6379/0 --build "$CI_PIPELINE_ID" \\
          --junit-xml junit.xml
    """


def _report_command(run: RunBody) -> click.Command:
    @click.command(
        "report",
        epilog="Example:  dagpar queue report --queue redis://redis:6379/0 --junit-xml junit.xml",
    )
    @click.option("--queue", "url", envvar="DAGPAR_QUEUE", metavar="URL", help="The build's Redis.")
    @click.option("--build", envvar="DAGPAR_BUILD", metavar="ID", help="The build (default: CI's).")
    @click.option(
        "--timeout", type=float, default=3600.0, help="Seconds to wait for the build (3600)."
    )
    @click.option("--junit-xml", type=click.Path(dir_okay=False), help="Merged JUnit XML.")
    @click.option("--report-html", type=click.Path(dir_okay=False), help="HTML report.")
    @click.option("--json", "json_output", is_flag=True, help="Machine-readable stdout.")
    @click.option("-C", "--workspace", type=click.Path(), default=".", help="The workspace root.")
    @click.option("--debug", is_flag=True, help="Show tracebacks.")
    def report(
        url: str | None,
        build: str | None,
        timeout: float,
        junit_xml: str | None,
        report_html: str | None,
        json_output: bool,
        workspace: str,
        debug: bool,
    ) -> None:
        """Wait for a queue build, then write its merged reports; exit 0, 1 or 4 like a check."""
        run(
            debug,
            lambda: _report(url, build, timeout, junit_xml, report_html, json_output, workspace),
        )

    return report


def _report(
    url: str | None,
    build: str | None,
    timeout: float,
    junit_xml: str | None,
    report_html: str | None,
    json_output: bool,
    workspace: str,
) -> int:
    from dagpar_cli.config import RunOptions
    from dagpar_cli.errors import UsageError
    from dagpar_cli.pipeline import close_session, exit_code_for, session_scope
    from dagpar_cli.queue.build import QueueBuild
    from dagpar_cli.queue.client import connect
    from dagpar_cli.queue.options import parse_queue_options
    from dagpar_cli.queue.report import collect_build, wait_for_build
    from dagpar_cli.reporting import files
    from dagpar_cli.reporting.summary import render_result
    from dagpar_cli.timings import TimingStore

    if url is None:
        raise UsageError("dagpar queue report needs --queue URL (or DAGPAR_QUEUE)")
    if not math.isfinite(timeout) or not 0 < timeout <= 7 * 24 * 3600:
        raise UsageError(f"--timeout {timeout:g}: expected seconds, more than 0 and at most 7 days")
    options = parse_queue_options(url, build=build, worker="report", lease=None, shard_given=False)
    assert options is not None
    run_options = RunOptions(
        junit_xml=Path(junit_xml) if junit_xml else None,
        report_html=Path(report_html) if report_html else None,
        json=json_output,
    )
    files.check_paths(run_options)
    queue_build = QueueBuild(connect(options.url), options)
    states = wait_for_build(queue_build, timeout)
    merged = collect_build(options, states, timeout)
    with session_scope(Path(workspace), run_options) as session:
        session.runner_of = merged.runner_of
        try:
            session.timings = TimingStore.open(session.config.workspace)
        except Exception as exc:  # a read-only checkout: report without recording
            click.echo(f"dagpar: warning: not recording timings: {exc}", err=True)
        try:
            _replay(session, merged.run)
            session.pm.hook.dagpar_report(run=merged.run, session=session)
            close_session(session, merged.run, exit_code=exit_code_for(merged.run, session))
        finally:
            if session.timings is not None:
                session.timings.close()
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    width = max(60, min(140, shutil.get_terminal_size((100, 24)).columns))
    output = render_result(merged.run, as_json=json_output, color=color, width=width)
    click.echo(output.stdout, nl=False)
    click.echo(output.stderr, nl=False, err=True)
    for failure in files.failures(session):
        click.echo(f"dagpar: error: {failure}", err=True)
    if merged.missing:
        print(
            f"dagpar: queue build {options.build!r}: {merged.missing} tests not run: no node "
            f"finished them within {timeout:g}s, or none was left in the build",
            file=sys.stderr,
        )
    return int(exit_code_for(merged.run, session))


def _replay(session: RunContext, run: RunResult) -> None:
    """Tell the reporters about every unit and check of the build, as a run would have as it
    went (tracing records a span per unit and test case from these); the live progress
    display, which never saw them start, is left out."""
    impls = [
        impl
        for impl in session.pm.hook.dagpar_slice_finished.get_hookimpls()
        if type(impl.plugin).__module__ != "dagpar_cli.reporting.progress"
    ]

    def slice_finished(**kwargs: object) -> None:
        for impl in impls:
            impl.function(*(kwargs[name] for name in impl.argnames))

    for check in run.checks:
        for result in check.slices:
            plan = SlicePlan(
                index=result.index,
                items=result.items,
                predicted_seconds=result.predicted_seconds,
                tests=tuple(r.case for r in result.results),
            )
            slice_finished(check=check.name, slice=plan, result=result)
        session.pm.hook.dagpar_check_finished(result=check)
