"""Every hook dagpar calls, grouped by pipeline stage.

A plugin is a module or object with functions named like the specs below, decorated with
:data:`dagpar_cli.hookimpl`, and registered through the ``dagpar`` entry-point group::

    [project.entry-points.dagpar]
    myrunner = "myrunner_dagpar.plugin"

The built-in Go, Jest and pytest runners register exactly that way: each registers one
:class:`~dagpar_cli.runner_api.Runner` from :func:`dagpar_register_runners`, and dagpar asks the
runner registered under a toolchain's runner name (see :mod:`dagpar_cli.plugin` for a quick
start).

The ``dagpar_runner_*`` hooks are how runners were served before they were registered objects.
They still work, for one more minor version, and warn (``DeprecationWarning``) when a plugin
implements them: each is ``firstresult``, and an implementation answers ``None`` for a runner
that is not its own (check ``spec.name``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

# PROJECT is re-exported: code written before dagpar_cli.plugin existed reads it from here.
from dagpar_cli.plugin import PROJECT as PROJECT
from dagpar_cli.plugin import hookspec

if TYPE_CHECKING:
    import click

    from dagpar_cli.execution.api import Executor, Outcome
    from dagpar_cli.execution.scheduler.api import Scheduler
    from dagpar_cli.model import (
        CheckResult,
        RunResult,
        SlicePlan,
        SliceResult,
        TestCase,
        TestResult,
    )
    from dagpar_cli.planning.api import Planner
    from dagpar_cli.registry import RunnerRegistry, ToolchainRegistry
    from dagpar_cli.run_context import RunContext
    from dagpar_cli.runner_api import (
        RunnerCommand,
        RunnerHost,
        RunnerSpec,
        Selection,
        TailChooser,
    )


def _deprecated(hook: str, method: str) -> DeprecationWarning:
    """The warning pluggy gives when a plugin implements a deprecated runner hook."""
    return DeprecationWarning(
        f"{hook} is deprecated and will be removed in the next minor version of dagpar: "
        f"implement {method} on a dagpar_cli.Runner subclass and register an instance from "
        "dagpar_register_runners(registry)"
    )


# --------------------------------------------------------------------------------------------
# init
# --------------------------------------------------------------------------------------------


@hookspec
def dagpar_add_commands(cli: click.Group) -> None:
    """Add subcommands to the ``dagpar`` command group.

    Called once while the CLI is built, before arguments are parsed.

    :param cli: the root click group; call ``cli.add_command`` on it.

    .. versionadded:: 0.1
    """


@hookspec(historic=True)
def dagpar_configure(session: RunContext) -> None:
    """Perform set-up once the configuration and options are known.

    Called before discovery (toolchains detected, loaded and checked), for every command that
    opens a workspace: ``check``, ``call``, ``functions`` and ``check -l``; the last two run
    nothing (``session.options.list_only``). ``dagpar_sessionfinish`` always follows.

    Historic: a plugin registered later is still called. Reporters register themselves here
    when their option is set (``--junit-xml``, ``--report-html``, ``OTEL_*``).

    :param session: the run's session (configuration, options, plugin manager); toolchains
        that dagpar detects are not in ``session.config`` yet, and the timing store is opened
        afterwards, for a run only.

    .. versionadded:: 0.1
    """


# --------------------------------------------------------------------------------------------
# registries and discovery
# --------------------------------------------------------------------------------------------


@hookspec
def dagpar_register_toolchains(registry: ToolchainRegistry) -> None:
    """Register built-in toolchains by name (``use: NAME`` in ``dagpar.yaml``).

    :param registry: call ``registry.add(name, module)`` with an importable module name whose
        main class is named after the toolchain; a name registered twice is an error.

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_register_runners(registry: RunnerRegistry) -> None:
    """Register runners: the test runners toolchains name (``@object_type(runner="pytest")``).

    Every implementation is called, once per run, before anything is listed; dagpar then asks
    the runner registered under a toolchain's runner name, and no other.

    :param registry: call ``registry.add(runner)`` with an instance of a
        :class:`~dagpar_cli.runner_api.Runner` subclass; a name registered twice (by different
        classes) is an error.

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_detect_toolchains(workspace: Path) -> list[dict[str, Any]] | None:
    """Detect toolchains in a workspace that has no ``dagpar.yaml``.

    Every implementation is called; their answers are concatenated.

    :param workspace: the workspace root.
    :returns: entries in ``dagpar.yaml`` form plus an ``instance`` and a ``why`` key, e.g.
        ``{"instance": "jest", "use": "jest", "source": "web", "why": "web/package.json"}``.

    .. versionadded:: 0.1
    """


# --------------------------------------------------------------------------------------------
# runners (deprecated: register a Runner with dagpar_register_runners instead)
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True, warn_on_impl=_deprecated("dagpar_runner_collect", "Runner.collect"))
def dagpar_runner_collect(spec: RunnerSpec, host: RunnerHost) -> list[TestCase] | None:
    """List every test of the source tree, without running any.

    The list defines the items a toolchain splits (distinct paths, in order) and the tests a
    filter can select; a runner's own report must later name tests the same way.

    :param spec: the runner and its source directory.
    :param host: runs the runner's listing command where the slices will run.
    :returns: the tests, in the runner's order, with paths relative to ``spec.source``; None if
        *spec* names another plugin's runner.
    :raises ExecutionError: when the runner is missing or its listing fails (say which and how
        to fix it).

    .. versionadded:: 0.1
    .. deprecated:: 0.1
        Implement :meth:`~dagpar_cli.runner_api.Runner.collect` instead.
    """


@hookspec(firstresult=True, warn_on_impl=_deprecated("dagpar_runner_installed", "Runner.installed"))
def dagpar_runner_installed(spec: RunnerSpec) -> list[str] | None:
    """Name the places outside the workspace whose installed packages can change the listing.

    The listing cache keys a listing on the source tree, virtual environments and
    ``node_modules`` inside the workspace included. A runner that also loads code from outside
    the workspace (a system-wide Python, a virtual environment elsewhere, a ``GOPATH``) names
    those places here, so that installing or removing a package there lists the tests afresh
    instead of reusing a listing that misses (or still has) the tests that depend on it. Asked
    only for the local executor: inside an image, the image is part of the key.

    :param spec: the runner and its source directory.
    :returns: absolute paths of directories (or files) whose modification time changes when a
        package is installed or removed there; paths inside the workspace are left out of the
        key, since the tree already covers them. An empty list when the runner loads nothing
        from outside the workspace; None if *spec* names another plugin's runner or the runner
        cannot tell (the key is then the tree alone).

    .. versionadded:: 0.1
    .. deprecated:: 0.1
        Implement :meth:`~dagpar_cli.runner_api.Runner.installed` instead.
    """


@hookspec(firstresult=True, warn_on_impl=_deprecated("dagpar_runner_progress", "Runner.progress"))
def dagpar_runner_progress(spec: RunnerSpec, report_dir: Path) -> int | None:
    """How many tests the runner of a running slice has finished so far (live progress).

    Called about twice a second while the slice's runner command runs, from a thread of its
    own, so it must be cheap (a ``stat``, not a parse) and must not fail when the runner has
    written nothing yet. The count is only shown; results still come from
    :func:`dagpar_runner_parse` when the command ends.

    :param spec: the runner and its source directory.
    :param report_dir: the slice's report directory on the host, as the runner writes it.
    :returns: the number of tests finished; None if *spec* names another plugin's runner or the
        runner cannot tell while it runs.

    .. versionadded:: 0.1
    .. deprecated:: 0.1
        Implement :meth:`~dagpar_cli.runner_api.Runner.progress` instead.
    """


@hookspec(
    firstresult=True, warn_on_impl=_deprecated("dagpar_runner_hands_over", "Runner.can_hand_over")
)
def dagpar_runner_hands_over(spec: RunnerSpec) -> bool | None:
    """Whether a running slice of this runner can hand tests it has not started to another slice.

    Asked once per split call, before planning. When the runner and the executor both can
    (the slice's report directory is shared live with the runner: the local executor, a local
    Docker engine), dagpar cuts one balanced slice per worker and lets a worker that runs out of
    work take the not-yet-started tail of a running slice (:func:`dagpar_runner_hand_over`),
    instead of cutting more, smaller slices in advance.

    :param spec: the runner, its arguments and its source directory.
    :returns: True when it can (with these arguments), False when it cannot, None if *spec*
        names another plugin's runner.

    .. versionadded:: 0.1
    .. deprecated:: 0.1
        Implement :meth:`~dagpar_cli.runner_api.Runner.can_hand_over` instead.
    """


@hookspec(
    firstresult=True, warn_on_impl=_deprecated("dagpar_runner_hand_over", "Runner.hand_over_tail")
)
def dagpar_runner_hand_over(
    spec: RunnerSpec, report_dir: Path, choose: TailChooser
) -> list[TestCase] | None:
    """Take tests from a running slice that its runner has not started yet.

    Called from an idle worker thread while the slice's runner command runs, possibly at the
    same moment as the runner starts its next test: the plugin must agree with the runner,
    under a lock both respect, on which tests the runner will still start, so that no test is
    run twice or by neither. Under that lock it calls ``choose(pending, started, running)`` once,
    with the tests the runner has not started (paths relative to ``spec.source``, in the order
    the runner would run them), how many it has started, and ``(test, seconds)``: the test it is
    running and for how long, or None when it is between tests or cannot tell (the argument may
    be left out). A slice is busy with that test before it gets to its pending ones; ``choose``
    returns how many tests to take from the *end* of *pending* (0 takes nothing, and is how
    dagpar compares running slices).
    The runner then skips those tests without reporting them, and dagpar runs them in a new
    slice (which may itself hand tests on).

    :param spec: the runner and its source directory.
    :param report_dir: the slice's report directory on the host, shared live with the runner.
    :param choose: decides how many tests to take.
    :returns: the tests taken (``[]`` when ``choose`` took none, or was not called because the
        runner has not yet settled the order of its tests, in which case dagpar asks again
        shortly); None if *spec* names another plugin's runner, or this run of the runner
        cannot hand tests over.

    .. versionadded:: 0.1
    .. deprecated:: 0.1
        Implement :meth:`~dagpar_cli.runner_api.Runner.hand_over_tail` instead.
    """


@hookspec(firstresult=True, warn_on_impl=_deprecated("dagpar_runner_command", "Runner.command"))
def dagpar_runner_command(spec: RunnerSpec, selection: Selection) -> list[RunnerCommand] | None:
    """Compile a slice's selection into the runner's own command lines.

    Together the commands must run exactly the selected tests, with correctly escaped native
    selectors, and write machine-readable reports under the ``{report_dir}`` placeholder (each
    command its own file names). Usually one command; several when one command cannot express
    the selection (Jest's name pattern is global to a run) or a command line would be too long
    (prefer argument files, ``RunnerCommand.files``, where the runner reads them). The engine runs
    them one after another in the slice.

    :param spec: the runner and its source directory.
    :param selection: the slice's items and, when the filter narrowed them, the exact tests.
    :returns: the commands, or None for another plugin's runner.

    .. versionadded:: 0.1
    .. deprecated:: 0.1
        Implement :meth:`~dagpar_cli.runner_api.Runner.command` instead.
    """


@hookspec(firstresult=True, warn_on_impl=_deprecated("dagpar_runner_parse", "Runner.parse"))
def dagpar_runner_parse(
    spec: RunnerSpec, report_dir: Path, outcome: Outcome
) -> list[TestResult] | None:
    """Read the runner's report into per-test results.

    :param spec: the runner and its source directory.
    :param report_dir: the host directory the command's ``{report_dir}`` pointed at.
    :param outcome: the command's exit status and output (for build errors and crashes).
    :returns: one result per test the runner ran, paths relative to ``spec.source``; tests
        the report does not mention are filled in by the engine as errors. None for another
        plugin's runner.

    .. versionadded:: 0.1
    .. deprecated:: 0.1
        Implement :meth:`~dagpar_cli.runner_api.Runner.parse` instead.
    """


# --------------------------------------------------------------------------------------------
# filter
# --------------------------------------------------------------------------------------------


@hookspec
def dagpar_modify_tests(check: str, tests: list[TestCase], session: RunContext) -> None:
    """Reorder or deselect tests in place after ``--filter`` was applied.

    :param check: the check (``instance:function``) whose split call is being planned.
    :param tests: the selected tests, workspace-relative; modify in place.
    :param session: the run's session.

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_deselected(check: str, tests: list[TestCase]) -> None:
    """Learn which tests the filter deselected.

    :param check: the check.
    :param tests: the deselected tests, workspace-relative.

    .. versionadded:: 0.1
    """


# --------------------------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def dagpar_make_planner(session: RunContext) -> Planner | None:
    """Choose the planner that cuts split calls into slices.

    The built-in timing-driven planner is ``trylast``; a plugin returning a planner replaces it.
    The scheduler starts a plan's slices in the order of their ``index``, so a planner also
    decides which slices start first when there are more slices than workers.

    :param session: the run's session (its timing store holds the history).
    :returns: a :class:`~dagpar_cli.planning.api.Planner`, or None to let others choose.

    .. versionadded:: 0.1
    """


# --------------------------------------------------------------------------------------------
# execute
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def dagpar_make_executor(session: RunContext) -> Executor | None:
    """Create the executor slices run on, once per run.

    The built-in ``local`` and ``docker`` executors answer when ``--executor`` (or the
    configuration's ``executor:``) names them.

    :param session: the run's session.
    :returns: an :class:`~dagpar_cli.execution.api.Executor`, or None to let others choose.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def dagpar_make_scheduler(
    session: RunContext, executor: Executor, workers: int
) -> Scheduler | None:
    """Choose how slices get onto the workers, once per run.

    The built-in implementation is ``trylast``: a
    :class:`~dagpar_cli.execution.scheduler.tail_stealing.TailStealingScheduler` (idle workers
    take the unstarted tail of running slices) where the executor shares the slices' report
    directories live (``shares_mounts``) and ``DAGPAR_NO_HANDOVER`` is not ``1``, else a
    :class:`~dagpar_cli.execution.scheduler.static.StaticScheduler`.

    :param session: the run's session.
    :param executor: the run's executor.
    :param workers: how many slices may run at once (``-j``, the configuration, or the
        executor's capacity).
    :returns: a :class:`~dagpar_cli.execution.scheduler.api.Scheduler`, or None to let others
        choose.

    .. versionadded:: 0.2
    """


@hookspec(firstresult=True)
def dagpar_task_span(
    check: str, slice: SlicePlan, item: str
) -> AbstractContextManager[object] | None:
    """Open a trace span around one item's work, for ``dag.parallel.task(item)``.

    Called from the slice's thread; the span should be a child of the slice's. The built-in
    OpenTelemetry reporter answers while tracing is on.

    :param check: the check.
    :param slice: the plan of the slice doing the work.
    :param item: the item's :attr:`~dagpar_cli.model.Item.key`.
    :returns: a context manager entered around the work (an exception escaping it marks the
        item failed), or None when nothing traces.

    .. versionadded:: 0.2
    """


@hookspec
def dagpar_slice_started(check: str, slice: SlicePlan, total: int, field: str) -> None:
    """A slice started (called from the slice's worker thread).

    :param check: the check the slice belongs to.
    :param slice: the slice's plan.
    :param total: how many slices the split call has.
    :param field: the ``+parallel`` field being split (``Type.field``).

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_slice_env(check: str, slice: SlicePlan) -> dict[str, str] | None:
    """Add environment variables to one slice's commands (``TRACEPARENT``, say).

    Every implementation is called before the slice starts; the answers are merged over
    dagpar's own ``DAGPAR_SLICE``.

    :param check: the check the slice belongs to.
    :param slice: the slice's plan.
    :returns: variables to set, or None.

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_test_reported(check: str, result: TestResult) -> None:
    """A slice reported one test's result (live progress; called from the worker thread).

    :param check: the check.
    :param result: the result, workspace-relative.

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_slice_progress(check: str, slice: SlicePlan, done: int) -> None:
    """A running slice's runner has finished *done* of its tests (it only grows).

    Called while the slice runs, from dagpar's progress thread, for runners that can tell (see
    :func:`dagpar_runner_progress`); the tests' results arrive later, through
    :func:`dagpar_test_reported`.

    :param check: the check.
    :param slice: the slice's plan.
    :param done: tests finished so far.

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_slice_handed_over(
    check: str, slice: SlicePlan, tests: list[TestCase], to: SlicePlan
) -> None:
    """A running slice handed tests it had not started to a new slice (an idle worker's).

    Called from the new slice's worker thread just before ``dagpar_slice_started`` for *to*.
    The handed-over tests are no longer *slice*'s: its result will not include them.

    :param check: the check.
    :param slice: the plan of the slice that gave the tests up.
    :param tests: the tests handed over, workspace-relative.
    :param to: the plan of the slice that will run them.

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_slice_finished(check: str, slice: SlicePlan, result: SliceResult) -> None:
    """A slice ended, successfully or not (called from the slice's worker thread).

    :param check: the check.
    :param slice: the slice's plan.
    :param result: what it did.

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_check_finished(result: CheckResult) -> None:
    """A check ended (called from the check's own thread; checks run side by side).

    :param result: its merged result.

    .. versionadded:: 0.1
    """


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@hookspec
def dagpar_report(run: RunResult, session: RunContext) -> None:
    """Write reports of a finished (or interrupted) run: JUnit, HTML, traces, timings.

    Called even when slices crashed or the run was interrupted, so every selected test is
    reported.

    :param run: the merged result.
    :param session: the run's session.

    .. versionadded:: 0.1
    """


@hookspec
def dagpar_sessionfinish(run: RunResult | None, exitcode: int) -> None:
    """The run is over; flush and release resources.

    :param run: the merged result, None when the run failed before executing or nothing was
        to run (``functions``, ``check -l``).
    :param exitcode: the exit code dagpar is about to return.

    .. versionadded:: 0.1
    """
