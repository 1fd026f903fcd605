"""The runner contract: what a runner plugin implements and the values dagpar passes it.

A runner plugin teaches dagpar one test runner (pytest, Jest, ``go test``, a third party's). It
subclasses :class:`Runner`, declares what the runner can do (:attr:`Runner.has_subtests`,
:meth:`Runner.can_hand_over`), and registers an instance through the
``dagpar_register_runners`` hook; dagpar then asks the runner registered under a toolchain's
``runner`` name, and only that one. The values that cross the boundary are here too:

- :class:`RunnerSpec`: which runner, where, with which ``dagpar.yaml`` settings;
- :class:`RunnerHost`: runs the runner's listing command where the slices will run;
- :class:`Selection`: what one slice asks the runner to run;
- :class:`RunnerCommand`: a command line the runner compiled for a selection, with
  :data:`REPORT_DIR_PLACEHOLDER` where the slice's report directory goes;
- :class:`TailChooser`: decides how many unstarted tests an idle worker takes;
- :class:`TestEvent` and :class:`TestStream`: what a running runner says about each test as it
  starts and ends (:meth:`Runner.stream`).

Paths a runner sees and returns are relative to the toolchain's source directory
(``spec.source``); dagpar converts them to workspace-relative paths at the boundary. Everything
here is exported from :mod:`dagpar_cli`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from dagpar_cli.execution.api import Outcome
    from dagpar_cli.model import TestCase, TestResult

__all__ = [
    "REPORT_DIR_PLACEHOLDER",
    "Runner",
    "RunnerCommand",
    "RunnerHost",
    "RunnerSpec",
    "Selection",
    "TailChooser",
    "TestEvent",
    "TestStream",
]

#: The placeholder for the per-slice report directory in a :class:`RunnerCommand`'s ``argv``,
#: ``env``, ``files`` (names and contents) and ``stdout_file``. dagpar substitutes the
#: directory as the executor mounts it, so the same command serves a subprocess and a container.
REPORT_DIR_PLACEHOLDER = "{report_dir}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerSpec:
    """Which runner a toolchain uses and where: the first argument of every :class:`Runner` call."""

    #: The runner's registered name: ``pytest``, ``jest``, ``go``, or a third party's.
    name: str
    #: The workspace root on the host.
    workspace: Path
    #: The toolchain's source directory relative to the workspace (``""`` for the root).
    source: str = ""
    #: The ``runner:`` override from ``dagpar.yaml``: the command that starts the runner.
    command: tuple[str, ...] | None = None
    #: Extra runner arguments from ``dagpar.yaml`` (``args:``), appended to every run.
    args: tuple[str, ...] = ()
    #: The executor the commands run on (``local``, ``docker``): a runner found on the host is
    #: no use inside an image.
    executor: str = "local"

    @property
    def source_dir(self) -> Path:
        """The source directory on the host."""
        return self.workspace / self.source if self.source else self.workspace


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerCommand:
    """A command a runner plugin compiled for one slice's selection.

    Paths inside ``argv`` and ``files`` that refer to the report directory use the literal
    :data:`REPORT_DIR_PLACEHOLDER` ``{report_dir}``; the engine substitutes where the executor
    mounts it, so the same command serves a subprocess and a container.
    """

    #: The command line, run in the toolchain's source directory.
    argv: tuple[str, ...]
    #: Extra environment variables.
    env: Mapping[str, str] = field(default_factory=dict)
    #: Files to write into the report directory before the run (argument files, configs).
    files: Mapping[str, str] = field(default_factory=dict)
    #: Exit codes that mean "ran, some tests failed" rather than "runner broke".
    ok_exit_codes: frozenset[int] = frozenset({0, 1})
    #: A file name in the report directory that receives the command's standard output as the
    #: command writes it, for runners that print their machine-readable report there
    #: (``go test -json``); None leaves the output in
    #: :attr:`~dagpar_cli.execution.api.Outcome.stdout` only.
    stdout_file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """What one slice asks its runner to run, in the runner plugin's terms.

    Paths are relative to the toolchain's source directory.
    """

    #: The slice's items as the toolchain's field holds them (``("a.py",)``, ``("pkg", "TestX")``).
    items: tuple[tuple[str, ...], ...]
    #: When not None, exactly these tests must run (the filter narrowed the items); when None,
    #: everything the items select.
    tests: tuple[TestCase, ...] | None = None
    #: Whether the order of ``items`` matters: the runner should run their files (or packages)
    #: in that order, keeping its own order inside each, where it can. dagpar asks for it when
    #: idle workers may take a slice's unstarted tail, which should then hold short tests.
    in_order: bool = False


class TailChooser(Protocol):
    """Decides how many unstarted tests an idle worker takes (:meth:`Runner.hand_over_tail`).

    A runner plugin calls it once, under the lock it shares with the runner, with the tests the
    runner has not started (paths relative to the toolchain's source, in the order it would run
    them), how many it has started, and, when it knows, the test it is running now with the
    seconds since that test started. It returns how many tests to take from the end of
    *pending*.
    """

    def __call__(
        self,
        pending: Sequence[TestCase],
        started: int,
        running: tuple[TestCase, float] | None = None,
    ) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TestEvent:
    """One thing a running runner said about one test: it started, or it ended.

    Paths are relative to the toolchain's source directory, like everything a runner returns.
    """

    __test__ = False  # not a pytest test class

    #: ``"start"`` when the runner began the test, ``"end"`` when it reported its outcome.
    kind: Literal["start", "end"]
    #: The test, named (and numbered, :attr:`TestCase.occurrence`) as the listing names it.
    test: TestCase
    #: Wall-clock time (``time.time()``) of the event, as the runner saw it.
    at: float
    #: For ``"end"``: the test's outcome (with ``start`` set when known); None for ``"start"``.
    result: TestResult | None = None


class TestStream(Protocol):
    """Reads a running slice's per-test events from what its runner writes, as it writes it.

    dagpar opens one per slice (:meth:`Runner.stream`) before the runner's first command starts
    and calls :meth:`poll` while the commands run (from one thread at a time) and once more after
    the last one ends. The stream is what keeps the results of finished tests when the runner
    dies, names the test that was running, and drives live progress; the runner's end-of-run
    report (:meth:`Runner.parse`) stays the cross-check.
    """

    def poll(self) -> list[TestEvent]:
        """The events written since the last call, in order.

        Cheap when nothing is new (a ``stat``), tolerant of a half-written last line (it is
        read on a later call) and of files that do not exist yet; never raises for what a test
        wrote. A start whose end follows it in the same call may be left out when that end
        carries the start time (``result.start``): dagpar learns nothing more from it.
        """


class RunnerHost(Protocol):
    """Runs a runner's helper commands (listing) where the slices will run."""

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Run *argv* in the toolchain's source directory and wait for it.

        Never raises for a failing command; a command that cannot start gives an outcome with
        ``not_started`` set and the reason in ``stderr``.
        """


class Runner(abc.ABC):
    """One test runner, as dagpar drives it: list, compile a selection, read the report.

    Subclass it, set :attr:`name` (and :attr:`has_subtests` when it applies), implement
    :meth:`collect`, :meth:`command` and :meth:`parse`, and override the optional methods the
    runner supports. Register an instance from the ``dagpar_register_runners`` hook. dagpar asks
    a runner only about specs that carry its own name, so no method checks ``spec.name``.

    One instance serves the whole run, several slices at once: methods are called from worker
    threads (and :meth:`progress` and :meth:`hand_over_tail` while the slice's command runs), so
    an instance keeps no per-slice state outside the report directory.
    """

    #: The name toolchains use (``@object_type(runner="pytest")``) and ``RunnerSpec.name``
    #: carries; set it as a class attribute. A name registered twice is an error.
    name: str
    #: Whether a filter may name sub-tests that the listing cannot know (Go's ``TestX/sub``):
    #: ``--filter 'pkg::TestX/sub'`` then selects ``TestX`` and a reported ``TestX/sub`` counts
    #: as a test of the listed ``TestX``. When False, a ``/`` in a name is just a character.
    has_subtests: ClassVar[bool] = False

    @abc.abstractmethod
    def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
        """List every test of the source tree, without running any.

        The list defines the items a toolchain splits (distinct paths, in order) and the tests a
        filter can select; the runner's own report must later name tests the same way.

        :param spec: the runner and its source directory.
        :param host: runs the runner's listing command where the slices will run.
        :returns: the tests, in the runner's order, with paths relative to ``spec.source``.
        :raises ExecutionError: when the runner is missing or its listing fails (say which and
            how to fix it).
        """

    def installed(self, spec: RunnerSpec) -> list[str] | None:
        """Name the places outside the workspace whose installed packages can change the listing.

        The listing cache keys a listing on the source tree, virtual environments and
        ``node_modules`` inside the workspace included. A runner that also loads code from
        outside the workspace (a system-wide Python, a virtual environment elsewhere, a
        ``GOPATH``) names those places here, so that installing or removing a package there lists
        the tests afresh. Asked only for the local executor: inside an image, the image is part
        of the key.

        :param spec: the runner and its source directory.
        :returns: absolute paths of directories (or files) whose modification time changes when
            a package is installed or removed there. An empty list when the runner loads nothing
            from outside the workspace; None (the default) when it cannot tell (the key is then
            the tree alone).
        """
        return None

    def progress(self, spec: RunnerSpec, report_dir: Path) -> int | None:
        """How many tests the runner of a running slice has finished so far (live progress).

        Called about twice a second while the slice's command runs, from a thread of its own,
        so it must be cheap (a ``stat``, not a parse) and must not fail when the runner has
        written nothing yet. The count is only shown; results still come from :meth:`parse`.

        :param spec: the runner and its source directory.
        :param report_dir: the slice's report directory on the host, as the runner writes it.
        :returns: the number of tests finished; None (the default) when the runner cannot tell
            while it runs.
        """
        return None

    def stream(self, spec: RunnerSpec, report_dir: Path) -> TestStream | None:
        """Open the per-test event stream of a slice whose commands write under *report_dir*.

        A runner that streams makes its commands (:meth:`command`) write one record per test
        start and end to files in the report directory as the tests run (pytest's injected
        plugin, a Jest reporter, ``go test -json`` through :attr:`RunnerCommand.stdout_file`),
        and returns here a reader of those files. Called once per slice, before the first
        command starts, so the files may not exist yet.

        :param spec: the runner and its source directory.
        :param report_dir: the slice's report directory on the host.
        :returns: the reader; None (the default) when the runner reports only at the end, in
            which case a crash loses the slice's results and nothing resumes.
        """
        return None

    def can_hand_over(self, spec: RunnerSpec) -> bool:
        """Whether a running slice can hand tests it has not started to another slice.

        Asked once per split call, before planning. When the runner and the executor both can
        (the slice's report directory is shared live with the runner: the local executor, a
        local Docker engine), dagpar cuts one balanced slice per worker and lets a worker that
        runs out of work take the not-yet-started tail of a running slice
        (:meth:`hand_over_tail`), instead of cutting more, smaller slices in advance.

        :param spec: the runner, its arguments and its source directory.
        :returns: True when it can (with these arguments); False (the default) when it cannot.
        """
        return False

    def hand_over_tail(
        self, spec: RunnerSpec, report_dir: Path, choose: TailChooser
    ) -> list[TestCase] | None:
        """Take tests from a running slice that its runner has not started yet.

        Called from an idle worker thread while the slice's command runs, possibly at the same
        moment as the runner starts its next test: the plugin must agree with the runner, under
        a lock both respect, on which tests the runner will still start, so that no test is run
        twice or by neither. Under that lock it calls ``choose(pending, started, running)``
        once, with the tests the runner has not started (in the order the runner would run
        them), how many it has started, and ``(test, seconds)``: the test it is running and for
        how long, or None when it is between tests or cannot tell (the argument may be left
        out). ``choose`` returns how many tests to take from the *end* of *pending* (0 takes
        nothing, and is how dagpar compares running slices). The runner then skips those tests
        without reporting them, and dagpar runs them in a new slice (which may itself hand tests
        on). Only called when :meth:`can_hand_over` said yes.

        :param spec: the runner and its source directory.
        :param report_dir: the slice's report directory on the host, shared live with the runner.
        :param choose: decides how many tests to take.
        :returns: the tests taken (``[]`` when ``choose`` took none, or was not called because
            the runner has not yet settled the order of its tests, in which case dagpar asks
            again shortly); None (the default) when this run of the runner cannot hand tests
            over.
        """
        return None

    @abc.abstractmethod
    def command(self, spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
        """Compile a slice's selection into the runner's own command lines.

        Together the commands must run exactly the selected tests, with correctly escaped native
        selectors, and write machine-readable reports under :data:`REPORT_DIR_PLACEHOLDER` (each
        command its own file names). Usually one command; several when one command cannot
        express the selection (Jest's name pattern is global to a run) or a command line would be
        too long (prefer argument files, :attr:`RunnerCommand.files`, where the runner reads
        them). The engine runs them one after another in the slice.

        :param spec: the runner and its source directory.
        :param selection: the slice's items and, when the filter narrowed them, the exact tests.
        :returns: the commands (``[]`` when the selection is empty).
        """

    @abc.abstractmethod
    def parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
        """Read the runner's report into per-test results.

        :param spec: the runner and its source directory.
        :param report_dir: the host directory the commands' placeholder pointed at.
        :param outcome: the commands' combined exit status and output (for build errors and
            crashes).
        :returns: one result per test the runner ran, paths relative to ``spec.source``; tests
            the report does not mention are filled in by the engine as errors.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'name', '?')!r}>"
