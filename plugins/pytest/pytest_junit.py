"""Keeping a slice's passing tests out of pytest's JUnit report: their end events say it all.

The selection plugin (:mod:`dagpar_plugins.pytest.pytest_select`) imports this module, which
dagpar drops next to it in the report directory as ``dagpar_pytest_junit.py``. Like the plugin,
it must run on whatever pytest (>= 6) and Python (>= 3.7) the project uses, and imports nothing
but pytest and the standard library.

pytest's JUnit writer costs a slice of many tiny tests about as much as the rest of dagpar's
bookkeeping: an element, its attributes and properties per test, serialised at the end. Of a
test that passed in every phase, dagpar needs nothing the test's end event does not already hold
(its id, status, seconds, start and, on a file's first test, its file's collection seconds), so
when

- the JUnit report is dagpar's own (the one in the report directory),
- pytest runs the tests itself (no pytest-xdist), and
- ``junit_logging`` is ``no`` (the report holds no captured output of a passing test),

the selection plugin holds each test's reports back from the writer until the test ends (the
writer's own ``pytest_runtest_logreport`` is taken out of pytest's hooks, and the plugin's passes
each report to :meth:`Holder.report`: one hook implementation fewer per report). The
reports of a test that passed every phase, and whose end event was written whole, are then
dropped; every other test's go to the writer in their order, as they would have (a phase that
did not pass sends them at once), and so does anything still held as the session ends. The
report then holds the tests that did not pass, and collection errors; dagpar reads the others'
results from the event file (:mod:`dagpar_plugins.pytest.report`).

It also holds two helpers of the plugin's reports: :func:`short_message`, an end event's one
line, and :func:`xml_safe`, whether a JUnit property can hold an id as it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

__all__ = ["Holder", "install", "short_message", "xml_safe"]


class Holder:
    """Holds each test's reports until the test ends, then drops or forwards them.

    :param forward: the JUnit writer's own ``pytest_runtest_logreport``.
    """

    def __init__(self, forward: Callable[[Any], None]) -> None:
        self.forward = forward
        #: Node id -> the reports held back, in order: every phase so far passed.
        self.held: dict[str, list[Any]] = {}

    def report(self, report: Any) -> None:
        """One phase's report, on its way to the JUnit writer."""
        held = self.held.get(report.nodeid)
        if held is None:
            if getattr(report, "when", None) == "setup" and report.passed:
                self.held[report.nodeid] = [report]
            else:
                self.forward(report)  # not a test's passing start: nothing to hold back
            return
        held.append(report)
        if not report.passed:
            self.release(report.nodeid)

    def settle(self, nodeid: str, told: bool) -> None:
        """The test *nodeid* ended: drop its reports when it passed every phase and *told*
        (its end event, saying so, was written whole); else forward them."""
        held = self.held.pop(nodeid, None)
        if held is None:
            return
        if told and getattr(held[-1], "when", None) == "teardown":
            return
        for report in held:
            self.forward(report)

    def release(self, nodeid: str) -> None:
        """Forward what is held of *nodeid*."""
        for report in self.held.pop(nodeid, ()):
            self.forward(report)

    def release_all(self) -> None:
        """Forward everything still held (the session ends)."""
        for nodeid in list(self.held):
            self.release(nodeid)


def install(config: Any, report_path: str) -> Holder | None:
    """Put a :class:`Holder` between pytest and its JUnit writer, when the writer writes
    *report_path* and the report would hold no captured output; None when it does not.

    The writer no longer hears of test reports itself: the caller passes each one to
    :meth:`Holder.report`, which forwards what the writer must see."""
    try:
        from _pytest import junitxml

        stash = getattr(config, "stash", None)
        if stash is None:  # pragma: no cover - pytest 6
            stash = config._store
        xml = stash.get(junitxml.xml_key, None)
        if xml is None or config.getini("junit_logging") != "no":
            return None
        if os.path.realpath(str(xml.logfile)) != os.path.realpath(report_path):
            return None  # not dagpar's report: it stays whole
        writer = type(xml)
        holder = Holder(writer.pytest_runtest_logreport.__get__(xml))
        # Not a routine: pytest registers no hook implementation for it.
        held_writer = type("HeldLogXML", (writer,), {"pytest_runtest_logreport": None})
        manager = config.pluginmanager
        name = manager.get_name(xml)
        xml.__class__ = held_writer  # the hooks registered so far are still the writer's own
    except Exception:  # a pytest without these internals: its report stays whole
        return None
    try:
        # Registered again without that hook: pluggy binds hooks at registration.
        manager.unregister(xml)
        manager.register(xml, name)
    except Exception:  # the writer as it was, its report whole
        xml.__class__ = writer
        if not manager.is_registered(xml):
            manager.register(xml, name)
        return None
    return holder


def short_message(report: Any) -> str:
    """One short line saying why a phase did not pass."""
    text = ""
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])  # a skip: (file, line, reason)
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = str(getattr(crash, "message", "") or longrepr or "")
    if getattr(report, "wasxfail", None) is not None and report.skipped:
        text = f"xfail: {report.wasxfail}" if report.wasxfail else "xfail"
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:500]
    return ""


def xml_safe(text: str) -> bool:
    """Whether XML 1.0 can hold *text* as it is (tab, newline and CR are escaped by pytest's
    writer; other C0 controls, surrogates and U+FFFE/U+FFFF cannot be held at all)."""
    return _XML_UNSAFE.search(text) is None


_XML_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\ud800-\udfff\ufffe\uffff]")
