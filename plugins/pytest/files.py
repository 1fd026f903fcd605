"""The files a pytest slice shares with the selection plugin, named in one place.

dagpar itself never imports :mod:`dagpar_plugins.pytest.pytest_select`: that module imports pytest,
which dagpar's own environment need not have (dagpar is often installed with pipx). It only
reads its source to drop it into the report directory; the plugin repeats these names, and a
unit test keeps both sides equal.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CLAIMS_MODULE",
    "CLAIM_FILE",
    "EVENTS_FILE",
    "HANDOVER_KEY",
    "ID_PROPERTY",
    "JUNIT_MODULE",
    "NAME_PROPERTY",
    "ORDER_FILE",
    "PATH_PROPERTY",
    "PLUGIN_MODULE",
    "PROGRESS_FILE",
    "QUIET_MODULE",
    "REPORT_FILE",
    "RUN_INFO_FILE",
    "SECONDS_PROPERTY",
    "SELECTION_FILE",
    "SETUP_PROPERTY",
    "claims_source",
    "junit_source",
    "plugin_source",
    "quiet_source",
]

#: The module name the runner command loads with ``-p``; the plugin file is this plus ``.py``.
PLUGIN_MODULE = "dagpar_pytest_select"
#: The module the plugin imports to keep passing tests out of the JUnit report; its file is this
#: plus ``.py``, next to the plugin.
JUNIT_MODULE = "dagpar_pytest_junit"
#: The module the plugin imports to keep the claim file (its side of handing over); its file is
#: this plus ``.py``, next to the plugin.
CLAIMS_MODULE = "dagpar_pytest_claims"
#: The module the runner command loads with its own ``-p`` to keep pytest's terminal reporter
#: from writing per-test progress; its file is this plus ``.py``, next to the plugin.
QUIET_MODULE = "dagpar_pytest_quiet"
#: The selection: ``{"paths": [...], "tests": [[path, name], ...]}``, source-relative, with
#: ``"order": [path, ...]`` when the files should run in that order.
SELECTION_FILE = PLUGIN_MODULE + ".json"
#: What the plugin learnt at start-up: ``{"rootdir": ..., "invocation_dir": ...,
#: "handover": ...}``, written atomically.
RUN_INFO_FILE = "dagpar_pytest_run.json"
#: One byte per finished test, appended by the plugin as each ends (live progress).
PROGRESS_FILE = "dagpar_pytest_progress"
#: One JSON line per test start and end, written as the tests run (the plugin's *Events*).
EVENTS_FILE = "dagpar_pytest_events.jsonl"
#: JUnit property carrying ``[path, name]`` as ASCII JSON, for ids XML cannot hold as they are.
ID_PROPERTY = "dagpar.id"
#: The run-information key that says whether the run can hand tests over (true or false).
HANDOVER_KEY = "handover"
#: The run order once collection settled: ``[[path, name], ...]``, written atomically.
ORDER_FILE = "dagpar_pytest_order.json"
#: ``"<started> <limit>\n"`` (limit -1: none), read and written only under ``flock``.
CLAIM_FILE = "dagpar_pytest_claim"
#: JUnit property names carrying a test's collected path and name.
PATH_PROPERTY = "dagpar.path"
NAME_PROPERTY = "dagpar.name"
#: JUnit property carrying the wall seconds a test cost the run, pytest's work around its
#: phases included (JUnit's ``time`` sums the phases only).
SECONDS_PROPERTY = "dagpar.seconds"
#: JUnit property carrying the seconds pytest took to collect (import) the test's file, on the
#: first selected test of each file: the file's setup, paid again by every slice that runs any
#: of its tests.
SETUP_PROPERTY = "dagpar.setup"
#: The JUnit report the runner command writes.
REPORT_FILE = "pytest-junit.xml"


def plugin_source() -> str:
    """The text of the selection plugin, to be written as ``dagpar_pytest_select.py``."""
    return Path(__file__).with_name("pytest_select.py").read_text(encoding="utf-8")


def junit_source() -> str:
    """The text of the JUnit holder, to be written as ``dagpar_pytest_junit.py``."""
    return Path(__file__).with_name("pytest_junit.py").read_text(encoding="utf-8")


def claims_source() -> str:
    """The text of the claim file's keeper, to be written as ``dagpar_pytest_claims.py``."""
    return Path(__file__).with_name("pytest_claims.py").read_text(encoding="utf-8")


def quiet_source() -> str:
    """The text of the quiet reporter module, to be written as ``dagpar_pytest_quiet.py``."""
    return Path(__file__).with_name("pytest_quiet.py").read_text(encoding="utf-8")
