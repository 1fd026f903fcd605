"""Quietening pytest's terminal reporter in a slice, and leaving it alone when it is not as
expected (real pytest runs are in tests/integration/test_pytest_quiet.py)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import _pytest.reports
import pytest
from _pytest.terminal import TerminalReporter
from dagpar_plugins.pytest import pytest_quiet
from dagpar_plugins.pytest.pytest_quiet import install

HOOKS = ("pytest_runtest_logreport", "pytest_runtest_logstart", "pytest_runtest_logfinish")
ARGNAMES = {
    "pytest_runtest_logreport": ("report",),
    "pytest_runtest_logstart": ("nodeid", "location"),
    "pytest_runtest_logfinish": ("nodeid",),
}


class Impl:
    """What pluggy keeps of one hook implementation."""

    def __init__(self, plugin: object, name: str, wrapper: bool = False) -> None:
        self.plugin = plugin
        self.function: Callable[..., Any] = getattr(plugin, name, None) or (lambda *a: None)
        self.argnames = ARGNAMES[name]
        self.wrapper = wrapper
        self.hookwrapper = False


class Fixed(Impl):
    """A hook implementation whose function cannot be replaced."""

    @property  # type: ignore[override]
    def function(self) -> Callable[..., Any]:
        return lambda *a: None

    @function.setter
    def function(self, value: Callable[..., Any]) -> None:
        pass  # silently ignored


class Caller:
    """A hook caller: its implementations."""

    def __init__(self, impls: list[Impl]) -> None:
        self.impls = impls

    def get_hookimpls(self) -> list[Impl]:
        return self.impls


def _status(report: Any, config: Any) -> tuple[str, str, str]:
    """pytest's ``pytest_report_teststatus``, short."""
    if report.when == "call" or not report.passed:
        return report.outcome, report.outcome[0], report.outcome.upper()
    return "", "", ""


class Setup:
    """A pytest configuration around a real (uninitialised) terminal reporter."""

    def __init__(self, durations: int | None = None, reporter_type: type = TerminalReporter):
        reporter = object.__new__(reporter_type)
        reporter.config = self
        reporter.stats = {}
        reporter._progress_nodeids_reported = set()
        reporter._show_progress_info = "progress"
        reporter._add_stats = self.add_stats
        self.reporter = reporter
        self.durations = durations
        self.pluginmanager = SimpleNamespace(get_plugin=self.get_plugin)
        self.impls = {name: Impl(reporter, name) for name in HOOKS}
        self.hook = SimpleNamespace(
            pytest_report_teststatus=_status,
            **{name: Caller([Impl(object(), name), impl]) for name, impl in self.impls.items()},
        )

    def get_plugin(self, name: str) -> Any:
        return self.reporter if name == "terminalreporter" else None

    def getoption(self, name: str, default: Any = None) -> Any:
        return self.durations if name == "durations" else default

    def add_stats(self, category: str, items: list[Any]) -> None:
        self.reporter.stats.setdefault(category, []).extend(items)

    def originals(self) -> dict[str, Any]:
        return {name: impl.function for name, impl in self.impls.items()}


def _report(nodeid: str, when: str, outcome: str = "passed", **extra: Any) -> Any:
    return _pytest.reports.TestReport(nodeid, (nodeid, 0, nodeid), {}, outcome, None, when, **extra)


def _run(setup: Setup, reports: list[Any]) -> None:
    for report in reports:
        setup.impls["pytest_runtest_logreport"].function(report)


def test_the_reporter_counts_every_report_keeps_what_is_read_and_writes_nothing() -> None:
    setup = Setup()
    reporter = setup.reporter
    assert install(setup) is not None
    for name in ("pytest_runtest_logstart", "pytest_runtest_logfinish"):
        assert setup.impls[name].function("t.py::a", ("t.py", 0, "a")) is None
    noisy = _report("t.py::b", "teardown")
    noisy.sections.append(("Captured stdout teardown", "hi"))
    noted = _report("t.py::b", "teardown", noted=1)
    _run(
        setup,
        [
            _report("t.py::a", "setup"),
            _report("t.py::a", "call"),
            _report("t.py::a", "teardown"),
            _report("t.py::b", "call", "failed"),
            noisy,
            noted,
            _report("t.py::c", "teardown", "failed"),
        ],
    )
    assert {k: len(v) for k, v in reporter.stats.items()} == {"passed": 1, "failed": 2, "": 2}
    assert reporter.stats[""] == [noisy, noted]
    assert reporter._progress_nodeids_reported == {"t.py::a", "t.py::b", "t.py::c"}
    assert reporter._show_progress_info is False  # nor the final percentage
    assert reporter._tests_ran is True
    # The other plugins' implementations are untouched, and keep their places.
    assert all(setup.hook.__dict__[name].impls[1] is setup.impls[name] for name in HOOKS)


def test_durations_keep_every_phase() -> None:
    setup = Setup(durations=0)
    assert install(setup) is not None
    _run(setup, [_report("t.py::a", "setup"), _report("t.py::a", "teardown")])
    assert len(setup.reporter.stats[""]) == 2


def test_reports_built_otherwise_are_all_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise TypeError("not this way")

    monkeypatch.setattr(_pytest.reports, "TestReport", broken)
    setup = Setup()
    assert install(setup) is not None
    monkeypatch.undo()
    _run(setup, [_report("t.py::a", "setup")])
    assert len(setup.reporter.stats[""]) == 1


class OwnReporter(TerminalReporter):
    """Another plugin's reporter (pytest-sugar's is one)."""


def _untouched(setup: Setup) -> None:
    before = setup.originals()
    assert install(setup) is None
    assert setup.originals() == before
    assert setup.reporter._show_progress_info == "progress"


def test_another_plugin_s_reporter_is_left_alone() -> None:
    _untouched(Setup(reporter_type=OwnReporter))


def test_no_reporter_is_left_alone() -> None:
    setup = Setup()
    setup.reporter = None
    assert install(setup) is None


def test_a_reporter_without_the_expected_internals_is_left_alone() -> None:
    setup = Setup()
    setup.reporter._add_stats = None
    _untouched(setup)
    setup = Setup()
    setup.reporter.stats = None
    _untouched(setup)


def test_unexpected_hook_implementations_leave_the_reporter_alone() -> None:
    setup = Setup()
    setup.hook.pytest_runtest_logreport.impls.pop()  # the reporter reports nothing itself
    _untouched(setup)
    setup = Setup()
    setup.impls["pytest_runtest_logstart"].wrapper = True
    _untouched(setup)
    setup = Setup()
    setup.impls["pytest_runtest_logreport"].argnames = ("rep",)
    _untouched(setup)
    setup = Setup()
    setup.hook.pytest_runtest_logfinish.impls.append(
        Impl(setup.reporter, "pytest_runtest_logfinish")
    )
    _untouched(setup)


def test_a_pytest_without_a_finish_hook_is_quietened_all_the_same() -> None:
    setup = Setup()
    setup.hook.pytest_runtest_logfinish.impls.pop()
    assert install(setup) is not None


def test_an_implementation_that_cannot_be_replaced_undoes_the_others() -> None:
    setup = Setup()
    fixed = Fixed(setup.reporter, "pytest_runtest_logfinish")
    setup.hook.pytest_runtest_logfinish.impls[-1] = fixed
    setup.impls["pytest_runtest_logfinish"] = fixed
    before = setup.originals()
    assert install(setup) is None
    assert setup.originals()["pytest_runtest_logreport"] is before["pytest_runtest_logreport"]
    assert setup.originals()["pytest_runtest_logstart"] is before["pytest_runtest_logstart"]


def test_the_session_start_quietens_the_reporter() -> None:
    setup = Setup()
    pytest_quiet.pytest_sessionstart(SimpleNamespace(config=setup))
    assert setup.reporter._show_progress_info is False
