"""The local trace record: spans as JSON lines, the SDK's own format, written fast.

``.dagpar/traces/<run_id>.jsonl`` holds one line per span, exactly what the SDK's
``ReadableSpan.to_json(indent=None)`` gives (:func:`span_json` renders it at a third of the
cost). A run records a span per test, so test-case spans skip the SDK's per-span machinery:
:class:`TestSpanBatch` holds a slice's finished test spans as plain values and renders them as
the record's lines in one go, and as SDK spans only for the other span processors (OTLP).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    format_span_id,
    format_trace_id,
)

__all__ = [
    "UNSET",
    "CaseAttributes",
    "CaseValues",
    "JsonLinesExporter",
    "TestSpanBatch",
    "span_json",
]

log = logging.getLogger("dagpar.otel")

#: The instrumentation scope of dagpar's spans.
TRACER_NAME = "dagpar"


class JsonLinesExporter(SpanExporter):
    """Appends each finished span to a file as one line of JSON (the SDK's own span format).

    :param path: the file; created on the first span.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        self._handle: TextIO | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write *spans*, one JSON object per line."""
        # The SDK's own JSON without indentation, one line per span (ASCII: newlines and any
        # stray surrogate come out escaped), rendered by span_json at a third of the cost.
        return self.write("".join(span_json(span) + "\n" for span in spans))

    def write(self, lines: str) -> SpanExportResult:
        """Append *lines*, spans already rendered as JSON lines, in one write."""
        with self._lock:
            if self._closed:
                return SpanExportResult.FAILURE
            try:
                # One handle for the whole run: every test's span is exported on its own, and
                # reopening the file for each, under this lock, slowed a 50,000-test run by half.
                if self._handle is None:
                    self._handle = self.path.open("a", encoding="utf-8")
                self._handle.write(lines)
                self._handle.flush()  # what was exported is on disk, should dagpar be killed
            except OSError as exc:
                log.warning("cannot record spans in %s: %s", self.path, exc)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Stop accepting spans, and close the file."""
        with self._lock:
            self._closed = True
            handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except OSError as exc:
                log.warning("cannot record spans in %s: %s", self.path, exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered: every export is written at once."""
        return True


_KIND = {kind: str(kind) for kind in SpanKind}
_STATUS_NAME = {code: code.name for code in StatusCode}


#: ``YYYY-MM-DDTHH:MM:SS`` per whole second (a run's spans share a few thousand seconds).
_SECONDS: dict[int, str] = {}


def _iso(ns: int) -> str:
    """``ns_to_iso_str(ns)`` (the SDK's span times), without its costly ``strftime``.

    ``datetime.fromtimestamp(ns / 1e9)`` rounds the float's fraction to the microsecond, half
    to even; this does the same, and formats each whole second once.
    """
    fraction, whole = math.modf(ns / 1e9)
    if fraction < 0:  # before 1970: the slow path, as the SDK has it
        moment = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
        return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"
    micros = round(fraction * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        micros -= 1_000_000
        second += 1
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        moment = datetime.fromtimestamp(second, tz=timezone.utc)
        prefix = _SECONDS[second] = moment.isoformat()[:19]
    return f"{prefix}.{micros:06d}Z"


def _context_json(context: SpanContext) -> dict[str, str]:
    return {
        "trace_id": f"0x{format_trace_id(context.trace_id)}",
        "span_id": f"0x{format_span_id(context.span_id)}",
        "trace_state": repr(context.trace_state),
    }


def span_json(span: ReadableSpan) -> str:
    """``span.to_json(indent=None)``, character for character, at a third of its cost.

    The SDK renders the run's resource anew into every span and formats through several
    layers of helpers; a run records one span per test, so this builds the same document
    directly and splices in the resource as rendered once per run.
    """
    parent = span.parent
    status = span.status
    status_json = {"status_code": _STATUS_NAME[status.status_code]}
    if status.description:
        status_json["description"] = status.description
    attributes = span.attributes
    document = {
        "name": span.name,
        "context": _context_json(span.context) if span.context else None,
        "kind": _KIND[span.kind],
        "parent_id": f"0x{format_span_id(parent.span_id)}" if parent is not None else None,
        "start_time": _iso(span.start_time) if span.start_time else None,
        "end_time": _iso(span.end_time) if span.end_time else None,
        "status": status_json,
        "attributes": dict(attributes) if attributes is not None else None,
        "events": [
            {
                "name": event.name,
                "timestamp": _iso(event.timestamp),
                "attributes": dict(event.attributes) if event.attributes is not None else None,
            }
            for event in span.events
        ],
        "links": [
            {
                "context": _context_json(link.context),
                "attributes": dict(link.attributes) if link.attributes is not None else None,
            }
            for link in span.links
        ],
    }
    # Without indentation the resource's own JSON is what json.dumps(json.loads(it)) gives,
    # and dagpar's resource renders it once (_Resource).
    resource = span.resource.to_json(indent=None)
    return f'{json.dumps(document)[:-1]}, "resource": {resource}}}'


#: The status of a span that did not fail.
UNSET = Status(StatusCode.UNSET)
_SCOPE = InstrumentationScope(TRACER_NAME)
_ENCODE = json.encoder.encode_basestring_ascii
_UNSET_JSON = '{"status_code": "UNSET"}'


#: A test span's own attribute values: status, path, matrix, item, attempts (0: none), flaky.
CaseValues = tuple[str, str, tuple[tuple[str, str], ...], "str | None", int, bool]
#: The attributes every test span has, in their order after the run's own.
_CASE_KEYS = frozenset(
    {
        "test.case.name",
        "test.case.result.status",
        "test.suite.name",
        "dagpar.check",
        "dagpar.slice.index",
        "code.file.path",
        "dagpar.slice.total",
        "dagpar.item",
        "dagpar.test.attempts",
        "dagpar.test.flaky",
    }
)


class CaseAttributes:
    """The attributes of a slice's test spans, as a dict (SDK spans) and as JSON (the record).

    Most of them are the slice's (the run, the check, the slice's index and total), so their
    JSON is rendered once per slice and each span adds its own values: what
    ``json.dumps(attributes)`` gives, at a tenth of its cost.

    :param common: the run's attributes, first in every span.
    :param check: the check (``test.suite.name`` and ``dagpar.check``).
    :param index: the slice's index.
    :param total: the slices of the check, when known.
    """

    def __init__(self, common: dict[str, Any], check: str, index: int, total: Any) -> None:
        self.common = common
        self.check = check
        self.index = index
        self.total = total
        dumps = json.dumps
        # A run attribute named like a test's would move in the dict; render those generically.
        self._fast = not set(common) & _CASE_KEYS
        lead = "".join(f"{_ENCODE(k)}: {dumps(v)}, " for k, v in common.items())
        self._head = f'{{{lead}"test.case.name": '
        self._middle = (
            f', "test.suite.name": {_ENCODE(check)}, "dagpar.check": {_ENCODE(check)}, '
            f'"dagpar.slice.index": {dumps(index)}, "code.file.path": '
        )
        self._total = "" if total is None else f', "dagpar.slice.total": {dumps(total)}'
        self._status: dict[str, str] = {}

    def as_dict(self, name: str, values: CaseValues) -> dict[str, Any]:
        """The attributes of the span of test *name*."""
        status, path, matrix, item, attempts, flaky = values
        attributes = {
            **self.common,
            "test.case.name": name,
            "test.case.result.status": status,
            "test.suite.name": self.check,
            "dagpar.check": self.check,
            "dagpar.slice.index": self.index,
            "code.file.path": path,
        }
        if self.total is not None:
            attributes["dagpar.slice.total"] = self.total
        for key, value in matrix:  # the combination of a matrix it ran under
            attributes[f"dagpar.matrix.{key}"] = value
        if item is not None:
            attributes["dagpar.item"] = item
        if attempts:
            attributes["dagpar.test.attempts"] = attempts
            attributes["dagpar.test.flaky"] = flaky
        return attributes

    def as_json(self, name: str, values: CaseValues) -> str:
        """``json.dumps(self.as_dict(name, values))``."""
        status, path, matrix, item, attempts, flaky = values
        if not self._fast or matrix:
            return json.dumps(self.as_dict(name, values))
        shown = self._status.get(status)
        if shown is None:
            shown = self._status[status] = f', "test.case.result.status": {_ENCODE(status)}'
        text = f"{self._head}{_ENCODE(name)}{shown}{self._middle}{_ENCODE(path)}{self._total}"
        if item is not None:
            text += f', "dagpar.item": {_ENCODE(item)}'
        if attempts:
            text += (
                f', "dagpar.test.attempts": {attempts}, "dagpar.test.flaky": {json.dumps(flaky)}'
            )
        return text + "}"


class TestSpanBatch:
    """Test-case spans of one slice, made without the SDK's per-span machinery.

    A run records a span per test, and a span started and ended through a tracer costs a lock,
    a context, bounded attributes and a processor call each. Test spans are finished when they
    are made, so they are kept as plain values and rendered in one go: as JSON lines for the
    local record (exactly what :func:`span_json` gives for the same span) and, only when
    another processor wants them, as SDK :class:`ReadableSpan` objects.
    """

    def __init__(
        self,
        parent: SpanContext,
        resource: Resource,
        new_span_id: Callable[[], int],
        case: CaseAttributes | None = None,
    ) -> None:
        self.parent = parent
        self.resource = resource
        self.new_span_id = new_span_id
        #: Renders the attributes of spans added with :meth:`add_case`.
        self.case = case
        self._spans: list[
            tuple[str, int, int, int, dict[str, Any] | CaseValues, tuple[Event, ...], Status]
        ] = []

    def __len__(self) -> int:
        return len(self._spans)

    def add(
        self,
        name: str,
        start: int,
        end: int,
        attributes: dict[str, Any],
        events: tuple[Event, ...],
        status: Status,
    ) -> None:
        """One finished span under the slice's span, with a span id from the provider's id
        generator (the SDK's own is random)."""
        span_id = self.new_span_id()
        self._spans.append((name, span_id, start, end, attributes, events, status))

    def add_case(
        self,
        name: str,
        start: int,
        end: int,
        values: CaseValues,
        events: tuple[Event, ...],
        status: Status,
    ) -> None:
        """:meth:`add` a test's span whose attributes are :attr:`case`'s for *values*."""
        assert self.case is not None
        self._spans.append((name, self.new_span_id(), start, end, values, events, status))

    def _attributes(self, name: str, attributes: dict[str, Any] | CaseValues) -> dict[str, Any]:
        if isinstance(attributes, dict):
            return attributes
        assert self.case is not None
        return self.case.as_dict(name, attributes)

    def readable_spans(self) -> list[ReadableSpan]:
        """The spans as the SDK's tracer would have made them."""
        parent = self.parent
        return [
            ReadableSpan(
                name,
                SpanContext(
                    parent.trace_id,
                    span_id,
                    is_remote=False,
                    trace_flags=parent.trace_flags,
                    trace_state=parent.trace_state,
                ),
                parent,
                self.resource,
                self._attributes(name, attributes),
                events,
                (),
                SpanKind.INTERNAL,
                None,
                status,
                start,
                end,
                _SCOPE,
            )
            for name, span_id, start, end, attributes, events, status in self._spans
        ]

    def json_lines(self) -> str:
        """The spans as the local record's lines: what :func:`span_json` renders for each."""
        parent = self.parent
        head = f'"trace_id": "0x{format_trace_id(parent.trace_id)}", "span_id": "0x'
        tail = (
            f'", "trace_state": {_ENCODE(repr(parent.trace_state))}}}, '
            f'"kind": "{_KIND[SpanKind.INTERNAL]}", '
            f'"parent_id": "0x{format_span_id(parent.span_id)}", "start_time": '
        )
        resource = self.resource.to_json(indent=None)
        dumps = json.dumps
        case = self.case
        lines = []
        times: dict[int, str] = {}  # tests laid end to end share their times
        for name, span_id, start, end, attributes, events, status in self._spans:
            if status is UNSET:
                status_json = _UNSET_JSON
            else:
                shown = {"status_code": _STATUS_NAME[status.status_code]}
                if status.description:
                    shown["description"] = status.description
                status_json = dumps(shown)
            events_json = "[]"
            if events:
                events_json = dumps(
                    [
                        {
                            "name": event.name,
                            "timestamp": _iso(event.timestamp),
                            "attributes": (
                                dict(event.attributes) if event.attributes is not None else None
                            ),
                        }
                        for event in events
                    ]
                )
            begun = times.get(start)
            if begun is None:
                begun = times[start] = _json_time(start)
            ended = times.get(end)
            if ended is None:
                ended = times[end] = _json_time(end)
            if len(times) > 64:
                times.clear()
            if isinstance(attributes, dict):
                attributes_json = dumps(attributes)
            else:
                assert case is not None
                attributes_json = case.as_json(name, attributes)
            lines.append(
                f'{{"name": {_ENCODE(name)}, "context": {{{head}{format_span_id(span_id)}{tail}'
                f'{begun}, "end_time": {ended}, "status": {status_json}, '
                f'"attributes": {attributes_json}, "events": {events_json}, "links": [], '
                f'"resource": {resource}}}\n'
            )
        return "".join(lines)


def _json_time(ns: int) -> str:
    return f'"{_iso(ns)}"' if ns else "null"
