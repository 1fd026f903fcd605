"""The pytest plugin dagpar drops into a slice's report directory to run exactly its selection.

No node ids go on the command line (a slice may select tens of thousands, and pytest's parsing
of ``file::name`` has changed between versions): :func:`dagpar_plugins.pytest.command.
compile_command` writes this file as ``dagpar_pytest_select.py`` next to a JSON selection, puts
the report directory on ``PYTHONPATH`` and loads it with ``-p``.

Inside the project's own interpreter it then

- keeps pytest from even importing files outside the selection (``pytest_ignore_collect``), so
  an unselected broken file cannot fail the slice;
- deselects every collected item that is not selected, comparing the file (relative to the
  invocation directory, the toolchain's source) and the node id after the file part, which is
  exactly the form the runner's listing (``PytestRunner.collect``) gives;
- runs whole files in the order the selection's ``"order"`` gives, when it gives one;
- tags every kept item with ``dagpar.path`` and ``dagpar.name`` JUnit properties, so the report
  names tests exactly as they were collected whatever pytest's rootdir or JUnit name mangling;
- records pytest's rootdir, so collection errors (which carry no properties) can be mapped too;
- appends one byte per finished test to a progress file (dagpar reads its size: live progress);
- writes one JSON line per test start and end to an event file (the controller's, under
  pytest-xdist), flushed as each is written: dagpar reads it while the slice runs, and it keeps
  the results of finished tests when pytest dies (see *Events* below);
- keeps passing tests out of the JUnit report (*Passing tests*, below);
- lets dagpar take tests it has not started yet (*handing over*, below).

Handing over
    When pytest runs the tests itself (no pytest-xdist distribution) on a POSIX system, the run
    information says ``"handover": true``. Once collection has settled, the plugin writes the
    claim file, one ASCII line ``<started> <limit>`` (``0 -1``: nothing started, no limit), and
    then, atomically, the run order: every item as ``[path, name]``, the form of the JUnit
    properties. Both sides change the claim file only under ``flock``. Before a test starts, the
    plugin counts it as started (``started = index + 1``, or, while tests are quick, a few
    milliseconds' worth of the next tests of its file with it: see ``dagpar_pytest_claims``)
    unless its index is at or beyond the limit, in which case pytest neither runs nor reports
    it. dagpar takes tests by lowering the limit, never below ``started``, so a test is either
    started here or taken, never both. As a test tears down, the plugin settles the next one
    the same way: counted as started, or, when it was taken, every fixture is torn down there
    and then (as after pytest's last test) rather than at the end of the session, where a
    teardown error would go unreported. When pytest stops (``-x``, or the session ends), the
    limit drops to ``started``: nothing more can be taken.

Events
    ``{"e": "start", "path": P, "name": N, "at": T}`` as a test starts and ``{"e": "end",
    "path": P, "name": N, "at": T, "start": T0, "status": S, "seconds": D, "message": M}`` as it
    ends, one line each, ASCII (``json.dumps`` escapes every control character, so an id with a
    raw newline or ESC stays on its line). ``T`` and ``T0`` are ``time.time()``; ``S`` is the
    status the JUnit report gives the test (``passed``, ``failed`` when a call failed,
    ``error`` when a setup or teardown did, ``skipped``; the worst phase wins as in the report);
    ``D`` the sum of its phases' durations; ``M`` one short line. The end of a file's first
    selected test also holds ``"setup": C``, its ``dagpar.setup`` (see *Seconds*).

    Every hook implementation costs a call per test (or per phase), so when pytest runs the
    tests itself the start is written by the plugin's run protocol and the end by its report
    of the teardown, the last phase: the plugin implements none of pytest's per-test log hooks.
    Under pytest-xdist the controller hears of the workers' tests only through those log hooks
    (``pytest_runtest_logstart``/``logfinish``), and registers them for that.

Passing tests
    Where the JUnit report is dagpar's, pytest runs the tests itself (no pytest-xdist) and
    ``junit_logging`` is ``no``, the reports of a test that passed every phase, and whose end
    event was written whole, never reach pytest's JUnit writer: dagpar reads such a test from
    its end event. See :mod:`dagpar_plugins.pytest.pytest_junit` (``dagpar_pytest_junit.py``
    next to this module), which this plugin imports.

Parametrized tests
    A slice may hold a few of a file's 40,000 parametrized cases. Once every plugin has
    parametrized a function (``pytest_generate_tests``), the plugin keeps only the cases whose
    name is selected, so pytest builds test items for those alone and a slice's collection
    grows with its selection, not with the file. A function whose cases are all unselected
    keeps one, deselected as usual; files selected whole are left alone.

Seconds
    pytest's JUnit ``time`` sums a test's phases, leaving out what pytest does around them
    (reporting each phase to every plugin, this plugin's bookkeeping): on a file of many tiny
    tests, most of the run. So each test also gets a ``dagpar.seconds`` property, the wall
    seconds from the start of its run protocol to the end of its teardown, and its end event's
    ``D`` is those seconds up to the event: the timings add up to the slice's time. Likewise
    the seconds pytest takes to collect a file (importing it, building its items), paid again
    by every slice that runs any of its tests, go to the file's first selected test as a
    ``dagpar.setup`` property, so they are planned with the file, not as start-up.

It must run on whatever pytest (>= 6) and Python (>= 3.7) the project uses; it imports nothing
but pytest, the standard library, ``dagpar_pytest_junit`` and ``dagpar_pytest_claims`` (the claim
file's side of *Handing over*: :mod:`dagpar_plugins.pytest.pytest_claims`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Collection
from json.encoder import encode_basestring_ascii as _ascii
from typing import Any

import pytest

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no hand-over
    fcntl = None  # type: ignore[assignment]

try:  # next to this module, in a slice's report directory
    import dagpar_pytest_claims as _claim_file  # type: ignore[import-not-found]
    import dagpar_pytest_junit as _junit  # type: ignore[import-not-found]
except ImportError:  # imported from dagpar's package
    from . import pytest_claims as _claim_file
    from . import pytest_junit as _junit

# These names repeat those of dagpar_plugins.pytest.files (this file must stand alone).
#: The module name the runner command loads with ``-p``.
MODULE = "dagpar_pytest_select"
#: The selection file, next to this module: ``{"paths": [...], "tests": [[path, name], ...]}``,
#: and ``"order": [path, ...]`` when dagpar asks for its files to run in that order.
SELECTION_FILE = MODULE + ".json"
#: What the plugin learnt at start-up: ``{"rootdir": ..., "invocation_dir": ...,
#: "handover": ...}``, written atomically.
RUN_INFO_FILE = "dagpar_pytest_run.json"
#: One byte per finished test, appended as each ends: dagpar reads its size for live progress.
PROGRESS_FILE = "dagpar_pytest_progress"
#: One JSON line per test start and end, flushed as written (see *Events*).
EVENTS_FILE = "dagpar_pytest_events.jsonl"
#: JUnit property carrying ``[path, name]`` as ASCII JSON, for ids XML cannot hold.
ID_PROPERTY = "dagpar.id"
#: The run-information key that says whether this run can hand tests over.
HANDOVER_KEY = "handover"
#: The run order once collection settled: ``[[path, name], ...]``, written atomically.
ORDER_FILE = "dagpar_pytest_order.json"
#: ``"<started> <limit>\n"`` (limit -1: none), read and written only under ``flock``.
CLAIM_FILE = "dagpar_pytest_claim"
#: JUnit property names carrying the collected form of a test.
PATH_PROPERTY = "dagpar.path"
NAME_PROPERTY = "dagpar.name"
#: JUnit property carrying the seconds the test cost the run (see *Seconds*).
SECONDS_PROPERTY = "dagpar.seconds"
#: JUnit property carrying the seconds its file took to collect (see *Seconds*).
SETUP_PROPERTY = "dagpar.setup"
#: The JUnit report dagpar asks for, next to this module.
REPORT_FILE = "pytest-junit.xml"
#: An end event longer than this keeps its test in the JUnit report (dagpar skips 1 MB lines).
_TOLD_LONGEST = 1 << 16

_HERE = os.path.dirname(os.path.abspath(__file__))


class _Selection:
    """The selection, keyed by absolute, case-normalised paths."""

    def __init__(self, data: dict[str, Any], base: str) -> None:
        self.base = base
        self._relative: dict[str, str] = {}
        self._in_whole: dict[str, bool] = {}
        #: Files and directories selected whole.
        self.whole: set[str] = {self._abs(p) for p in data.get("paths", [])}
        #: File -> the names selected in it.
        self.tests: dict[str, set[str]] = {}
        by_path: dict[str, set[str]] = {}
        for path, name in data.get("tests", []):
            names = by_path.get(path)
            if names is None:  # once per file: a file may hold 40,000 selected tests
                names = by_path[path] = self.tests.setdefault(self._abs(path), set())
            names.add(name)
        #: File -> its place in the order dagpar asked for (files it did not name come after).
        self.rank: dict[str, int] = {}
        for path in data.get("order", []):
            self.rank.setdefault(self._abs(path), len(self.rank))
        #: Every directory above a selected path: pytest must walk through them.
        self.ancestors: set[str] = set()
        for path in self.whole | set(self.tests):
            parent = os.path.dirname(path)
            while parent not in self.ancestors and parent != os.path.dirname(parent):
                self.ancestors.add(parent)
                parent = os.path.dirname(parent)
            self.ancestors.add(parent)

    def _abs(self, path: str) -> str:
        return os.path.normcase(os.path.normpath(os.path.join(self.base, path)))

    def in_whole(self, path: str) -> bool:
        """Whether *path* is, or is inside, a path selected whole."""
        known = self._in_whole.get(path)
        if known is None:  # once per file: every item of a file asks
            known = self._in_whole[path] = self._inside_whole(path)
        return known

    def _inside_whole(self, path: str) -> bool:
        while True:
            if path in self.whole:
                return True
            parent = os.path.dirname(path)
            if parent == path:
                return False
            path = parent

    def wanted(self, path: str) -> bool:
        """Whether collection may enter *path* (a file or a directory)."""
        return path in self.ancestors or path in self.tests or self.in_whole(path)

    def relative(self, path: str) -> str:
        """*path* relative to the invocation directory, POSIX style."""
        relative = self._relative.get(path)
        if relative is None:
            # Once per file: relpath is costly, and a file holds many tests.
            relative = os.path.relpath(os.path.abspath(path), self.base).replace(os.sep, "/")
            self._relative[path] = relative
        return relative


def _write_atomically(name: str, text: str) -> None:
    """Write *name* next to this module so that a reader never sees it half written."""
    path = os.path.join(_HERE, name)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(temporary, path)


_selection: _Selection | None = None
#: The open progress file (the controller's, never a pytest-xdist worker's).
_progress: _claim_file.Appender | None = None
#: The open event file (the controller's, never a pytest-xdist worker's).
_events: _claim_file.Appender | None = None
#: Node id -> (path, name) of every kept item, for naming events (the controller's items).
_ids: dict[str, tuple[str, str]] = {}
#: Node id -> the test's state while it runs: [id's JSON, start, status, seconds, message,
#: ``time.perf_counter()`` as its run protocol started or None (see *Seconds*)].
_running: dict[str, list[Any]] = {}
#: File key -> the seconds pytest took to collect that file (see *Seconds*).
_collect_seconds: dict[str, float] = {}
#: Node id -> ``time.perf_counter()`` as the test's run protocol started (see *Seconds*), for
#: the tests whose start this process does not write.
_began: dict[str, float] = {}
#: Whether this run may hand tests over (decided as pytest starts).
_hands_over = False
#: Holds passing tests' reports back from the JUnit writer (see *Passing tests*), or None.
_holder: _junit.Holder | None = None
#: Node id -> the seconds its file took to collect, for the first selected test of each file.
_setup: dict[str, float] = {}
#: The runner's side of handing over, once collection settled with hand-over on.
_claims: _claim_file.Claims | None = None
#: The major version of pytest: some hooks and internals differ between versions.
_PYTEST_MAJOR = int(pytest.__version__.split(".")[0])


def _key(path: object) -> str:
    text = str(path)
    key = _keys.get(text)
    if key is None:
        # Once per file: a file's items all ask.
        key = _keys[text] = os.path.normcase(os.path.normpath(os.path.abspath(text)))
    return key


#: A path as pytest gives it -> its :func:`_key`.
_keys: dict[str, str] = {}


def _split_nodeid(item: pytest.Item) -> str:
    """The node id after the file part, as ``pytest --collect-only -q`` prints it."""
    file_node = item.getparent(pytest.File)  # type: ignore[type-abstract]
    if file_node is not None and item.nodeid.startswith(file_node.nodeid + "::"):
        return item.nodeid[len(file_node.nodeid) + 2 :]
    return item.nodeid.split("::", 1)[-1]


def _raw_path(item: pytest.Item | pytest.Collector) -> str:
    # Item.path is pytest >= 7; fspath (a py.path) is what pytest 6 has.
    return str(getattr(item, "path", None) or item.fspath)


def _test_id(item: pytest.Item) -> tuple[str, str]:
    """``(path, name)`` exactly as the JUnit properties name *item*."""
    assert _selection is not None
    # The path as pytest spells it, not case-folded, so that it matches the listing.
    return _selection.relative(_raw_path(item)), _split_nodeid(item)


def _option(config: pytest.Config, name: str, default: Any) -> Any:
    try:
        return config.getoption(name, default)
    except (ValueError, AttributeError):
        return default


def _distributed(config: pytest.Config) -> bool:
    """Whether pytest-xdist may run the tests in other processes (erring towards yes)."""
    if config.pluginmanager.has_plugin("dsession"):
        return True
    numprocesses = _option(config, "numprocesses", None)
    dist = _option(config, "dist", "no")
    return bool(
        numprocesses
        or (dist is not None and dist != "no")
        or _option(config, "tx", None)
        or _option(config, "looponfail", False)
    )


@pytest.hookimpl(trylast=True)  # after pytest's JUnit writer has been set up
def pytest_configure(config: pytest.Config) -> None:
    """Load the selection and record where pytest put its rootdir."""
    global _selection, _hands_over, _holder
    base = str(config.invocation_params.dir)
    with open(os.path.join(_HERE, SELECTION_FILE), encoding="utf-8") as stream:
        _selection = _Selection(json.load(stream), base)
    # Under pytest-xdist every worker loads this plugin too; only the controller writes.
    if not hasattr(config, "workerinput"):
        # rootpath is pytest >= 6.1; rootdir (a py.path) is older and gone from pytest 9.
        rootdir = getattr(config, "rootpath", None)
        if rootdir is None:
            rootdir = config.rootdir  # type: ignore[attr-defined]
        _hands_over = (
            fcntl is not None
            and not _distributed(config)
            and not _option(config, "collectonly", False)
        )
        global _rootdir
        _rootdir = str(rootdir)
        info = {"rootdir": str(rootdir), "invocation_dir": base, HANDOVER_KEY: _hands_over}
        # dagpar reads this while pytest runs, to learn whether it may take tests.
        _write_atomically(RUN_INFO_FILE, json.dumps(info))
        global _progress, _events, _logged
        _progress = _claim_file.Appender(os.path.join(_HERE, PROGRESS_FILE))
        _events = _claim_file.Appender(os.path.join(_HERE, EVENTS_FILE))
        if not _distributed(config):
            _holder = _junit.install(config, os.path.join(_HERE, REPORT_FILE))
        else:
            # The tests run in pytest-xdist's workers: their starts and ends come to this
            # process only as pytest's log hooks (see *Events*).
            _logged = _Logged()
            config.pluginmanager.register(_logged, "dagpar_pytest_select_log")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Publish the run order, once every plugin has reordered and deselected."""
    global _claims
    _check_files()  # the test files' own code has run
    if _hands_over:
        path = os.path.join(_HERE, CLAIM_FILE)
        _claims = _claim_file.Claims(path, session.items, reopened=_check_files, group=_parent)
        order = [_ids.get(item.nodeid) or _test_id(item) for item in _claims.items]
        _write_atomically(ORDER_FILE, json.dumps([[path, name] for path, name in order]))


def _parent(item: pytest.Item) -> object:
    """What one look at the claim file keeps a batch of quick tests within."""
    return item.parent


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Start *item* unless dagpar took it (a taken item is neither run nor reported); write
    its start event."""
    if _claims is not None and not _claims.start(item):
        return True
    began = time.perf_counter()
    nodeid = item.nodeid
    if _events is None or _logged is not None:  # a worker's, or written as pytest logs it
        _began[nodeid] = began
        return None
    _log_start(nodeid, began)
    return None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Settle the next test; when it was taken, tear every fixture down as after the last test.

    Runs after pytest's own teardown, which kept what the next test needs: left until the end
    of the session, a fixture's teardown error would be lost rather than reported here.
    Last, the test's seconds so far go into its report (see *Seconds*).
    """
    _hand_over_after(item, nextitem)
    state = _running.get(item.nodeid)
    began = _began.pop(item.nodeid, None) if state is None else state[5]
    if began is not None:
        seconds = time.perf_counter() - began
        item.user_properties.append((SECONDS_PROPERTY, f"{seconds:.6f}"))


def _hand_over_after(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Settle the test after *item*; when it was taken, tear every fixture down now."""
    if _claims is None:
        return
    if item.session.shouldstop or item.session.shouldfail:
        # pytest stops after this test (``-x``): nothing more may be taken from now on. (pytest
        # < 8 passes the next test even so; it will not start.)
        _claims.finish()
        return
    if _claims.settle_next(nextitem):  # also checks the kept files: the test's code has run
        return
    state = getattr(item.session, "_setupstate", None)
    if state is None:  # pragma: no cover - not pytest 6 to 9
        return
    if _PYTEST_MAJOR >= 7:
        state.teardown_exact(None)
    else:  # pragma: no cover - pytest 6
        state.teardown_exact(item, None)


@pytest.hookimpl(tryfirst=True)  # before pytest's JUnit writer writes its report
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Let nothing more be taken: the session is over (perhaps stopped early)."""
    if _claims is not None:
        _claims.finish()
    if _holder is not None:
        _holder.release_all()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many collected tests another slice runs instead."""
    if _claims is not None and _claims.taken:
        count = _claims.taken
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(f"dagpar: {count} {tests} handed over to another slice")


class _Logged:
    """The start and end events of tests pytest-xdist runs, as this process hears of them
    (registered only then: else the run protocol writes a test's start, and its teardown's
    report its end, two hook calls fewer per test)."""

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        """Write the test's start event."""
        _log_start(nodeid, _began.pop(nodeid, None))

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        """Count one finished test (the controller's count); write its end."""
        _log_end(nodeid)


#: The pytest-xdist controller's log hooks, while registered (see :class:`_Logged`).
_logged: _Logged | None = None


def _log_start(nodeid: str, began: float | None) -> None:
    """Write the start event of *nodeid*; keep what its end needs."""
    if _events is None:
        return
    path, name = _ids.get(nodeid) or _id_of_nodeid(nodeid)
    # The id's part of both events, encoded once, as json.dumps would.
    named = f'"path": {_ascii(path)}, "name": {_ascii(name)}'
    now = time.time()
    _running[nodeid] = [named, now, "passed", 0.0, "", began]
    _write_line(f'{{"e": "start", {named}, "at": {now!r}}}\n')  # time.time() is finite


def pytest_runtest_logreport(report: Any) -> None:
    """Fold one phase of a test into its status, as the JUnit report will; pass the report on
    to the JUnit writer's holder (see *Passing tests*). After the teardown of a test this
    process started, write its end (as pytest's log hooks would, right after)."""
    if _holder is not None:
        _holder.report(report)
    nodeid = report.nodeid
    state = _running.get(nodeid)
    if state is None:
        return
    when = getattr(report, "when", "call")
    try:
        state[3] += float(getattr(report, "duration", 0.0) or 0.0)
    except (TypeError, ValueError):
        pass
    if not report.passed:
        if report.skipped:
            status = "skipped"
        elif when == "call":
            status = "failed"
        else:
            status = "error"
        if _RANK[status] > _RANK[state[2]]:
            state[2] = status
            state[4] = _junit.short_message(report)
    if when == "teardown" and _logged is None:
        _log_end(nodeid)


def _log_end(nodeid: str) -> None:
    """Count one finished test; write its end event, and settle its reports (see *Passing
    tests*)."""
    if _progress is not None:
        _progress.write(b".")
    state = _running.pop(nodeid, None)
    setup = _setup.pop(nodeid, None)
    if _events is None or state is None:
        if _holder is not None:
            _holder.settle(nodeid, told=False)
        return
    named, start, status, seconds, message, began = state
    if began is not None:
        seconds = max(seconds, time.perf_counter() - began)
    line = (
        f'{{"e": "end", {named}, "at": {time.time()!r}, "start": {start!r}, "status": "{status}", '
        f'"seconds": {_number(seconds)}, "message": {_ascii(message) if message else _EMPTY}'
        + ("}\n" if setup is None else f', "setup": {_number(setup)}}}\n')
    )
    written = _write_line(line)
    if _holder is not None:
        told = written and status == "passed" and len(line) <= _TOLD_LONGEST
        _holder.settle(nodeid, told=told and math.isfinite(seconds))


_EMPTY = '""'  # the empty message, as JSON
#: How bad a status is, as the JUnit report ranks a test's phases.
_RANK = {"passed": 0, "skipped": 1, "error": 2, "failed": 3}


def _check_files() -> None:
    """Open the event and progress files afresh if test code closed their descriptors (checked
    after collection, and as each test settles the next: see ``dagpar_pytest_claims``)."""
    if _events is not None:
        _events.check()
    if _progress is not None:
        _progress.check()


def _write_line(line: str) -> bool:
    """Append one event line (ASCII JSON, as ``json.dumps`` would write it); whether it was
    written whole."""
    data = line.encode("ascii")
    # One write per line, to a file opened for appending: a reader never sees two events
    # interleaved, and sees a line whole once its newline is there. A full disk costs the
    # stream, never the run; the JUnit report remains.
    return _events is not None and _events.write(data) == len(data)


def _number(value: float) -> str:
    """*value* as ``json.dumps`` writes it (a finite float's repr is its JSON)."""
    return repr(value) if isinstance(value, float) and math.isfinite(value) else json.dumps(value)


def _id_of_nodeid(nodeid: str) -> tuple[str, str]:
    """``(path, name)`` of a node id this process did not collect (pytest-xdist's controller):
    the file part is the longest ``::``-separated prefix that is a file."""
    assert _selection is not None
    parts = nodeid.split("::")
    for cut in range(len(parts) - 1, 0, -1):
        head = "::".join(parts[:cut])
        if os.path.isfile(os.path.join(_rootdir, head)):
            return _selection.relative(os.path.join(_rootdir, head)), "::".join(parts[cut:])
    return _selection.relative(os.path.join(_rootdir, parts[0])), "::".join(parts[1:])


#: pytest's rootdir (node ids are relative to it).
_rootdir = "."


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the progress file and forget the run (pytest may run again in this process)."""
    global _progress, _claims, _hands_over, _events, _holder, _logged
    if _logged is not None:
        config.pluginmanager.unregister(_logged)
        _logged = None
    if _progress is not None:
        _progress.close()
        _progress = None
    if _events is not None:
        _events.close()
        _events = None
    _ids.clear()
    _running.clear()
    _began.clear()
    if _claims is not None:
        _claims.close()
    _claims = None
    _hands_over = False
    _holder = None
    _setup.clear()
    _keys.clear()


def _ignore(path: object) -> bool | None:
    """Whether to keep pytest out of *path*: it holds nothing selected."""
    if _selection is None:
        return None
    # None, not False: other plugins (``--ignore``, ``norecursedirs``) still have their say.
    return None if _selection.wanted(_key(path)) else True


@pytest.hookimpl(hookwrapper=True)
def pytest_generate_tests(metafunc: Any) -> Any:
    """Keep only the selected cases of a parametrized function (see *Parametrized tests*)."""
    yield
    if _selection is None:
        return
    try:
        calls = metafunc._calls
        definition = metafunc.definition
        if len(calls) < 2:
            return
        path = _key(_raw_path(definition))
        names = _selection.tests.get(path)
        if not names or _selection.in_whole(path):
            return
        base = _split_nodeid(definition)
        kept = [c for c in calls if f"{base}[{c.id}]" in names]
        # One case at least: without any, pytest would build the function unparametrized.
        calls[:] = kept or calls[:1]
    except (AttributeError, TypeError):  # pragma: no cover - a pytest without these internals
        return


# The hook's path argument was renamed in pytest 7 and the old name removed in pytest 9; the
# old one is also deprecated from 7 on, so each version gets only its own name.
if _PYTEST_MAJOR >= 7:

    def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
        """Keep pytest out of files and directories that hold nothing selected."""
        return _ignore(collection_path)

else:  # pragma: no cover - pytest 6

    def pytest_ignore_collect(path: Any, config: pytest.Config) -> bool | None:  # type: ignore[misc]
        """Keep pytest out of files and directories that hold nothing selected."""
        return _ignore(path)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: Any) -> Any:
    """Time the collection of each test file (see *Seconds*)."""
    if _selection is None or not isinstance(collector, pytest.Module):
        yield
        return
    begun = time.perf_counter()
    yield
    key = _key(_raw_path(collector))
    _collect_seconds[key] = _collect_seconds.get(key, 0.0) + time.perf_counter() - begun


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Keep exactly the selected items and tag them with their collected names."""
    if _selection is None:
        return
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    #: Parent node -> its items' file key, whether it is selected whole, its selected names,
    #: its path as named and its node id prefix.
    parents: dict[Any, tuple[str, bool, Collection[str], str, str | None]] = {}
    for item in items:
        nodeid = item.nodeid
        known = parents.get(item.parent)
        if known is None:  # once per file or class: a file may hold 40,000 items
            raw = _raw_path(item)
            path = _key(raw)
            file_node = item.getparent(pytest.File)  # type: ignore[type-abstract]
            prefix = None if file_node is None else file_node.nodeid + "::"
            whole = _selection.in_whole(path)
            names: Collection[str] = () if whole else _selection.tests.get(path, ())
            known = parents[item.parent] = (path, whole, names, _selection.relative(raw), prefix)
        path, whole, names, test_path, prefix = known
        if prefix is not None and nodeid.startswith(prefix):
            name = nodeid[len(prefix) :]
        else:
            name = nodeid.split("::", 1)[-1]
        if whole or name in names:
            _ids[nodeid] = (test_path, name)
            if _junit.xml_safe(test_path) and _junit.xml_safe(name):
                item.user_properties.append((PATH_PROPERTY, test_path))
                item.user_properties.append((NAME_PROPERTY, name))
            else:
                # pytest writes property values as they are: a control character XML 1.0
                # cannot hold would make the whole report malformed. ASCII JSON can hold it.
                item.user_properties.append((ID_PROPERTY, json.dumps([test_path, name])))
            setup = _collect_seconds.pop(path, None)
            if setup is not None:  # the file's first selected test carries its collection
                item.user_properties.append((SETUP_PROPERTY, f"{setup:.6f}"))
                _setup[nodeid] = setup
            kept.append(item)
        else:
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    if _selection.rank:
        # Whole files move, never single tests: module and class fixtures set up once, as
        # they would in collection order. The sort is stable, so each file keeps its order.
        rank, last = _selection.rank, len(_selection.rank)
        kept.sort(key=lambda item: rank.get(_key(_raw_path(item)), last))
    if deselected or _selection.rank:
        items[:] = kept
