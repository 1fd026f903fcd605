"""The pipeline, in order: config → discover → resolve → filter → plan → execute → collect → report.

Each stage is a function of typed values that raises :class:`~dagpar_cli.errors.DagparError` on
bad input; the CLI only parses options, calls :func:`run_checks` or :func:`run_call`, and maps
errors to exit codes.
"""

from __future__ import annotations

import fnmatch
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pluggy

from dagpar_cli.callchain import call_chain, parse_chain, resolve_chain
from dagpar_cli.config import Config, RunOptions, load_config
from dagpar_cli.discovery import Toolchain, discover
from dagpar_cli.engine import Engine
from dagpar_cli.errors import (
    DagparError,
    ExitCode,
    NothingSelectedError,
    UsageError,
)
from dagpar_cli.execution.api import Executor
from dagpar_cli.filtering import Filter
from dagpar_cli.model import CheckResult, RunResult
from dagpar_cli.pluginmanager import get_plugin_manager
from dagpar_cli.registry import build_runner_registry
from dagpar_cli.sdk.directory import Directory
from dagpar_cli.session import Session

__all__ = ["CheckSpec", "exit_code_for", "open_session", "run_call", "run_checks", "select_checks"]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A check to run: ``instance:function`` on a toolchain."""

    name: str
    toolchain: Toolchain
    function: str


def open_session(
    workspace: Path, options: RunOptions, *, pm: pluggy.PluginManager | None = None
) -> Session:
    """Stage 1: load the configuration and build the session."""
    if not workspace.is_dir():
        raise UsageError(f"workspace '{workspace}' does not exist (-C/--workspace)")
    pm = pm or get_plugin_manager()
    config = load_config(workspace.resolve(), pm)
    return Session(config=config, options=options, pm=pm, runners=build_runner_registry(pm))


def select_checks(
    toolchains: Sequence[Toolchain], patterns: Sequence[str], skip: Sequence[str]
) -> list[CheckSpec]:
    """Every ``+check`` whose name matches a pattern (all when none) and no ``--skip``.

    Patterns are doublestar globs on ``instance:function`` names; a bare instance name selects
    all of its checks.

    :raises NothingSelectedError: a pattern matched no check (with the names that exist).
    """
    every = [
        CheckSpec(f"{tc.instance}:{fn.kebab}", tc, fn.name)
        for tc in toolchains
        for fn in tc.main.functions
        if fn.check
    ]
    names = [c.name for c in every]

    def matches(pattern: str, name: str) -> bool:
        if ":" not in pattern:
            return _glob(pattern, name.split(":", 1)[0]) or _glob(pattern, name)
        return _glob(pattern, name)

    chosen = every
    if patterns:
        for pattern in patterns:
            if not any(matches(pattern, n) for n in names):
                import difflib

                close = difflib.get_close_matches(pattern, names, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise NothingSelectedError(
                    f"no check matches {pattern!r}{hint} (checks: {', '.join(names) or 'none'})"
                )
        chosen = [c for c in every if any(matches(p, c.name) for p in patterns)]
    return [c for c in chosen if not any(matches(s, c.name) for s in skip)]


def _glob(pattern: str, name: str) -> bool:
    regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^:/]*").replace(r"\?", ".")
    return re.fullmatch(regex, name) is not None or fnmatch.fnmatchcase(name, pattern)


def run_checks(
    session: Session,
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
    session: Session, tokens: Sequence[str], *, export_to: Path | None = None
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
    session: Session, bodies: Sequence[tuple[str, Toolchain, Callable[[], Any]]]
) -> RunResult:
    """Stages 4 to 8 for a set of calls: filter, plan, execute, collect, report."""
    pm = session.pm
    options = session.options
    flt = Filter.parse(options.filters)
    flt.check_instances(
        {tc.instance for _, tc, _ in bodies} | {tc.instance for tc in session.config.toolchains}
    )
    session.stash["runner_of"] = {tc.instance: _runner_of(tc) for _, tc, _ in bodies}
    _open_timings(session)
    run: RunResult | None = None
    exit_code = ExitCode.INTERNAL_ERROR
    executor: Executor | None = None
    engine: Engine | None = None
    try:
        pm.hook.dagpar_configure.call_historic(kwargs={"session": session})
        executor = pm.hook.dagpar_make_executor(session=session)
        if executor is None:
            raise UsageError(
                f"no executor named {session.executor_name!r}; use --executor local or docker"
            )
        # Ask the executor for its capacity up front: an engine that cannot be reached fails
        # the run here, as one line, rather than as an error in every check.
        executor.capacity()
        planner = pm.hook.dagpar_make_planner(session=session)
        engine = Engine(session=session, executor=executor, planner=planner, filter=flt)
        results, interrupted = _run_concurrently(engine, bodies)
        chosen = [r for r in results if not _selected_nothing(r, flt.is_empty)]
        if not chosen and not interrupted:
            raise NothingSelectedError(_filter_matched_nothing(flt, engine, options.filters))
        run = RunResult(
            checks=tuple(chosen),
            seconds=time.monotonic() - session.started,
            predicted_seconds=max(
                (p.predicted_wall_seconds for c in chosen for p in c.plans), default=0.0
            ),
            interrupted=interrupted,
            shard=options.shard,
        )
        exit_code = exit_code_for(run)
        if not options.dry_run:
            pm.hook.dagpar_report(run=run, session=session)
        return run
    except DagparError as exc:
        exit_code = exc.exit_code
        raise
    finally:
        try:
            pm.hook.dagpar_sessionfinish(run=run, exitcode=int(exit_code))
        finally:
            if engine is not None:
                engine.close()
            if executor is not None:
                executor.close()
            if session.timings is not None:
                session.timings.close()


def _open_timings(session: Session) -> None:
    try:
        from dagpar_cli.timings import TimingStore
    except ImportError:  # the store is optional for planning; count splits work without it
        return
    try:
        session.timings = TimingStore.open(session.config.workspace)
    except OSError as exc:
        # A read-only checkout: plan without history rather than fail.
        print(f"dagpar: warning: running without the timing store: {exc}", file=sys.stderr)


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
    engine: Engine, bodies: Sequence[tuple[str, Toolchain, Callable[[], Any]]]
) -> tuple[list[CheckResult], bool]:
    """Run every call in its own thread; Ctrl-C or SIGTERM cancels them all.

    Checks run side by side so that one check's slow slice does not leave workers idle while
    another check waits; the slice pool bounds how many slices run at once.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, len(bodies)), thread_name_prefix="dagpar-check")
    futures: list[Future[tuple[CheckResult, Any]]] = []
    interrupted = False
    with _interrupts_raise(engine):
        try:
            for name, toolchain, body in bodies:
                futures.append(pool.submit(engine.run_call, name, toolchain, body))
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.2)
        except KeyboardInterrupt:
            interrupted = True
            engine.cancel("interrupted")
            wait(futures)
        finally:
            pool.shutdown(wait=True)
    results = [f.result()[0] for f in futures]
    if engine.cancelled.is_set() and engine.cancel_reason == "interrupted":
        interrupted = True
    return results, interrupted


@contextmanager
def _interrupts_raise(engine: Engine) -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread; a second one forces exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    count = {"n": 0}

    def handler(signum: int, frame: FrameType | None) -> None:
        count["n"] += 1
        if count["n"] == 1:
            raise KeyboardInterrupt
        # A second interrupt: the user does not want to wait for clean-up.
        engine.executor.kill_all()
        os._exit(int(ExitCode.INTERRUPTED))

    old_int = signal.signal(signal.SIGINT, handler)
    old_term = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def exit_code_for(run: RunResult) -> ExitCode:
    """The exit code of a finished run (DESIGN.md §4)."""
    if run.interrupted:
        return ExitCode.INTERRUPTED
    if any(c.infrastructure_error for c in run.checks):
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


def _filter_matched_nothing(flt: Filter, engine: Engine, texts: Sequence[str]) -> str:
    close = flt.closest(sorted(engine.candidates))
    shown = ", ".join(close) or "none"
    given = " ".join(f"--filter {t!r}" for t in texts)
    return f"{given or 'the filter'} matched no test; closest paths: {shown}"
