"""The local trace record (``.dagpar/traces/<run>.jsonl``): one valid JSON line per span."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from dagpar_cli.reporting import otel


@pytest.fixture(autouse=True)
def sdk_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)


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
