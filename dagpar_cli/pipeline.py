"""The pipeline, in order: config → discover → resolve → filter → plan → execute → collect → report.

Each stage is a function of typed values that raises :class:`~dagpar_cli.errors.DagparError` on
bad input; the CLI only parses options, calls :func:`run_checks` or :func:`run_call`, and maps
errors to exit codes.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from dagpar_cli import interrupts
from dagpar_cli.callchain import CheckSpec, call_chain, parse_chain, resolve_chain, select_checks
from dagpar_cli.config import Config, RunOptions
from dagpar_cli.config.loader import load_config
from dagpar_cli.discovery import Toolchain, detect_toolchains, discover
from dagpar_cli.errors import (
    DagparError,
    ExitCode,
    NothingSelectedError,
    UsageError,
)
from dagpar_cli.execution.api import Executor
from dagpar_cli.execution.scheduler.api import Scheduler
from dagpar_cli.filtering import Filter
from dagpar_cli.model import CheckResult, RunResult
from dagpar_cli.planning.api import Planner
from dagpar_cli.pluginmanager import get_plugin_manager
from dagpar_cli.registry import build_runner_registry
from dagpar_cli.reporting import files as report_files
from dagpar_cli.run_context import RunContext
from dagpar_cli.runtime.orchestrator import Orchestrator
from dagpar_cli.sdk.directory import Directory
from dagpar_cli.statedir import STATE_DIR
from dagpar_cli.timings.store import DB_NAME, TimingStore

__all__ = [
    "CheckSpec",
    "close_session",
    "exit_code_for",
    "open_session",
    "run_call",
    "run_checks",
    "select_checks",
    "session_scope",
]


def open_session(
    workspace: Path, options: RunOptions, *, pm: pluggy.PluginManager | None = None
) -> RunContext:
    """Stage 1: load the configuration, build the session, configure the plugins.

    ``dagpar_configure`` fires here, before discovery: once the configuration and options are
    known, for every command that opens a workspace (``check``, ``call``, ``functions``, ``check
    -l``). Then, when the configuration lists no toolchains, they are detected (the first step
    of discovery). A session opened here is closed by :func:`close_session`; :func:`session_scope`
    pairs the two.

    :param workspace: the workspace root (``-C/--workspace``).
    :param options: the command line's options.
    :param pm: the plugin manager; a new one when None.
    :raises UsageError: *workspace* is not a directory.
    :raises ConfigError: ``dagpar.yaml`` or a detected toolchain is invalid.
    """
    if not workspace.is_dir():
        raise UsageError(f"workspace '{workspace}' does not exist (-C/--workspace)")
    pm = pm or get_plugin_manager()
    config = load_config(workspace.resolve(), pm)
    session = RunContext(config=config, options=options, pm=pm, runners=build_runner_registry(pm))
    pm.hook.dagpar_configure.call_historic(kwargs={"session": session})
    try:
        session.config = detect_toolchains(config, pm)
    except BaseException as exc:
        close_session(session, exit_code=_exit_code_of(exc))
        raise
    return session


def close_session(
    session: RunContext, run: RunResult | None = None, *, exit_code: ExitCode = ExitCode.OK
) -> None:
    """Fire ``dagpar_sessionfinish`` for *session*, once: later calls do nothing.

    :param session: a session from :func:`open_session`.
    :param run: the merged result, None when nothing ran (a listing, or a failure before).
    :param exit_code: the exit code dagpar is about to return.
    """
    if session.finished:
        return
    session.finished = True
    session.pm.hook.dagpar_sessionfinish(run=run, exitcode=int(exit_code))


@contextmanager
def session_scope(
    workspace: Path, options: RunOptions, *, pm: pluggy.PluginManager | None = None
) -> Iterator[RunContext]:
    """:func:`open_session` for the ``with`` block, and :func:`close_session` after it.

    A run closes its session itself, with its result; for a listing, or a failure before the
    run, the session is closed here, with the exit code the error maps to.
    """
    session = open_session(workspace, options, pm=pm)
    try:
        yield session
    except BaseException as exc:
        close_session(session, exit_code=_exit_code_of(exc))
        raise
    close_session(session)


def _exit_code_of(exc: BaseException) -> ExitCode:
    if isinstance(exc, DagparError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.INTERNAL_ERROR


def run_checks(
    session: RunContext,
    patterns: Sequence[str] = (),
    skip: Sequence[str] = (),
) -> RunResult:
    """Run every selected check concurrently and report the merged result.

    :raises NothingSelectedError: the patterns or filters selected nothing.
    """
    toolchains = discover(session.config, session.pm)
    checks = select_checks(toolchains, patterns, skip)
    if not checks:
        raise NothingSelectedError(_nothing_to_run(session.config, toolchains))
    mains = {tc.instance: tc.instantiate(session.config.workspace) for tc in toolchains}
    bodies = [
        (c.name, c.toolchain, _bound(mains[c.toolchain.instance], c.function)) for c in checks
    ]
    return _execute(session, bodies)


def run_call(
    session: RunContext, tokens: Sequence[str], *, export_to: Path | None = None
) -> tuple[RunResult, Any]:
    """Run one ``dagpar call`` chain; returns the result and the chain's value.

    :param export_to: where to copy a ``Directory`` result (it lives in the run's temporary
        space, which is removed when the run ends).
    """
    instance, steps = parse_chain(tokens)
    toolchains = discover(session.config, session.pm)
    toolchain = next((tc for tc in toolchains if tc.instance == instance), None)
    if toolchain is None:
        import difflib

        names = [tc.instance for tc in toolchains]
        close = difflib.get_close_matches(instance, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UsageError(
            f"dagpar call: no toolchain instance {instance!r}{hint} "
            f"(instances: {', '.join(names) or 'none'})"
        )
    resolve_chain(toolchain.main, steps)
    main = toolchain.instantiate(session.config.workspace)
    name = f"{instance}:{' '.join(s.name for s in steps)}"
    values: dict[str, Any] = {}

    def body() -> Any:
        value = call_chain(main, steps, session.config.workspace)
        if isinstance(value, Directory) and export_to is not None:
            value = value.export(export_to)
        values["value"] = value
        return value

    run = _execute(session, [(name, toolchain, body)])
    return run, values.get("value")


def _bound(obj: Any, function: str) -> Callable[[], Any]:
    def body() -> Any:
        return getattr(obj, function)()

    return body


def _execute(
    session: RunContext, bodies: Sequence[tuple[str, Toolchain, Callable[[], Any]]]
) -> RunResult:
    """Stages 4 to 8 for a set of calls, as named steps run in order.

    Stages 4 to 7 (list, filter, plan, schedule, collect) happen for each split call inside the
    :class:`~dagpar_cli.runtime.orchestrator.Orchestrator`, when toolchain code calls a
    ``+parallel`` function; :func:`_run_calls` starts that code.
    """
    run = _Run(session=session, bodies=tuple(bodies))
    exit_code = ExitCode.INTERNAL_ERROR
    try:
        for step in _STEPS:
            step(run)
        assert run.result is not None
        exit_code = exit_code_for(run.result, session)
        return run.result
    except DagparError as exc:
        exit_code = exc.exit_code
        raise
    finally:
        _finish(run, exit_code)


@dataclass(slots=True)
class _Run:
    """What the steps of :func:`_execute` build, one after the other."""

    session: RunContext
    bodies: tuple[tuple[str, Toolchain, Callable[[], Any]], ...]
    filter: Filter = field(default_factory=Filter)
    executor: Executor | None = None
    planner: Planner | None = None
    scheduler: Scheduler | None = None
    orchestrator: Orchestrator | None = None
    results: list[CheckResult] = field(default_factory=list)
    interrupted: bool = False
    result: RunResult | None = None


def _check_reports(run: _Run) -> None:
    """Stage 8's files, checked before anything runs: a report dagpar cannot write is exit 2."""
    if not run.session.options.dry_run:
        report_files.check_paths(run.session.options)


def _parse_filter(run: _Run) -> None:
    """Stage 4's input: the ``--filter`` selectors, checked against the configured instances."""
    session = run.session
    run.filter = Filter.parse(session.options.filters)
    run.filter.check_instances(
        {tc.instance for _, tc, _ in run.bodies} | {tc.instance for tc in session.config.toolchains}
    )
    session.runner_of = {tc.instance: _runner_of(tc) for _, tc, _ in run.bodies}


def _open_timings(run: _Run) -> None:
    """Stage 5's history: the timing store (a read-only checkout plans without it).

    A store that cannot be opened (a read-only file or checkout, a directory in its place) costs
    one line of warning: the run is planned without history and records nothing.
    """
    session = run.session
    try:
        session.timings = TimingStore.open(session.config.workspace)
    except (OSError, sqlite3.Error) as exc:
        where = session.config.workspace / STATE_DIR / DB_NAME
        reason = " ".join(str(exc).split())
        print(
            f"dagpar: warning: running without the timing store {where}: {reason}",
            file=sys.stderr,
        )


def _make_executor(run: _Run) -> None:
    """Stage 6's place: the executor, asked for its capacity up front."""
    session = run.session
    run.executor = session.pm.hook.dagpar_make_executor(session=session)
    if run.executor is None:
        raise UsageError(
            f"no executor named {session.executor_name!r}; use --executor local or docker"
        )
    # An engine that cannot be reached fails the run here, as one line, rather than as an
    # error in every check.
    run.executor.capacity()


def _make_planner_and_scheduler(run: _Run) -> None:
    """Stage 5's planner and stage 6's scheduler, as the plugins choose them."""
    session, executor = run.session, run.executor
    assert executor is not None
    run.planner = session.pm.hook.dagpar_make_planner(session=session)
    run.scheduler = session.pm.hook.dagpar_make_scheduler(
        session=session, executor=executor, workers=_workers(session, executor)
    )
    assert run.scheduler is not None  # the built-in implementation always answers
    run.orchestrator = Orchestrator(
        session=session,
        executor=executor,
        scheduler=run.scheduler,
        planner=run.planner,
        filter=run.filter,
    )


def _run_calls(run: _Run) -> None:
    """Stages 4 to 7: run every call; its split calls list, filter, plan, schedule, collect.

    Then the listing cache learns what the run wrote into the trees it listed.
    """
    assert run.orchestrator is not None
    run.results, run.interrupted = _run_concurrently(run.orchestrator, run.bodies)
    if not run.session.options.dry_run:
        run.orchestrator.lister.learn_outputs()


def _merge(run: _Run) -> None:
    """Stage 7's end: the run's result from every check that selected something."""
    session, flt = run.session, run.filter
    assert run.orchestrator is not None
    unfiltered = flt.is_empty and not run.orchestrator.matrix
    chosen = [r for r in run.results if not _selected_nothing(r, unfiltered)]
    if not chosen and not run.interrupted:
        if run.orchestrator.matrix:
            raise NothingSelectedError(run.orchestrator.matrix.nothing_matched())
        raise NothingSelectedError(
            _filter_matched_nothing(flt, run.orchestrator, session.options.filters)
        )
    run.result = RunResult(
        checks=tuple(chosen),
        seconds=time.monotonic() - session.started,
        predicted_seconds=max(
            (p.predicted_wall_seconds for c in chosen for p in c.plans), default=0.0
        ),
        interrupted=run.interrupted,
        shard=session.options.shard,
    )


def _report(run: _Run) -> None:
    """Stage 8: every reporter writes its output (not for a dry run)."""
    if not run.session.options.dry_run:
        run.session.pm.hook.dagpar_report(run=run.result, session=run.session)


#: Stages 4 to 8, in order.
_STEPS: tuple[Callable[[_Run], None], ...] = (
    _check_reports,
    _parse_filter,
    _open_timings,
    _make_executor,
    _make_planner_and_scheduler,
    _run_calls,
    _merge,
    _report,
)


def _finish(run: _Run, exit_code: ExitCode) -> None:
    """Tell the plugins the run ended, then release everything the steps opened."""
    session = run.session
    try:
        close_session(session, run.result, exit_code=exit_code)
    finally:
        if run.orchestrator is not None:
            run.orchestrator.close()
        elif run.scheduler is not None:
            run.scheduler.close()
        if run.executor is not None:
            run.executor.close()
        if session.timings is not None:
            session.timings.close()


def _workers(session: RunContext, executor: Executor) -> int:
    """How many slices run at once: ``-j``, else the configuration's, else the executor's."""
    if session.options.parallelism:
        return session.options.parallelism
    if session.config.parallelism:
        return session.config.parallelism
    return max(1, executor.capacity())


def _runner_of(tc: Toolchain) -> str:
    runners = {td.runner for td in tc.types.values() if td.runner}
    return sorted(runners)[0] if runners else "custom"


def _selected_nothing(result: CheckResult, no_filter: bool) -> bool:
    return (
        not no_filter
        and not result.error
        and not result.plans
        and not result.results
        and not result.interrupted
    )


def _run_concurrently(
    orchestrator: Orchestrator, bodies: Sequence[tuple[str, Toolchain, Callable[[], Any]]]
) -> tuple[list[CheckResult], bool]:
    """Run every call in its own thread; Ctrl-C or SIGTERM cancels them all.

    Checks run side by side so that one check's slow slice does not leave workers idle while
    another check waits; the slice pool bounds how many slices run at once.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, len(bodies)), thread_name_prefix="dagpar-check")
    futures: list[Future[tuple[CheckResult, Any]]] = []
    interrupted = False
    with _interrupts_raise(orchestrator):
        try:
            for name, toolchain, body in bodies:
                futures.append(pool.submit(orchestrator.run_call, name, toolchain, body))
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.2)
        except KeyboardInterrupt:
            interrupted = True
            orchestrator.cancel("interrupted")
            wait(futures)
        finally:
            pool.shutdown(wait=True)
    results = [f.result()[0] for f in futures]
    if orchestrator.interrupted:
        interrupted = True
    return results, interrupted


def _interrupts_raise(orchestrator: Orchestrator) -> AbstractContextManager[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread; a second one forces exit.

    The ``dagpar`` command installed the handlers before anything ran; this adds what a second
    interrupt must stop (and installs them when dagpar runs as a library).
    """
    return interrupts.handling(on_force=orchestrator.executor.kill_all)


def exit_code_for(run: RunResult, session: RunContext | None = None) -> ExitCode:
    """The exit code of a finished run (DESIGN.md §4).

    :param session: the run's session; a report it could not write makes the run's exit code
        ``EXECUTION_FAILED`` (:func:`dagpar_cli.reporting.files.failures`).
    """
    if run.interrupted:
        return ExitCode.INTERRUPTED
    if any(c.infrastructure_error for c in run.checks):
        return ExitCode.EXECUTION_FAILED
    if session is not None and report_files.failures(session):
        return ExitCode.EXECUTION_FAILED
    if not all(c.passed for c in run.checks):
        return ExitCode.TESTS_FAILED
    return ExitCode.OK


def _nothing_to_run(config: Config, toolchains: Sequence[Toolchain]) -> str:
    if not config.toolchains:
        return (
            f"nothing to run in {config.workspace}: no dagpar.yaml and no pytest, Jest or Go "
            "project detected; add a dagpar.yaml with a `toolchains:` entry"
        )
    return "no +check function in the configured toolchains: mark one with  # +check"


def _filter_matched_nothing(flt: Filter, orchestrator: Orchestrator, texts: Sequence[str]) -> str:
    close = flt.closest(sorted(orchestrator.candidates))
    shown = ", ".join(close) or "none"
    given = " ".join(f"--filter {t!r}" for t in texts)
    return f"{given or 'the filter'} matched no test; closest paths: {shown}"
