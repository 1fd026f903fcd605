"""The local trace record (``.dagpar/traces/<run>.jsonl``): one valid JSON line per span."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pluggy
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Status, StatusCode

from dagpar_cli import hookspecs
from dagpar_cli.model import Attempt, Item, SlicePlan, SliceResult, TestResult
from dagpar_cli.model import Status as CaseStatus
from dagpar_cli.reporting import otel


@pytest.fixture(autouse=True)
def sdk_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)


def recording_to(record: Path, others: SpanProcessor) -> pluggy.PluginManager:
    """A plugin manager with a reporter writing the local *record* and handing test spans to
    *others* (as an OTLP exporter's processor would be)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    local = otel.JsonLinesExporter(record)
    provider = TracerProvider(resource=otel._resource())
    provider.add_span_processor(SimpleSpanProcessor(local))
    provider.add_span_processor(others)
    reporter = otel.OtelReporter(
        provider=provider,
        run_span=provider.get_tracer("test").start_span("dagpar run"),
        run_id="run1",
        pm=pm,
        local=local,
        others=others,
    )
    pm.register(reporter)
    return pm


def run_one_slice(pm: pluggy.PluginManager, plan: SlicePlan, tests: tuple[TestResult, ...]) -> None:
    """A run of one slice of ``api:test`` that reported *tests*, from start to session end."""
    pm.hook.dagpar_slice_started(check="api:test", slice=plan, total=1, field="")
    pm.hook.dagpar_slice_finished(
        check="api:test",
        slice=plan,
        result=SliceResult(index=1, items=plan.items, results=tests, seconds=1.0),
    )
    pm.hook.dagpar_sessionfinish(run=None, exitcode=0)


def test_spans_ended_in_many_threads_are_each_one_whole_line(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    exporter = otel.JsonLinesExporter(record)
    provider = TracerProvider(resource=otel._resource())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    def slice_of_tests(worker: int) -> None:
        for n in range(300):
            # Names a runner may report: non-ASCII, quotes, a newline in a parameter id.
            name = f'tests/test_é{worker}.py::test_ß["{n}"\nx]'
            tracer.start_span(name, attributes={"dagpar.slice.index": worker}).end()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(slice_of_tests, range(8)))
    provider.shutdown()

    lines = record.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8 * 300
    spans = [json.loads(line) for line in lines]
    expected = {f'tests/test_é{w}.py::test_ß["{n}"\nx]' for w in range(8) for n in range(300)}
    assert {s["name"] for s in spans} == expected
    # Every line carries the run's resource, the same each time.
    assert {json.dumps(s["resource"], sort_keys=True) for s in spans} == {
        json.dumps(spans[0]["resource"], sort_keys=True)
    }
    assert spans[0]["resource"]["attributes"]["service.name"] == "dagpar"

    # After the run, nothing more is written (and the file is not held open).
    span = tracer.start_span("late")
    span.end()
    assert exporter.export([]) is SpanExportResult.FAILURE
    assert len(record.read_text(encoding="utf-8").splitlines()) == 8 * 300


def test_an_unwritable_record_loses_the_record_not_the_run(tmp_path: Path) -> None:
    exporter = otel.JsonLinesExporter(tmp_path / "missing-dir" / "run.jsonl")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("test").start_span("a test").end()
    assert exporter.export([]) is SpanExportResult.FAILURE
    provider.shutdown()


def test_span_json_is_the_sdks_own_json_of_a_span(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=otel._resource())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    parent = tracer.start_span("parent")
    context = trace.set_span_in_context(parent)
    for n in range(50):
        span = tracer.start_span(
            f'tests/test_é.py::test_ß["{n}"\nx]',
            context=context if n % 2 else None,
            start_time=1_764_879_000_999_999_500 + n,
            attributes={"i": n, "text": "ü\x07\ud800", "list": [1, 2], "real": 1.5, "yes": True},
            links=[trace.Link(parent.get_span_context(), {"why": "x"})] if n % 3 == 0 else (),
        )
        if n % 4 == 0:
            span.add_event("dagpar.attempt", {"k": "v"}, timestamp=1_000_000_123)
        if n % 5 == 0:
            span.add_event("empty")
        if n % 2:
            span.set_status(Status(StatusCode.ERROR, "bad\nline" if n % 3 else None))
        span.end(end_time=None if n % 7 else 1_764_879_001_000_000_000)
    parent.end()
    finished = exporter.get_finished_spans()
    assert len(finished) == 51
    for span in finished:
        assert otel.span_json(span) == span.to_json(indent=None)


def test_the_record_holds_each_test_span_as_the_sdk_renders_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test spans reach the record in a few writes per slice, and other processors as SDK
    spans; both say the same thing, line for line."""
    monkeypatch.setattr(otel, "SPAN_CHUNK", 2)  # five tests: handed on in three chunks
    memory = InMemorySpanExporter()
    pm = recording_to(tmp_path / "run.jsonl", SimpleSpanProcessor(memory))
    items = (Item(("tests/test_a.py",), "tests/test_a.py"), Item(("pkg", "TestX"), "pkg"))
    plan = SlicePlan(index=1, items=items, predicted_seconds=2.0)
    tests = (
        TestResult(path="tests/test_a.py", name="test_ok", status=CaseStatus.PASSED, seconds=0.2),
        TestResult(
            path="tests/test_a.py",
            name='test_é["\n"]',
            status=CaseStatus.FAILED,
            seconds=0.1,
            message="a\nb",
        ),
        TestResult(
            path="pkg", name="TestX/sub", status=CaseStatus.SKIPPED, matrix=(("python", "3.12"),)
        ),
        TestResult(
            path="tests/test_a.py",
            name="test_flaky",
            status=CaseStatus.PASSED,
            seconds=0.1,
            attempts=(Attempt(CaseStatus.FAILED, 0.1, "timeout"),),
        ),
        TestResult(path="tests/test_a.py", name="test_error", status=CaseStatus.ERROR),
    )
    run_one_slice(pm, plan, tests)

    lines = (tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()
    by_name = {json.loads(line)["name"]: line for line in lines}
    delivered = {span.name: span for span in memory.get_finished_spans()}
    slice_span = delivered["slice 1 of api:test"]
    for test in tests:
        span = delivered[test.id]
        assert by_name[test.id] == span.to_json(indent=None)
        assert span.parent is not None and span.parent.span_id == slice_span.context.span_id
        assert span.context.trace_id == slice_span.context.trace_id
    assert len(lines) == len(tests) + 3  # and the slice's, the check's and the run's spans
    flaky = delivered["tests/test_a.py::test_flaky"]
    assert [event.name for event in flaky.events] == ["dagpar.attempt"]
    assert delivered["pkg::TestX/sub"].attributes == {
        "dagpar.run.id": "run1",
        "test.case.name": "pkg::TestX/sub",
        "test.case.result.status": "skipped",
        "test.suite.name": "api:test",
        "dagpar.check": "api:test",
        "dagpar.slice.index": 1,
        "code.file.path": "pkg",
        "dagpar.slice.total": 1,
        "dagpar.matrix.python": "3.12",
        "dagpar.item": "pkg::TestX",
    }
    assert delivered['tests/test_a.py::test_é["\n"]'].status.description == "a"


def test_test_spans_take_their_ids_from_the_providers_id_generator(tmp_path: Path) -> None:
    class Counting(RandomIdGenerator):
        def __init__(self) -> None:
            self.next = 0x1000

        def generate_span_id(self) -> int:
            self.next += 1
            return self.next

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    memory = InMemorySpanExporter()
    provider = TracerProvider(id_generator=Counting())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    reporter = otel.OtelReporter(
        provider=provider,
        run_span=provider.get_tracer("test").start_span("dagpar run"),
        run_id="run1",
        pm=pm,
    )
    pm.register(reporter)
    items = (Item(("a.py",), "a.py"),)
    plan = SlicePlan(index=1, items=items, predicted_seconds=1.0)
    tests = tuple(TestResult(path="a.py", name=f"t{n}", status=CaseStatus.PASSED) for n in range(3))
    pm.hook.dagpar_slice_finished(
        check="c:t",
        slice=plan,
        result=SliceResult(index=1, items=items, results=tests, seconds=1.0),
    )
    ids = [s.context.span_id for s in memory.get_finished_spans() if s.name.startswith("a.py")]
    assert len(ids) == 3 and all(0x1000 < i < 0x1100 for i in ids)


def test_a_batching_exporter_receives_every_test_span_of_a_large_slice(tmp_path: Path) -> None:
    """The OTLP exporter's batch queue drops spans that do not fit; none may be lost."""
    memory = InMemorySpanExporter()
    # A queue smaller than a chunk of test spans, and no timed export to rescue it.
    others = BatchSpanProcessor(
        memory, max_queue_size=300, max_export_batch_size=100, schedule_delay_millis=600_000
    )
    pm = recording_to(tmp_path / "run.jsonl", others)
    items = (Item(("tests/test_a.py",), "tests/test_a.py"),)
    plan = SlicePlan(index=1, items=items, predicted_seconds=2.0)
    tests = tuple(
        TestResult(path="tests/test_a.py", name=f"test_{n}", status=CaseStatus.PASSED)
        for n in range(2500)
    )
    run_one_slice(pm, plan, tests)
    delivered = {span.name for span in memory.get_finished_spans()}
    assert {t.id for t in tests} <= delivered


def test_span_times_are_the_sdks_to_the_microsecond() -> None:
    """The record's times are what the SDK writes, rounding and second boundaries included."""
    import random

    from opentelemetry.sdk.util import ns_to_iso_str

    from dagpar_cli.reporting import trace_record

    rng = random.Random(7)
    moments = [1_764_879_000_999_999_500, 1_764_879_000_999_999_499, 1_000_000_123, 1]
    moments += [1_764_879_000_000_000_000 + rng.randrange(10**12) for _ in range(20_000)]
    moments += [1_764_879_000_000_000_000 + n * 500 for n in range(5_000)]  # half microseconds
    moments += [4_102_444_800_999_999_999, 946_684_799_999_999_750]
    for ns in moments:
        assert trace_record._iso(ns) == ns_to_iso_str(ns), ns


def test_many_test_spans_are_each_the_sdks_json(tmp_path: Path) -> None:
    """Every shape of test span, over many tests of one slice: the record's line is the SDK's."""
    memory = InMemorySpanExporter()
    pm = recording_to(tmp_path / "run.jsonl", SimpleSpanProcessor(memory))
    items = (Item(("a.py",), "a.py"), Item(("b.py", "test_1"), "b.py"), Item(("c.py",), "c.py"))
    plan = SlicePlan(index=3, items=items, predicted_seconds=2.0)
    statuses = list(CaseStatus)
    tests = tuple(
        TestResult(
            path=("a.py", "b.py", "c.py", "zz.py")[n % 4],
            name=f"test_{n % 7}" + ("[ü\x07]" if n % 11 == 0 else ""),
            occurrence=n // 7,
            status=statuses[n % len(statuses)],
            seconds=(n % 5) / 1000,
            message="why\nnot" if n % 3 else "",
            matrix=(("python", f"3.{n % 3}"), ("os", "linux")) if n % 6 == 0 else (),
            attempts=(Attempt(CaseStatus.FAILED, 0.5, "t\u00e9"),) if n % 9 == 0 else (),
            start=1_764_879_000.25 + n / 7 if n % 2 else None,
        )
        for n in range(300)
    )
    run_one_slice(pm, plan, tests)
    lines = (tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()
    spans = {span.context.span_id: span for span in memory.get_finished_spans()}
    checked = 0
    for line in lines:
        span = spans[int(json.loads(line)["context"]["span_id"], 16)]
        assert line == span.to_json(indent=None)
        checked += 1
    assert checked == len(tests) + 3
