"""OpenTelemetry reporting against a real OTLP/HTTP receiver on 127.0.0.1.

The receiver decodes the protobuf ``ExportTraceServiceRequest`` the SDK's exporter posts, so these
tests see exactly what a collector would. The hooks are driven the way the engine drives them:
slices in worker threads, ``dagpar_slice_env`` before ``dagpar_slice_started``.
"""

from __future__ import annotations

import gzip
import http.server
import itertools
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

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
from dagpar_cli.reporting import otel
from dagpar_cli.run_context import RunContext


@dataclass
class ReceivedSpan:
    """One span as the collector got it."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    start: int
    end: int
    attributes: dict[str, Any]
    status: int
    resource: dict[str, Any]
    events: list[str] = field(default_factory=list)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class Receiver(http.server.ThreadingHTTPServer):
    """A minimal OTLP/HTTP trace receiver."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[ReceivedSpan] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            start=span.start_time_unix_nano,
                            end=span.end_time_unix_nano,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            status=span.status.code,
                            resource=resource,
                            events=[e.name for e in span.events],
                        )
                    )
        with self.server.lock:
            self.server.spans.extend(spans)
            self.server.paths.append(self.path)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def tracing(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Receiver:
    """OTel switched on and pointed at the receiver."""
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.delenv("TRACEPARENT", raising=False)
    return receiver


def _session(workspace: Path) -> RunContext:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(otel)
    config = Config(workspace=workspace, file=None, toolchains=())
    session = RunContext(config=config, options=RunOptions(), pm=pm)
    pm.hook.dagpar_configure.call_historic(kwargs={"session": session})
    return session


ITEMS = (
    Item(("api/tests/test_a.py",), "api/tests/test_a.py"),
    Item(("svc/store", "TestPut"), "svc/store"),
)
PLANS = (
    SlicePlan(index=1, items=ITEMS[:1], predicted_seconds=1.0),
    SlicePlan(index=2, items=ITEMS[1:], predicted_seconds=1.0),
)
RESULTS = {
    1: (
        TestResult(path="api/tests/test_a.py", name="test_ok", status=Status.PASSED, seconds=0.02),
        TestResult(
            path="api/tests/test_a.py",
            name="test_bad",
            status=Status.FAILED,
            seconds=0.03,
            message="assert 1 == 2",
        ),
        TestResult(
            path="api/tests/test_a.py",
            name="test_flaky",
            status=Status.PASSED,
            seconds=0.01,
            attempts=(Attempt(Status.FAILED, 0.01, "timeout"),),
        ),
    ),
    2: (
        TestResult(path="svc/store", name="TestPut", status=Status.PASSED, seconds=0.01),
        TestResult(path="svc/store", name="TestPut/empty", status=Status.SKIPPED),
    ),
}
CHECK = "backend:test"


def _drive(
    session: RunContext, *, announce: bool = True
) -> tuple[RunResult, dict[int, dict[str, str]]]:
    """Run the hooks of a two-slice check as the engine does, slices in worker threads.

    :param announce: call ``dagpar_check_finished`` (an engine may leave it to the end).
    """
    hook = session.pm.hook
    envs: dict[int, dict[str, str]] = {}

    def run_slice(plan: SlicePlan) -> SliceResult:
        env: dict[str, str] = {}
        for extra in hook.dagpar_slice_env(check=CHECK, slice=plan):
            env.update(extra or {})
        envs[plan.index] = env
        hook.dagpar_slice_started(check=CHECK, slice=plan, total=len(PLANS), field="Tests.tests")
        for item in plan.items:
            span_of = hook.dagpar_task_span(check=CHECK, slice=plan, item=item.key)
            assert span_of is not None
            with span_of as span:
                assert span is not None
                threading.Event().wait(0.02)  # some work on the item
        result = SliceResult(
            index=plan.index, items=plan.items, results=RESULTS[plan.index], seconds=0.05
        )
        hook.dagpar_slice_finished(check=CHECK, slice=plan, result=result)
        return result

    with ThreadPoolExecutor(max_workers=2) as pool:
        slices = tuple(pool.map(run_slice, PLANS))
    check = CheckResult(
        name=CHECK,
        results=tuple(r for s in slices for r in s.results),
        slices=slices,
        seconds=0.1,
    )
    if announce:
        hook.dagpar_check_finished(result=check)
    lint = CheckResult(name="lint:check", error="ruff crashed", seconds=0.01, started=0.1)
    run = RunResult(checks=(check, lint), seconds=0.2)
    hook.dagpar_report(run=run, session=session)
    hook.dagpar_sessionfinish(run=run, exitcode=1)
    return run, envs


def _by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    named = {s.name: s for s in spans}
    assert len(named) == len(spans), sorted(s.name for s in spans)
    return named


def test_spans_reach_an_otlp_collector_with_the_conventions(
    tmp_path: Path, tracing: Receiver
) -> None:
    session = _session(tmp_path)
    _, envs = _drive(session)

    assert tracing.paths and set(tracing.paths) == {"/v1/traces"}
    spans = _by_name(tracing.spans)
    run = spans["dagpar run"]
    check = spans[f"check {CHECK}"]
    slice1, slice2 = spans[f"slice 1 of {CHECK}"], spans[f"slice 2 of {CHECK}"]

    # One trace: run → check → slice → test case (and task).
    assert {s.trace_id for s in spans.values()} == {run.trace_id}
    assert run.parent_id == ""
    assert check.parent_id == run.span_id
    assert slice1.parent_id == check.span_id and slice2.parent_id == check.span_id
    for test in RESULTS[1]:
        assert spans[test.id].parent_id == slice1.span_id
    for test in RESULTS[2]:
        assert spans[test.id].parent_id == slice2.span_id
    assert spans["task api/tests/test_a.py"].parent_id == slice1.span_id
    assert spans["task svc/store::TestPut"].parent_id == slice2.span_id

    # Every span names the run.
    assert {s.attributes["dagpar.run.id"] for s in spans.values()} == {session.run_id}
    assert run.resource["service.name"] == "dagpar"

    assert check.attributes["test.suite.name"] == CHECK
    assert check.attributes["test.suite.run.status"] == "failure"
    assert check.attributes["dagpar.check"] == CHECK
    assert slice2.attributes["dagpar.slice.index"] == 2
    assert slice2.attributes["dagpar.slice.total"] == 2
    assert slice2.attributes["dagpar.field"] == "Tests.tests"
    assert slice2.attributes["dagpar.slice.items"] == ["svc/store::TestPut"]

    bad = spans["api/tests/test_a.py::test_bad"].attributes
    assert bad["test.case.name"] == "api/tests/test_a.py::test_bad"
    assert bad["test.case.result.status"] == "fail"
    assert bad["test.suite.name"] == CHECK
    assert bad["dagpar.item"] == "api/tests/test_a.py"
    assert (bad["dagpar.slice.index"], bad["dagpar.slice.total"]) == (1, 2)
    assert spans["api/tests/test_a.py::test_bad"].status == 2  # STATUS_CODE_ERROR
    statuses = {
        name: spans[name].attributes["test.case.result.status"]
        for name in ("api/tests/test_a.py::test_ok", "svc/store::TestPut/empty")
    }
    assert statuses == {
        "api/tests/test_a.py::test_ok": "pass",
        "svc/store::TestPut/empty": "skipped",
    }
    # A subtest belongs to the finer item that selected its parent test.
    assert spans["svc/store::TestPut/empty"].attributes["dagpar.item"] == "svc/store::TestPut"
    flaky = spans["api/tests/test_a.py::test_flaky"]
    assert flaky.attributes["dagpar.test.flaky"] is True
    assert flaky.events == ["dagpar.attempt"]

    task = spans["task svc/store::TestPut"].attributes
    assert task["dagpar.item"] == "svc/store::TestPut"
    assert (task["dagpar.check"], task["dagpar.slice.index"]) == (CHECK, 2)

    # A check that never split still has its span, with its outcome.
    lint = spans["check lint:check"]
    assert lint.parent_id == run.span_id
    assert lint.attributes["test.suite.run.status"] == "failure"
    assert run.attributes["dagpar.exit_code"] == 1

    # Runners joining the trace get the slice span as parent (W3C traceparent).
    for index, span in ((1, slice1), (2, slice2)):
        version, trace_id, parent_id, flags = envs[index]["TRACEPARENT"].split("-")
        assert (version, trace_id, parent_id) == ("00", span.trace_id, span.span_id)
        assert int(flags, 16) & 1  # sampled


def test_test_spans_are_laid_end_to_end_inside_their_slice(
    tmp_path: Path, tracing: Receiver
) -> None:
    _drive(_session(tmp_path))
    spans = _by_name(tracing.spans)
    slice1 = spans[f"slice 1 of {CHECK}"]
    tests = [spans[t.id] for t in RESULTS[1]]
    assert tests[0].start == slice1.start
    for before, after in itertools.pairwise(tests):
        assert after.start == before.end
    assert tests[-1].end <= slice1.end
    # Durations keep their reported proportions (0.02 : 0.03 : 0.01).
    lengths = [t.end - t.start for t in tests]
    assert lengths[1] / lengths[0] == pytest.approx(1.5, rel=0.01)
    assert lengths[2] / lengths[0] == pytest.approx(0.5, rel=0.01)


def test_spans_are_also_recorded_under_dot_dagpar(tmp_path: Path, tracing: Receiver) -> None:
    session = _session(tmp_path)
    _drive(session)
    state = tmp_path / ".dagpar"
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (
        (state / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    lines = (state / "traces" / f"{session.run_id}.jsonl").read_text().splitlines()
    recorded = [json.loads(line) for line in lines]
    assert sorted(r["name"] for r in recorded) == sorted(s.name for s in tracing.spans)
    test_ok = next(r for r in recorded if r["name"] == "api/tests/test_a.py::test_ok")
    assert test_ok["attributes"]["test.case.result.status"] == "pass"


def test_without_an_endpoint_spans_are_only_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    session = _session(tmp_path)
    _drive(session)
    assert receiver.spans == []
    recorded = (tmp_path / ".dagpar" / "traces" / f"{session.run_id}.jsonl").read_text()
    # run, 2 checks, 2 slices, 5 tests, 2 tasks
    assert len(recorded.splitlines()) == 12


def test_disabled_sdk_records_and_exports_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    session = _session(tmp_path)
    assert session.pm.hook.dagpar_slice_env(check=CHECK, slice=PLANS[0]) == []
    assert session.pm.hook.dagpar_task_span(check=CHECK, slice=PLANS[0], item="a.py") is None
    session.pm.hook.dagpar_sessionfinish(run=None, exitcode=0)
    assert receiver.spans == []
    assert not (tmp_path / ".dagpar").exists()


def test_dagpar_joins_the_trace_it_was_started_in(
    tmp_path: Path, tracing: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer_trace, outer_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    monkeypatch.setenv("TRACEPARENT", f"00-{outer_trace}-{outer_span}-01")
    _drive(_session(tmp_path))
    run = _by_name(tracing.spans)["dagpar run"]
    assert (run.trace_id, run.parent_id) == (outer_trace, outer_span)


def test_an_unfinished_run_still_ends_its_spans(tmp_path: Path, tracing: Receiver) -> None:
    session = _session(tmp_path)
    hook = session.pm.hook
    hook.dagpar_slice_env(check=CHECK, slice=PLANS[0])
    hook.dagpar_slice_started(check=CHECK, slice=PLANS[0], total=2, field="Tests.tests")
    hook.dagpar_sessionfinish(run=None, exitcode=130)
    spans = _by_name(tracing.spans)
    assert set(spans) == {"dagpar run", f"check {CHECK}", f"slice 1 of {CHECK}"}
    assert spans[f"slice 1 of {CHECK}"].status == 2
    assert spans["dagpar run"].attributes["dagpar.exit_code"] == 130
    # The reporter is gone: a later run's task spans do not attach to it.
    assert hook.dagpar_task_span(check=CHECK, slice=PLANS[0], item="a.py") is None
    assert not session.pm.get_plugins() - {otel}


_PROJECT = {
    "tests/test_a.py": (
        "def test_one():\n    pass\n\n"
        "def test_two():\n    assert 1 == 2, 'bell \\x07 in the message'\n"
    ),
    "tests/test_b.py": (
        "import pytest\n\n"
        "def test_three():\n    print('out')\n\n"
        "@pytest.mark.skip(reason='later')\ndef test_four():\n    pass\n"
    ),
}


@pytest.mark.slow
def test_a_real_run_reports_junit_summary_and_spans(tmp_path: Path, tracing: Receiver) -> None:
    from lxml import etree

    workspace = tmp_path / "ws"
    for name, text in _PROJECT.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
    junit_xml = tmp_path / "reports" / "junit.xml"
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagpar_cli",
            "check",
            "-C",
            str(workspace),
            "-j",
            "2",
            "--junit-xml",
            str(junit_xml),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    assert re.search(r"=+ 1 failed, 2 passed, 1 skipped in [\d.]+s =+", output), output
    assert "FAILED tests/test_a.py::test_two" in output

    schema = etree.XMLSchema(etree.parse(str(Path(__file__).parents[1] / "data" / "junit-10.xsd")))
    doc = etree.parse(str(junit_xml))
    schema.assertValid(doc)
    cases = sorted(f"{c.get('file')}::{c.get('name')}" for c in doc.iter("testcase"))
    expected = sorted(
        f"{path}::{name}"
        for path, name in (
            ("tests/test_a.py", "test_one"),
            ("tests/test_a.py", "test_two"),
            ("tests/test_b.py", "test_three"),
            ("tests/test_b.py", "test_four"),
        )
    )
    assert cases == expected

    # The exporter flushed before dagpar exited: every test has its span, under a slice.
    spans = tracing.spans
    by_id = {s.span_id: s for s in spans}
    statuses = {
        s.attributes["test.case.name"]: s.attributes["test.case.result.status"]
        for s in spans
        if "test.case.name" in s.attributes
    }
    assert statuses == {
        "tests/test_a.py::test_one": "pass",
        "tests/test_a.py::test_two": "fail",
        "tests/test_b.py::test_three": "pass",
        "tests/test_b.py::test_four": "skipped",
    }
    for span in spans:
        if "test.case.name" in span.attributes:
            parent = by_id[span.parent_id]
            assert parent.name.startswith("slice ")
            assert by_id[parent.parent_id].attributes["test.suite.run.status"] == "failure"


def test_a_hanging_collector_does_not_hold_the_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A collector that accepts connections and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        monkeypatch.setenv(
            "OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}"
        )
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5")
        monkeypatch.setattr(otel, "FLUSH_TIMEOUT_MS", 200)
        session = _session(tmp_path)
        with caplog.at_level(logging.WARNING, logger="dagpar.otel"):
            _drive(session)
    assert "gave up sending traces to the OTLP collector after 0.2 s" in caplog.text
    # The local record does not depend on the collector.
    recorded = (tmp_path / ".dagpar" / "traces" / f"{session.run_id}.jsonl").read_text()
    assert len(recorded.splitlines()) == 12


def test_hostile_test_output_does_not_cost_the_batch(tmp_path: Path, tracing: Receiver) -> None:
    # An undecodable byte (a lone surrogate after surrogateescape) cannot be encoded as protobuf
    # UTF-8; unless cleaned, it would drop every span exported with it.
    name = b"test_caf\xe9".decode("utf-8", errors="surrogateescape")
    hostile = TestResult(
        path="a.py",
        name=name,
        status=Status.FAILED,
        message="\x00" + "x" * 1_000_000,
        attempts=(Attempt(Status.FAILED, 0.1, "\x1b[31mred\x1b[0m"),),
    )
    plan = SlicePlan(index=1, items=(Item(("a.py",), "a.py"),), predicted_seconds=1.0)
    session = _session(tmp_path)
    hook = session.pm.hook
    hook.dagpar_slice_env(check=CHECK, slice=plan)
    hook.dagpar_slice_started(check=CHECK, slice=plan, total=1, field="Tests.tests")
    result = SliceResult(index=1, items=plan.items, results=(hostile,), seconds=0.1)
    hook.dagpar_slice_finished(check=CHECK, slice=plan, result=result)
    hook.dagpar_sessionfinish(run=None, exitcode=1)
    spans = _by_name(tracing.spans)
    assert set(spans) == {
        "dagpar run",
        f"check {CHECK}",
        "slice 1 of backend:test",
        "a.py::test_caf\ufffd",
    }
    recorded = (tmp_path / ".dagpar" / "traces" / f"{session.run_id}.jsonl").read_text()
    assert len(recorded.splitlines()) == 4
    assert len(recorded) < 100_000


def test_checks_not_announced_as_finished_end_with_the_session(
    tmp_path: Path, tracing: Receiver
) -> None:
    _drive(_session(tmp_path), announce=False)
    spans = _by_name(tracing.spans)
    check, run = spans[f"check {CHECK}"], spans["dagpar run"]
    assert check.attributes["test.suite.run.status"] == "failure"
    assert check.parent_id == run.span_id
    last_slice_end = max(spans[f"slice {i} of {CHECK}"].end for i in (1, 2))
    assert check.start <= last_slice_end <= check.end <= run.end
    assert spans["check lint:check"].attributes["test.suite.run.status"] == "failure"
