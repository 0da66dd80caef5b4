"""The official path, kept as the reference for the extension's encoders: wire span records and log entries ->
OpenTelemetry SDK ``ReadableSpan`` / ``ReadableLogRecord`` -> the OTLP exporter's ``encode_spans`` / ``encode_logs``.

This is how the extension encoded before ``tracer.export.span_encoder`` and ``tracer.export.log_encoder``; the tests
prove that those produce the same requests, and ``benchmarks/micro/test_otlp_encoding.py`` compares their costs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import _encode_trace_state
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from extension.function_logs import LogEntry
from tracer import wire
from tracer.export.buffer import Batch

try:
    from opentelemetry.sdk._logs import ReadableLogRecord

    HAS_READABLE_LOG_RECORD = True
except ImportError:  # opentelemetry-sdk at its floor (1.27): its log encoder took LogData then
    HAS_READABLE_LOG_RECORD = False

_KINDS = tuple(SpanKind(value) for value in range(5))
_STATUS = (StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR)
_REMOTE_PARENT_KINDS = (SpanKind.SERVER, SpanKind.CONSUMER)  # their parent usually came in a request
_SEVERITIES = {member.value: member for member in SeverityNumber}


class WireSpan(ReadableSpan):
    """A finished span rebuilt from the wire, with the drop counts the function side recorded."""

    def __init__(self, dropped: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wire_dropped = dropped

    @property
    def dropped_attributes(self) -> int:
        return int(self._wire_dropped[0])

    @property
    def dropped_events(self) -> int:
        return int(self._wire_dropped[1])

    @property
    def dropped_links(self) -> int:
        return int(self._wire_dropped[2])


class Converter:
    """Caches Resource and scope objects, so that a warm flush only builds the spans themselves."""

    def __init__(self) -> None:
        self._resources: dict[int, tuple[dict[str, Any], Resource]] = {}
        self._scopes: dict[tuple[str, str | None], InstrumentationScope] = {}

    def resource(self, attributes: dict[str, Any]) -> Resource:
        cached = self._resources.get(id(attributes))
        if cached is None or cached[0] is not attributes:
            if len(self._resources) > 64:
                self._resources.clear()
            cached = self._resources[id(attributes)] = (attributes, Resource(attributes))
        return cached[1]

    def scope(self, name: str, version: str | None) -> InstrumentationScope:
        key = (name, version)
        scope = self._scopes.get(key)
        if scope is None:
            if len(self._scopes) > 256:
                self._scopes.clear()
            scope = self._scopes[key] = InstrumentationScope(name, version)
        return scope

    def spans(self, batches: Iterable[Batch]) -> list[ReadableSpan]:
        out: list[ReadableSpan] = []
        for batch in batches:
            resource = self.resource(batch.resource)
            for record in batch.spans:
                out.append(self.span(record, resource))
        return out

    def span(self, record: list[Any], resource: Resource) -> ReadableSpan:
        trace_id = int.from_bytes(record[wire.TRACE_ID], "big")
        state = record[wire.TRACE_STATE]
        context = SpanContext(trace_id, int.from_bytes(record[wire.SPAN_ID], "big"), is_remote=False,
                              trace_flags=TraceFlags(record[wire.TRACE_FLAGS]),
                              trace_state=TraceState.from_header([state]) if state else None)
        kind = _KINDS[record[wire.KIND]]
        parent = None
        if record[wire.PARENT_SPAN_ID] is not None:
            parent = SpanContext(trace_id, int.from_bytes(record[wire.PARENT_SPAN_ID], "big"),
                                 is_remote=kind in _REMOTE_PARENT_KINDS, trace_flags=context.trace_flags)
        code = _STATUS[record[wire.STATUS_CODE]]
        status = Status(code, record[wire.STATUS_DESCRIPTION] if code is StatusCode.ERROR else None)
        events = [Event(name, attributes or None, time_ns) for name, time_ns, attributes in record[wire.EVENTS] or ()]
        links = [
            Link(SpanContext(int.from_bytes(tid, "big"), int.from_bytes(sid, "big"), is_remote=True,
                             trace_flags=TraceFlags(flags), trace_state=TraceState.from_header([ts]) if ts else None),
                 attributes or None)
            for tid, sid, flags, ts, attributes in record[wire.LINKS] or ()
        ]
        return WireSpan(
            record[wire.DROPPED],
            name=record[wire.NAME],
            context=context,
            parent=parent,
            resource=resource,
            attributes=record[wire.ATTRIBUTES] or {},
            events=events,
            links=links,
            kind=kind,
            status=status,
            start_time=record[wire.START_NS],
            end_time=record[wire.END_NS],
            instrumentation_scope=self.scope(record[wire.SCOPE_NAME], record[wire.SCOPE_VERSION]),
        )

    def request(self, batches: Iterable[Batch], link_trace_state: bool = False) -> ExportTraceServiceRequest:
        """The ExportTraceServiceRequest for ``batches``, grouped by resource and scope by the official encoder.

        ``link_trace_state``: also give each link its trace state, which the official encoder leaves out, the way
        it encodes a span's (the extension's encoder sends it).
        """
        spans = self.spans(batches)
        request = encode_spans(spans)
        if link_trace_state:
            grouped: dict[Resource, dict[InstrumentationScope | None, list[ReadableSpan]]] = {}
            for span in spans:  # the official encoder's grouping, to pair each encoded span with its SDK span
                grouped.setdefault(span.resource, {}).setdefault(span.instrumentation_scope or None, []).append(span)
            ordered = [span for scopes in grouped.values() for group in scopes.values() for span in group]
            encoded = [span for resource in request.resource_spans for scope in resource.scope_spans
                       for span in scope.spans]
            for sdk_span, encoded_span in zip(ordered, encoded, strict=True):
                for link, encoded_link in zip(sdk_span.links, encoded_span.links, strict=True):
                    encoded_link.trace_state = _encode_trace_state(link.context.trace_state) or ""
        return request


class LogConverter(Converter):
    """The span converter's Resource and scope caches, for log records: a warm flush builds only the records."""

    def record(self, entry: LogEntry, resource: Resource) -> ReadableLogRecord:
        record = LogRecord(
            timestamp=entry.time_ns,
            observed_timestamp=entry.observed_ns,
            trace_id=int.from_bytes(entry.trace_id, "big") if entry.trace_id else 0,
            span_id=int.from_bytes(entry.span_id, "big") if entry.span_id else 0,
            trace_flags=TraceFlags(entry.trace_flags),
            severity_text=entry.severity_text or None,
            severity_number=_SEVERITIES.get(entry.severity_number, SeverityNumber.UNSPECIFIED),
            body=entry.body,
            attributes=entry.attributes or None,
        )
        record.event_name = entry.event_name
        return ReadableLogRecord(record, resource, self.scope(entry.scope, None))

    def records(self, batches: Iterable[Batch]) -> list[ReadableLogRecord]:
        out: list[ReadableLogRecord] = []
        for batch in batches:
            resource = self.resource(batch.resource)
            for entry in batch.spans:
                out.append(self.record(entry, resource))
        return out

    def request(self, batches: Iterable[Batch]) -> ExportLogsServiceRequest:
        """The ExportLogsServiceRequest for ``batches``, grouped by resource and scope by the official encoder."""
        return encode_logs(self.records(batches))
