"""OpenTelemetry traces of a run: run → check → slice → test case.

Every span carries ``dagpar.run.id``; check and test-case spans carry the test semantic
conventions (``test.suite.name``, ``test.suite.run.status``, ``test.case.name``,
``test.case.result.status``), slice and test-case spans ``dagpar.check``, ``dagpar.slice.index``
and ``dagpar.slice.total``, and test-case and task spans the item they belong to
(``dagpar.item``).

Where spans go, decided once in ``dagpar_configure``:

- to an OTLP/HTTP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (every other standard ``OTEL_EXPORTER_OTLP_*``
  variable applies; ``OTEL_TRACES_EXPORTER=none`` turns it off);
- always, as JSON lines, to ``<workspace>/.dagpar/traces/<run_id>.jsonl``, so that a run can be
  inspected after the fact without a collector; the last runs' traces are kept, within a size
  cap (:mod:`~dagpar_cli.reporting.trace_retention`);
- nowhere when ``OTEL_SDK_DISABLED=true``: no provider is set up at all.

Each slice's commands get ``TRACEPARENT`` (W3C trace context) for the slice span, so a runner
that understands it joins the trace; dagpar itself joins the trace of a ``TRACEPARENT`` it was
started with (a traced CI job).

Slices run in worker threads; the reporter keeps its open spans under one lock. Test-case spans
are made when their slice ends, from the slice's results: at each test's real start where the
runner streamed it (``TestResult.start``, kept within the slice's span), else laid end to end
from the slice's start (a runner that reports durations only). They are finished when made, so
they skip the SDK's per-span machinery: a slice's test spans go to the local record in one write
and to every other span processor as SDK spans (:mod:`~dagpar_cli.reporting.trace_record`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from dagpar_cli.model import CheckResult, RunResult, SlicePlan, SliceResult
from dagpar_cli.model import Status as TestStatus
from dagpar_cli.plugin import hookimpl
from dagpar_cli.reporting._text import clean_text, truncate
from dagpar_cli.reporting.item_index import ItemIndex
from dagpar_cli.reporting.trace_record import (
    TRACER_NAME,
    UNSET,
    CaseAttributes,
    CaseValues,
    JsonLinesExporter,
    TestSpanBatch,
    span_json,
)
from dagpar_cli.reporting.trace_retention import TraceRetention, prune_traces
from dagpar_cli.statedir import STATE_DIR, state_dir

if TYPE_CHECKING:
    import pluggy

    from dagpar_cli.run_context import RunContext

__all__ = [
    "JsonLinesExporter",
    "OtelReporter",
    "dagpar_configure",
    "span_json",
    "traces_file",
]

log = logging.getLogger("dagpar.otel")

#: How long the end of a run waits for spans to reach the collector.
FLUSH_TIMEOUT_MS = 5000

#: How many item keys a slice span lists (``dagpar.slice.items``); the count is always there.
MAX_ITEM_ATTRIBUTES = 100

#: Test spans handed on at once: a slice of 100,000 tests is not held as spans all at once.
SPAN_CHUNK = 1000

#: Test spans a batching processor (the OTLP exporter's) is given before it is flushed. Its
#: queue holds 2,048 spans by default and drops what does not fit, and a slice hands on its
#: test spans far faster than a collector takes them: flushing every few hundred loses none.
BATCH_FLUSH_EVERY = 256

#: ``test.case.result.status`` per test status (OpenTelemetry test semantic conventions).
_CASE_STATUS = {
    TestStatus.PASSED: "pass",
    TestStatus.FAILED: "fail",
    TestStatus.ERROR: "error",
    TestStatus.SKIPPED: "skipped",
}

_PROPAGATOR = TraceContextTextMapPropagator()

#: Bytes kept of a message in a span status or event (collectors cap attribute sizes).
MESSAGE_LIMIT = 4096


def _safe(text: str) -> str:
    """*text* fit for a span: valid UTF-8 (protobuf rejects lone surrogates, and one bad string
    would drop the whole batch), no control characters, bounded."""
    if len(text) <= MESSAGE_LIMIT // 4 and text.isascii() and text.isprintable():
        return text  # nothing to clean or cut: most test names and paths
    return truncate(clean_text(text), MESSAGE_LIMIT)


def _ns(epoch_seconds: float) -> int:
    return int(epoch_seconds * 1e9)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def traces_file(workspace: Path, run_id: str) -> Path:
    """Where the spans of run *run_id* are recorded: ``.dagpar/traces/<run_id>.jsonl``.

    :param workspace: the workspace root.
    :param run_id: the run's id (:attr:`~dagpar_cli.run_context.RunContext.run_id`).
    """
    return workspace / STATE_DIR / "traces" / f"{run_id}.jsonl"


class _Interruptible(SpanExporter):
    """Wraps an exporter so that :meth:`interrupt` can cut its retries short, once.

    The OTLP exporter retries an unreachable collector for its whole timeout even inside a
    flush with a deadline; shutting it down is the only way to stop it early.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._stopped = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Pass *spans* on."""
        return self.inner.export(spans)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)

    def interrupt(self) -> None:
        """Shut the wrapped exporter down now, abandoning its retries."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.inner.shutdown()

    def shutdown(self) -> None:
        """Shut the wrapped exporter down unless :meth:`interrupt` did."""
        self.interrupt()


def _resource() -> Resource:
    attributes: dict[str, Any] = {}
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over dagpar's default name.
    explicit = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not explicit:
        attributes["service.name"] = "dagpar"
    created = Resource.create(attributes)
    return _Resource(dict(created.attributes), created.schema_url)


class _Resource(Resource):
    """A resource that renders its JSON once: the local record repeats it in every span, and
    rendering it anew was half the cost of recording a test's span."""

    def __init__(self, attributes: Mapping[str, Any], schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._json: dict[int | None, str] = {}

    def to_json(self, indent: int | None = 4) -> str:
        """The resource as the SDK renders it, computed once per *indent*."""
        text = self._json.get(indent)
        if text is None:
            text = self._json[indent] = super().to_json(indent)
        return text


def _wants_otlp() -> bool:
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


@dataclass(frozen=True, slots=True)
class _Outputs:
    """Where a run's spans go: the provider, and the parts test spans are handed to."""

    provider: TracerProvider
    #: The OTLP exporter, if any (cut short when a collector hangs).
    remote: _Interruptible | None
    #: The local record, if it could be opened.
    local: JsonLinesExporter | None
    #: The OTLP exporter's processor, if any.
    others: SpanProcessor | None


def _make_provider(workspace: Path, run_id: str) -> _Outputs | None:
    """A provider exporting where the environment says, and its exporters; None when nothing
    would be recorded."""
    provider = TracerProvider(resource=_resource(), shutdown_on_exit=False)
    outputs = 0
    remote: _Interruptible | None = None
    local: JsonLinesExporter | None = None
    others: SpanProcessor | None = None
    try:
        # state_dir makes .dagpar/ with its .gitignore and CACHEDIR.TAG.
        (state_dir(workspace) / "traces").mkdir(exist_ok=True)
        local = JsonLinesExporter(traces_file(workspace, run_id))
        provider.add_span_processor(SimpleSpanProcessor(local))
        outputs += 1
    except OSError as exc:
        # A read-only checkout still gets its run; it only loses the local trace record.
        log.warning("not recording traces under %s/.dagpar: %s", workspace, exc)
    if _wants_otlp():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        try:
            remote = _Interruptible(OTLPSpanExporter())
            others = BatchSpanProcessor(remote)
            provider.add_span_processor(others)
            outputs += 1
        except Exception as exc:  # a malformed OTEL_* value must not fail the tests' run
            log.warning("not exporting traces over OTLP: %s", exc)
    if not outputs:
        provider.shutdown()
        return None
    return _Outputs(provider, remote, local, others)


@dataclass(slots=True)
class _OpenSlice:
    span: Span
    start_ns: int


@dataclass(slots=True)
class _OpenCheck:
    span: Span
    #: When its latest slice ended (ns): a check span ends no earlier.
    last_end: int = 0


@dataclass(slots=True)
class OtelReporter:
    """The spans of one run; registered as a plugin by :func:`dagpar_configure`.

    :param provider: the provider that owns the exporters (flushed and shut down at the end).
    :param run_span: the root span, started when the run started.
    :param run_id: the run's id, an attribute of every span.
    :param pm: the plugin manager the reporter is registered with (it unregisters at the end).
    """

    provider: TracerProvider
    run_span: Span
    run_id: str
    pm: pluggy.PluginManager | None = None
    remote: _Interruptible | None = None
    #: This run's local trace, and how many older ones stay next to it.
    record: Path | None = None
    retention: TraceRetention | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _checks: dict[str, _OpenCheck] = field(default_factory=dict)
    _slices: dict[tuple[str, int, int], _OpenSlice] = field(default_factory=dict)
    _finished: set[str] = field(default_factory=set)
    _local: threading.local = field(default_factory=threading.local)
    _tracer: trace.Tracer | None = None
    #: Where test spans go, in batches (:meth:`_deliver`): the local record, and the other
    #: span processors (an OTLP exporter). Both None: every processor of *provider*.
    local: JsonLinesExporter | None = None
    others: SpanProcessor | None = None

    @property
    def tracer(self) -> trace.Tracer:
        """dagpar's tracer (one per run: asking the provider costs more than a span)."""
        if self._tracer is None:
            self._tracer = self.provider.get_tracer(TRACER_NAME)
        return self._tracer

    def _attrs(self, **extra: Any) -> dict[str, Any]:
        return {"dagpar.run.id": self.run_id, **extra}

    # ---------------------------------------------------------------- spans

    def _check_span(self, check: str) -> _OpenCheck:
        """The open span of *check*, started now if this is its first slice (lock held)."""
        open_check = self._checks.get(check)
        if open_check is None:
            span = self.tracer.start_span(
                f"check {check}",
                context=trace.set_span_in_context(self.run_span),
                attributes=self._attrs(**{"test.suite.name": check, "dagpar.check": check}),
            )
            open_check = self._checks[check] = _OpenCheck(span)
        return open_check

    def _slice_span(self, check: str, plan: SlicePlan) -> _OpenSlice:
        """The span of one slice, started on first mention (``dagpar_slice_env`` comes first)."""
        key = (check, plan.index, id(plan))
        with self._lock:
            open_slice = self._slices.get(key)
            if open_slice is None:
                parent = self._check_span(check)
                start_ns = time.time_ns()
                span = self.tracer.start_span(
                    f"slice {plan.index} of {check}",
                    context=trace.set_span_in_context(parent.span),
                    start_time=start_ns,
                    attributes=self._attrs(
                        **{
                            "dagpar.check": check,
                            "dagpar.slice.index": plan.index,
                            "dagpar.slice.items": [
                                _safe(item.key) for item in plan.items[:MAX_ITEM_ATTRIBUTES]
                            ],
                            "dagpar.slice.item_count": len(plan.items),
                            "dagpar.slice.predicted_seconds": plan.predicted_seconds,
                        }
                    ),
                )
                open_slice = self._slices[key] = _OpenSlice(span, start_ns)
            return open_slice

    def _test_spans(
        self,
        check: str,
        plan: SlicePlan,
        result: SliceResult,
        opened: _OpenSlice,
        total: int | None,
        end_ns: int,
    ) -> None:
        """One span per test the slice reported: at its start when known, else laid end to end
        from the slice's start."""
        parent = opened.span.get_span_context()
        if not parent.trace_flags.sampled:
            return  # what the SDK's parent-based sampling does with a child of an unsampled span
        ordered = result.results
        reported = sum(max(r.seconds, 0.0) for r in ordered if r.start is None)
        available = max(end_ns - opened.start_ns, 0) / 1e9
        # Runners that run tests concurrently report more test time than wall time; squeeze
        # them so that every test span stays inside its slice.
        scale = min(1.0, available / reported) if reported > 0 else 1.0
        cursor = opened.start_ns
        items = ItemIndex(plan.items)
        new_span_id = self.provider.id_generator.generate_span_id
        case = CaseAttributes(self._attrs(), check, plan.index, total)
        batch = TestSpanBatch(parent, self.provider.resource, new_span_id, case)
        shown: dict[str, str] = {}  # the paths of a slice's tests, fit for a span once each
        for test in ordered:
            if test.start is not None:
                begin = min(max(_ns(test.start), opened.start_ns), end_ns)
                duration = min(int(max(test.seconds, 0.0) * 1e9), end_ns - begin)
            else:
                begin = cursor
                duration = int(max(test.seconds, 0.0) * scale * 1e9)
                cursor += duration
            item, test_id = items.find(test), test.id
            name = _safe(test_id)
            path = shown.get(test.path) or shown.setdefault(test.path, _safe(test.path))
            if item is not None:  # a file cut into its tests: each test's item is its own id
                item = path if item == test.path else name if item == test_id else _safe(item)
            attempts = test.attempts
            values: CaseValues = (
                _CASE_STATUS[test.status],
                path,
                tuple((key, _safe(value)) for key, value in test.matrix) if test.matrix else (),
                item,
                len(attempts) + 1 if attempts else 0,
                bool(attempts) and test.flaky,
            )
            events: tuple[Event, ...] = ()
            if attempts:
                events = tuple(
                    Event(
                        "dagpar.attempt",
                        {
                            "dagpar.attempt.status": _CASE_STATUS[attempt.status],
                            "dagpar.attempt.seconds": attempt.seconds,
                            "dagpar.attempt.message": _safe(attempt.message),
                        },
                        timestamp=begin,
                    )
                    for attempt in attempts
                )
            status = UNSET
            if test.status.is_bad:
                status = Status(
                    StatusCode.ERROR,
                    _safe(test.message.splitlines()[0]) if test.message else test.status.value,
                )
            batch.add_case(name, begin, begin + duration, values, events, status)
            if len(batch) >= SPAN_CHUNK:
                self._deliver(batch)
                batch = TestSpanBatch(parent, self.provider.resource, new_span_id, case)
        self._deliver(batch)

    def _deliver(self, batch: TestSpanBatch) -> None:
        """Hand a slice's test spans to the local record in one write, and as SDK spans to
        every other span processor (an OTLP exporter, a test's in-memory one)."""
        if not batch:
            return
        if self.local is not None:
            self.local.write(batch.json_lines())
        others = self.others
        if others is None and self.local is None:
            # A provider set up elsewhere: its processors are all there is to reach.
            others = getattr(self.provider, "_active_span_processor", None)
        if others is not None:
            batching = isinstance(others, BatchSpanProcessor)
            for n, span in enumerate(batch.readable_spans(), 1):
                others.on_end(span)
                if batching and n % BATCH_FLUSH_EVERY == 0:
                    others.force_flush()
            if batching:
                others.force_flush()

    # ---------------------------------------------------------------- hooks

    @hookimpl
    def dagpar_slice_env(self, check: str, slice: SlicePlan) -> dict[str, str] | None:
        """``TRACEPARENT`` (and ``TRACESTATE``) of the slice's span."""
        opened = self._slice_span(check, slice)
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(opened.span))
        return {key.upper(): value for key, value in carrier.items()}

    @hookimpl
    def dagpar_slice_started(self, check: str, slice: SlicePlan, total: int, field: str) -> None:
        """Start (or complete) the slice's span; remember it for :meth:`task`."""
        opened = self._slice_span(check, slice)
        opened.span.set_attribute("dagpar.slice.total", total)
        if field:
            opened.span.set_attribute("dagpar.field", field)
        self._local.current = opened

    @hookimpl
    def dagpar_slice_finished(self, check: str, slice: SlicePlan, result: SliceResult) -> None:
        """End the slice's span and record a span per test it reported."""
        key = (check, slice.index, id(slice))
        # A slice cancelled before it ran has no span yet; it gets one anyway.
        opened = self._slice_span(check, slice)
        end_ns = time.time_ns()
        with self._lock:
            self._slices.pop(key, None)
            parent = self._checks.get(check)
            if parent is not None:
                parent.last_end = max(parent.last_end, end_ns)
        if getattr(self._local, "current", None) is opened:
            self._local.current = None
        total = getattr(opened.span, "attributes", {}).get("dagpar.slice.total")
        self._test_spans(check, slice, result, opened, total, end_ns)
        opened.span.set_attribute("dagpar.slice.seconds", result.seconds)
        opened.span.set_attribute("dagpar.slice.tests", len(result.results))
        if result.where:
            opened.span.set_attribute("dagpar.slice.where", result.where)
        if result.error:
            opened.span.set_status(Status(StatusCode.ERROR, _safe(result.error)))
        opened.span.end(end_time=end_ns)

    @hookimpl
    def dagpar_check_finished(self, result: CheckResult) -> None:
        """End the check's span with its outcome."""
        with self._lock:
            opened = self._checks.pop(result.name, None)
            self._finished.add(result.name)
        if opened is None:
            self._unsplit_check(result)
        else:
            _finish_check(opened.span, result)
            opened.span.end()

    def _unsplit_check(self, result: CheckResult) -> None:
        """The span of a check that never split, placed where it ran."""
        start_ns = _ns(self.run_start + result.started)
        span = self.tracer.start_span(
            f"check {result.name}",
            context=trace.set_span_in_context(self.run_span),
            start_time=start_ns,
            attributes=self._attrs(**{"test.suite.name": result.name, "dagpar.check": result.name}),
        )
        _finish_check(span, result)
        span.end(end_time=start_ns + int(max(result.seconds, 0.0) * 1e9))

    @property
    def run_start(self) -> float:
        """The run span's start, in epoch seconds."""
        start = getattr(self.run_span, "start_time", None)
        return start / 1e9 if start else time.time()

    @hookimpl
    def dagpar_sessionfinish(self, run: RunResult | None, exitcode: int) -> None:
        """End every open span, then the run's; flush and shut the exporters down."""
        try:
            with self._lock:
                slices = list(self._slices.values())
                checks = dict(self._checks)
                self._slices.clear()
                self._checks.clear()
            for opened in slices:
                opened.span.set_status(Status(StatusCode.ERROR, "the slice never finished"))
                opened.span.end()
            outcomes = {c.name: c for c in run.checks} if run is not None else {}
            for name, open_check in checks.items():
                outcome = outcomes.get(name)
                end_ns: int | None = None
                if outcome is not None:
                    _finish_check(open_check.span, outcome)
                    # Ended where the check ended, not at the end of the whole run (but never
                    # before its slices nor after now).
                    end_ns = min(
                        max(
                            _ns(self.run_start + outcome.started + outcome.seconds),
                            open_check.last_end,
                        ),
                        time.time_ns(),
                    )
                open_check.span.end(end_time=end_ns)
            for name, outcome in outcomes.items():
                # Checks the engine did not announce as finished still appear in the trace.
                if name not in checks and name not in self._finished:
                    self._unsplit_check(outcome)
            self.run_span.set_attribute("dagpar.exit_code", exitcode)
            if run is not None:
                results = run.results
                self.run_span.set_attribute("dagpar.tests", len(results))
                self.run_span.set_attribute(
                    "dagpar.tests.failed", sum(r.status.is_bad for r in results)
                )
                self.run_span.set_attribute("dagpar.interrupted", run.interrupted)
            if exitcode != 0:
                self.run_span.set_status(Status(StatusCode.ERROR, f"exit code {exitcode}"))
            self.run_span.end()
        finally:
            try:
                self._close_provider()
                if self.record is not None and self.retention is not None:
                    prune_traces(self.record.parent, self.retention, current=self.record)
            finally:
                if self.pm is not None and self.pm.is_registered(self):
                    self.pm.unregister(self)

    def _close_provider(self) -> None:
        """Flush and shut the exporters down, waiting at most :data:`FLUSH_TIMEOUT_MS`.

        The local record is already complete (it is written as spans end); only the collector
        can be slow. An unreachable or hanging collector must not hold dagpar's exit for the
        exporter's whole retry budget, so the flush runs in a daemon thread that is abandoned,
        after cutting the exporter's retries short, when it overruns.
        """

        def close() -> None:
            try:
                self.provider.force_flush(timeout_millis=FLUSH_TIMEOUT_MS)
            finally:
                self.provider.shutdown()

        closer = threading.Thread(target=close, name="dagpar-otel-flush", daemon=True)
        closer.start()
        closer.join(FLUSH_TIMEOUT_MS / 1000)
        if closer.is_alive():
            log.warning(
                "gave up sending traces to the OTLP collector after %g s; they are recorded "
                "under .dagpar/traces",
                FLUSH_TIMEOUT_MS / 1000,
            )
            if self.remote is not None:
                self.remote.interrupt()

    # ---------------------------------------------------------------- tasks

    @hookimpl
    def dagpar_task_span(
        self, check: str, slice: SlicePlan, item: str
    ) -> AbstractContextManager[Span]:
        """The span of one item's work: :meth:`task`, entered by the slice's thread."""
        return self.task(item)

    @contextmanager
    def task(self, item_key: str) -> Iterator[Span]:
        """A span for work on one item, under the current slice's span (``dag.parallel.task``).

        An exception escaping the block is recorded on the span and marks it failed.
        """
        current: _OpenSlice | None = getattr(self._local, "current", None)
        parent = current.span if current is not None else self.run_span
        item_key = _safe(item_key)
        attributes = self._attrs(**{"dagpar.item": item_key})
        parent_attributes = getattr(parent, "attributes", None) or {}
        for name in ("dagpar.check", "dagpar.slice.index", "dagpar.slice.total"):
            if name in parent_attributes:
                attributes[name] = parent_attributes[name]
        with self.tracer.start_as_current_span(
            f"task {item_key}",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        ) as span:
            yield span


def _finish_check(span: Span, result: CheckResult) -> None:
    status = "aborted" if result.interrupted else "success" if result.passed else "failure"
    span.set_attribute("test.suite.run.status", status)
    span.set_attribute("dagpar.check.tests", len(result.results))
    span.set_attribute("dagpar.check.slices", len(result.slices))
    if not result.passed:
        failed = sum(r.status.is_bad for r in result.results)
        first = (
            _safe(result.error.splitlines()[0])
            if result.error
            else f"{failed} test{'' if failed == 1 else 's'} failed"
        )
        span.set_status(Status(StatusCode.ERROR, first))


def _incoming_context() -> Any:
    """The trace dagpar was started in (``TRACEPARENT`` of a traced CI job), if any."""
    carrier: Mapping[str, str] = {
        key.lower(): value
        for key, value in os.environ.items()
        if key in ("TRACEPARENT", "TRACESTATE")
    }
    return _PROPAGATOR.extract(carrier) if carrier else None


@hookimpl
def dagpar_configure(session: RunContext) -> None:
    """Set up tracing for the run, unless ``OTEL_SDK_DISABLED`` is true or nothing will run.

    Starts the run span (at the session's start) and registers an :class:`OtelReporter` with the
    session's plugin manager; it ends everything in ``dagpar_sessionfinish``.

    :param session: the run's session.
    """
    if _truthy(os.environ.get("OTEL_SDK_DISABLED")) or session.options.list_only:
        return
    retention = TraceRetention.from_env()  # a bad limit stops the run before it starts
    made = _make_provider(session.config.workspace, session.run_id)
    if made is None:
        return
    provider = made.provider
    tracer = provider.get_tracer(TRACER_NAME)
    run_span = tracer.start_span(
        "dagpar run",
        context=_incoming_context(),
        start_time=_ns(session.started_wall),
        attributes={
            "dagpar.run.id": session.run_id,
            "dagpar.workspace": str(session.config.workspace),
            "dagpar.executor": session.executor_name,
        },
    )
    if session.options.shard is not None:
        run_span.set_attribute("dagpar.shard", "{}/{}".format(*session.options.shard))
    reporter = OtelReporter(
        provider=provider,
        run_span=run_span,
        run_id=session.run_id,
        pm=session.pm,
        remote=made.remote,
        local=made.local,
        others=made.others,
        record=traces_file(session.config.workspace, session.run_id),
        retention=retention,
    )
    session.stash["otel"] = reporter
    session.pm.register(reporter, name=f"dagpar-otel-{session.run_id}")
