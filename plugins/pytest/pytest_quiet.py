"""Keeping a slice's pytest terminal output to what the end of the run needs.

dagpar drops this module into a slice's report directory as ``dagpar_pytest_quiet.py`` and
loads it with its own ``-p`` (see *Running* in :mod:`dagpar_plugins.pytest`). Like the selection
plugin, it must run on whatever pytest (>= 6) and Python (>= 3.7) the project uses, and imports
nothing but pytest and the standard library.

No one watches a slice's terminal output as it runs: dagpar shows its own progress, and quotes
only the last lines of pytest's output when pytest exits with a code it treats as broken. Yet
pytest's terminal reporter works for every report of every test: it writes a letter (or, with
``-v``, a line) and a percentage, and keeps every report, the passing setup and teardown phases
included, until the session ends. On a file of many tiny tests that is about a tenth of what
each test costs. So, as the session starts, when the terminal reporter is pytest's own:

- its ``pytest_runtest_logstart`` and ``pytest_runtest_logfinish`` do nothing, and its
  ``pytest_runtest_logreport`` writes nothing: no letters, words, percentages or per-file path
  lines, at any verbosity (under pytest-xdist, on the controller as on the workers);
- it still asks ``pytest_report_teststatus`` about every report, so every plugin's categories
  count, and keeps each report under its category in ``stats``, except a report whose category
  is ``""`` (a passing setup or teardown, which pytest's summary does not count) that holds no
  captured output (``sections``) and nothing a plugin added to it, unless ``--durations`` asks
  for every phase's time.

Everything else is pytest's own: the header, collection errors, the failures, errors, warnings
and short summary sections, every plugin's ``pytest_terminal_summary``, the final counts line,
``config.get_terminal_writer()``, ``--setup-show``, ``-x`` and keyboard interrupt output, and the
exit code. pytest binds hook implementations when a plugin registers, so the reporter's three
implementations are swapped in place (:func:`install`), its place among the other plugins
unchanged. When the reporter is not what this module expects (``-p no:terminal``, another
plugin's reporter such as pytest-sugar's, a pytest without the internals used here), it is left
as it is.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["Quiet", "install", "pytest_sessionstart"]

#: What pytest-xdist adds to the reports its controller receives from a worker.
_XDIST_KEYS = frozenset({"$report_type", "item_index", "worker_id", "testrun_uid", "node"})


class Quiet:
    """The terminal reporter's per-test hooks, without the progress.

    :param reporter: pytest's ``TerminalReporter``.
    :param plain: the attributes a report holds of its own; a report with any other carries
        something a plugin added, and is kept (None: keep every report).
    """

    def __init__(self, reporter: Any, plain: frozenset[str] | None) -> None:
        self.reporter = reporter
        self.config = reporter.config
        self.teststatus = self.config.hook.pytest_report_teststatus
        self.add_stats = reporter._add_stats
        self.plain = plain
        progress = getattr(reporter, "_progress_nodeids_reported", None)
        #: The tests whose outcome pytest would have shown: the reporter's ``reported_progress``
        #: counts them, and other plugins read that count (pytest's own terminal progress one).
        self.progress = progress if isinstance(progress, set) else set()

    def logreport(self, report: Any, *args: Any, **kwargs: Any) -> None:
        """``pytest_runtest_logreport``: count *report* as pytest does, and write nothing."""
        reporter = self.reporter
        reporter._current_logreport = report
        reporter._tests_ran = True
        category, letter, word = self.teststatus(report=report, config=self.config)
        if category or not self.droppable(report):
            self.add_stats(category, [report])
        if letter or word:
            self.progress.add(report.nodeid)

    def droppable(self, report: Any) -> bool:
        """Whether nothing at the end of the run reads *report* (its category is ``""``)."""
        plain = self.plain
        return plain is not None and not report.sections and report.__dict__.keys() <= plain

    @staticmethod
    def nothing(*args: Any, **kwargs: Any) -> None:
        """``pytest_runtest_logstart`` and ``pytest_runtest_logfinish``: no progress."""


def _plain_keys(config: Any) -> frozenset[str] | None:
    """The attributes of a report no plugin touched; None when every report must be kept."""
    if config.getoption("durations", None) is not None:
        return None  # --durations lists the passing setups and teardowns too
    try:
        from _pytest.reports import TestReport

        probe = TestReport("probe.py::probe", ("probe.py", 0, "probe"), {}, "passed", None, "setup")
        return frozenset(probe.__dict__) | _XDIST_KEYS
    except Exception:  # a pytest whose reports are built otherwise: keep them all
        return None


def install(config: Any) -> Quiet | None:
    """Make pytest's terminal reporter quiet as the module documentation says; None (and the
    reporter left as it is) when it is not pytest's own or not as expected."""
    try:
        from _pytest.terminal import TerminalReporter

        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if type(reporter) is not TerminalReporter:
            return None  # none (-p no:terminal), or another plugin's
        if not callable(getattr(reporter, "_add_stats", None)):
            return None
        if not isinstance(getattr(reporter, "stats", None), dict):
            return None
        quiet = Quiet(reporter, _plain_keys(config))
        swaps = []
        for name, function in (
            ("pytest_runtest_logreport", quiet.logreport),
            ("pytest_runtest_logstart", quiet.nothing),
            ("pytest_runtest_logfinish", quiet.nothing),
        ):
            caller = getattr(config.hook, name, None)
            impls = [] if caller is None else caller.get_hookimpls()
            mine = [impl for impl in impls if impl.plugin is reporter]
            if not mine and name != "pytest_runtest_logreport":
                continue  # this pytest's reporter does nothing there
            if len(mine) != 1 or _wraps(mine[0]):
                return None
            if name == "pytest_runtest_logreport" and list(mine[0].argnames)[:1] != ["report"]:
                return None
            swaps.append((mine[0], function))
    except Exception:  # a pytest without these internals: its reporter as it is
        return None
    done = []
    try:
        for impl, function in swaps:
            original = impl.function
            impl.function = function
            done.append((impl, original))
            if impl.function is not function:
                raise AttributeError("hook implementation not replaced")
    except Exception:
        for impl, original in reversed(done):
            impl.function = original
        return None
    if getattr(reporter, "_show_progress_info", False):
        reporter._show_progress_info = False  # nor the final percentage
    return quiet


def _wraps(impl: Any) -> bool:
    """Whether *impl* is a hook wrapper (its replacement would not be one)."""
    return bool(getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False))


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: Any) -> None:
    """Quieten the terminal reporter once every plugin has had its say (see :func:`install`)."""
    install(session.config)
