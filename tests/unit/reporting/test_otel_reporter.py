"""The OpenTelemetry reporter, on the SDK's in-memory exporter: the span tree run → check → slice →
test case, the outcome on each span, and a run that ends with spans still open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from dagpar_cli import hookspecs
from dagpar_cli.config import Config, RunOptions
from dagpar_cli.model import (
    Attempt,
    CheckResult,
    Item,
    RunResult,
    SlicePlan,
    SliceResult,
    Status,
    TestResult,
)
from dagpar_cli.reporting.otel import OtelReporter, dagpar_configure, traces_file
from dagpar_cli.run_context import RunContext

CHECK = "api:test"
ITEMS = (Item(("tests/test_a.py",), "tests/test_a.py"), Item(("pkg", "TestX"), "pkg"))
PLAN = SlicePlan(index=1, items=ITEMS, predicted_seconds=2.0)


@pytest.fixture(autouse=True)
def sdk_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test kit turns the SDK off for every test; these need it on."""
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.delenv("TRACEPARENT", raising=False)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


@pytest.fixture
def reporter(exporter: InMemorySpanExporter, pm: pluggy.PluginManager) -> Iterator[OtelReporter]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    run_span = provider.get_tracer("test").start_span("dagpar run")
    reporter = OtelReporter(provider=provider, run_span=run_span, run_id="run1", pm=pm)
    pm.register(reporter)
    yield reporter
    if pm.is_registered(reporter):
        pm.unregister(reporter)


def spans(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    finished = exporter.get_finished_spans()
    named = {s.name: s for s in finished}
    assert len(named) == len(finished), sorted(s.name for s in finished)
    return named


def result(*tests: TestResult, seconds: float = 1.0, error: str = "") -> SliceResult:
    return SliceResult(index=1, items=ITEMS, results=tests, seconds=seconds, error=error)


def case(
    name: str, status: Status = Status.PASSED, seconds: float = 0.0, **kw: object
) -> TestResult:
    """A result of a test in one of the slice's items."""
    path = "pkg" if name.startswith("TestX") else "tests/test_a.py"
    return TestResult(path=path, name=name, status=status, seconds=seconds, **kw)  # type: ignore[arg-type]


def run_one_slice(pm: pluggy.PluginManager, tests: tuple[TestResult, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for extra in pm.hook.dagpar_slice_env(check=CHECK, slice=PLAN):
        env.update(extra or {})
    pm.hook.dagpar_slice_started(check=CHECK, slice=PLAN, total=1, field="Tests.files")
    pm.hook.dagpar_slice_finished(check=CHECK, slice=PLAN, result=result(*tests))
    return env


def test_a_slice_becomes_a_span_tree_with_test_conventions(
    pm: pluggy.PluginManager, reporter: OtelReporter, exporter: InMemorySpanExporter
) -> None:
    tests = (
        case("test_ok", seconds=0.2),
        case("test_bad", Status.FAILED, 0.1, message="assert 1 == 2\nmore detail"),
        case("TestX/sub", Status.SKIPPED),
        case("test_flaky", seconds=0.1, attempts=(Attempt(Status.FAILED, 0.1, "timeout"),)),
    )
    env = run_one_slice(pm, tests)
    check = CheckResult(name=CHECK, results=tests, slices=(result(*tests),), seconds=1.0)
    pm.hook.dagpar_check_finished(result=check)
    pm.hook.dagpar_sessionfinish(run=RunResult(checks=(check,), seconds=1.0), exitcode=1)

    got = spans(exporter)
    run, chk, sl = got["dagpar run"], got[f"check {CHECK}"], got[f"slice 1 of {CHECK}"]
    assert chk.parent is not None and chk.parent.span_id == run.context.span_id
    assert sl.parent is not None and sl.parent.span_id == chk.context.span_id
    for t in tests:
        span = got[t.id]
        assert span.parent is not None and span.parent.span_id == sl.context.span_id
        assert span.attributes is not None and span.attributes["dagpar.run.id"] == "run1"
    bad = got["tests/test_a.py::test_bad"]
    assert bad.attributes is not None and bad.attributes["test.case.result.status"] == "fail"
    assert bad.status.status_code is StatusCode.ERROR
    assert bad.status.description == "assert 1 == 2"  # the first line only
    sub = got["pkg::TestX/sub"].attributes
    assert sub is not None and sub["dagpar.item"] == "pkg::TestX"
    assert sub["test.case.result.status"] == "skipped"
    flaky = got["tests/test_a.py::test_flaky"]
    assert flaky.attributes is not None and flaky.attributes["dagpar.test.flaky"] is True
    assert [e.name for e in flaky.events] == ["dagpar.attempt"]
    assert sl.attributes is not None and sl.attributes["dagpar.field"] == "Tests.files"
    assert sl.attributes["dagpar.slice.tests"] == 4
    assert chk.attributes is not None and chk.attributes["test.suite.run.status"] == "failure"
    assert chk.status.description == "1 test failed"
    assert run.attributes is not None and run.attributes["dagpar.tests.failed"] == 1
    assert run.status.status_code is StatusCode.ERROR

    # A runner that joins the trace gets the slice span as its parent.
    _, trace_id, parent_id, _ = env["TRACEPARENT"].split("-")
    assert int(trace_id, 16) == sl.context.trace_id
    assert int(parent_id, 16) == sl.context.span_id


def test_tests_that_ran_concurrently_are_squeezed_into_their_slice(
    pm: pluggy.PluginManager, reporter: OtelReporter, exporter: InMemorySpanExporter
) -> None:
    # 30 reported seconds in a slice that took milliseconds (a runner with its own workers).
    tests = tuple(case(f"test_{n}", seconds=10.0) for n in range(3))
    run_one_slice(pm, tests)
    got = spans(exporter)
    sl = got[f"slice 1 of {CHECK}"]
    assert sl.start_time is not None and sl.end_time is not None
    previous_end = sl.start_time
    for t in tests:
        span = got[t.id]
        assert span.start_time == previous_end
        assert span.end_time is not None and span.end_time <= sl.end_time
        previous_end = span.end_time


def test_a_slice_cancelled_before_it_started_still_has_its_span(
    pm: pluggy.PluginManager, reporter: OtelReporter, exporter: InMemorySpanExporter
) -> None:
    pm.hook.dagpar_slice_finished(
        check=CHECK, slice=PLAN, result=result(seconds=0.0, error="cancelled (--failfast)")
    )
    sl = spans(exporter)[f"slice 1 of {CHECK}"]
    assert sl.status.status_code is StatusCode.ERROR
    assert sl.status.description == "cancelled (--failfast)"


def test_the_end_of_the_run_closes_what_is_open_and_lets_go(
    pm: pluggy.PluginManager, reporter: OtelReporter, exporter: InMemorySpanExporter
) -> None:
    pm.hook.dagpar_slice_started(check=CHECK, slice=PLAN, total=2, field="")
    broken = CheckResult(name=CHECK, error="runner crashed\ntraceback...", interrupted=True)
    never_split = CheckResult(name="lint:ruff", seconds=0.5, started=0.1)
    run = RunResult(checks=(broken, never_split), seconds=2.0, interrupted=True)
    pm.hook.dagpar_sessionfinish(run=run, exitcode=130)

    got = spans(exporter)
    assert got[f"slice 1 of {CHECK}"].status.description == "the slice never finished"
    chk = got[f"check {CHECK}"]
    assert chk.attributes is not None and chk.attributes["test.suite.run.status"] == "aborted"
    assert chk.status.description == "runner crashed"
    lint = got["check lint:ruff"]
    assert lint.attributes is not None and lint.attributes["test.suite.run.status"] == "success"
    assert lint.start_time is not None and lint.end_time is not None
    assert lint.end_time - lint.start_time == 500_000_000  # placed where it ran
    run_span = got["dagpar run"]
    assert run_span.attributes is not None and run_span.attributes["dagpar.interrupted"] is True
    assert run_span.attributes["dagpar.exit_code"] == 130
    assert not pm.is_registered(reporter)
    # The provider is shut down: nothing is exported after the run.
    reporter.provider.get_tracer("late").start_span("late").end()
    assert "late" not in spans(exporter)


def test_hostile_test_names_and_messages_are_made_safe(
    pm: pluggy.PluginManager, reporter: OtelReporter, exporter: InMemorySpanExporter
) -> None:
    hostile = case("test_\ud800\x1b[31m", Status.ERROR, message="x" * 100_000)
    run_one_slice(pm, (hostile,))
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("tests/")]
    span.name.encode("utf-8")  # no lone surrogate left
    assert "\x1b" not in span.name
    assert span.status.description is not None and len(span.status.description) < 10_000


def plugins(pm: pluggy.PluginManager) -> list[object]:
    return [plugin for _, plugin in pm.list_name_plugin()]


def session(workspace: Path, pm: pluggy.PluginManager) -> RunContext:
    config = Config(workspace=workspace, file=None, toolchains=())
    return RunContext(config=config, options=RunOptions(), pm=pm)


def test_configure_records_the_run_under_dot_dagpar_unless_disabled(
    tmp_path: Path, pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    off = session(tmp_path, pm)
    dagpar_configure(session=off)
    assert plugins(pm) == []
    assert not traces_file(tmp_path, off.run_id).exists()

    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "my-ci")
    on = session(tmp_path, pm)
    dagpar_configure(session=on)
    (reporter,) = plugins(pm)
    assert isinstance(reporter, OtelReporter)
    pm.hook.dagpar_sessionfinish(run=None, exitcode=0)
    record = traces_file(tmp_path, on.run_id)
    assert record.parent == tmp_path / ".dagpar" / "traces"
    text = record.read_text(encoding="utf-8")
    assert '"name": "dagpar run"' in text and '"service.name": "my-ci"' in text
    assert plugins(pm) == []


def test_an_items_work_is_a_task_span_under_its_slice(
    pm: pluggy.PluginManager, reporter: OtelReporter, exporter: InMemorySpanExporter
) -> None:
    pm.hook.dagpar_slice_started(check=CHECK, slice=PLAN, total=1, field="Tests.files")
    opened = pm.hook.dagpar_task_span(check=CHECK, slice=PLAN, item="tests/test_a.py")
    assert opened is not None
    with pytest.raises(RuntimeError), opened:
        raise RuntimeError("lint failed")
    pm.hook.dagpar_slice_finished(check=CHECK, slice=PLAN, result=result())
    named = spans(exporter)
    task, slice_span = named["task tests/test_a.py"], named[f"slice 1 of {CHECK}"]
    assert task.parent is not None and task.parent.span_id == slice_span.context.span_id
    assert task.attributes is not None and task.attributes["dagpar.item"] == "tests/test_a.py"
    assert task.status.status_code.name == "ERROR"


def test_a_test_with_a_start_is_placed_at_it_within_its_slice(
    pm: pluggy.PluginManager, reporter: OtelReporter, exporter: InMemorySpanExporter
) -> None:
    pm.hook.dagpar_slice_started(check=CHECK, slice=PLAN, total=1, field="Tests.files")
    first = time.time()
    while time.time() < first + 0.02:  # the slice runs a while: its tests fit in it
        pass
    tests = (
        case("test_late", seconds=0.005, start=first + 0.01),
        case("test_early", seconds=0.002, start=first),
        case("test_unknown", seconds=0.003),
    )
    pm.hook.dagpar_slice_finished(check=CHECK, slice=PLAN, result=result(*tests))
    got = spans(exporter)
    sl = got[f"slice 1 of {CHECK}"]
    late, early = got["tests/test_a.py::test_late"], got["tests/test_a.py::test_early"]
    assert early.start_time == int(first * 1e9)
    assert late.start_time == int((first + 0.01) * 1e9)
    assert late.end_time == late.start_time + int(0.005 * 1e9)
    # A test without a start keeps the old place: from the slice's start.
    assert got["tests/test_a.py::test_unknown"].start_time == sl.start_time
