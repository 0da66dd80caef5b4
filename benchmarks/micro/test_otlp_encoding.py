"""Encoding what the extension holds into an OTLP request's bytes, three ways, per flush of 10 and of 100 spans.

- baseline: the official path the extension used to take (SDK ``ReadableSpan`` rebuilt from each wire record, the
  exporter's ``encode_spans``, ``SerializeToString``), kept in ``tests/helpers/sdk_reference.py``;
- opentelemetry-proto messages built straight from the wire records (the alternative to writing bytes by hand);
- ``tracer.export.span_encoder`` (hand-written protobuf), what the extension does now.

The spans are the lean tracer's own records after a msgpack round trip, as the extension receives them: one
invocation span and its children, five attributes each (``ATTRIBUTES``). ``per_span_us`` in the summary is the
median divided by the span count. The log records' group compares ``encode_logs`` with ``tracer.export.log_encoder``.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from benchmarks.micro.conftest import ATTRIBUTES
from extension.function_logs import LogEntry
from tests.helpers.sdk_reference import Converter, LogConverter
from tracer import wire
from tracer.export.buffer import Batch
from tracer.export.log_encoder import LogEncoder
from tracer.export.span_encoder import SpanEncoder

RESOURCE = {"service.name": "bench", "cloud.provider": "aws", "cloud.region": "eu-west-1", "faas.name": "bench",
            "telemetry.sdk.name": "afterglow"}


def _batch(spans: int) -> Batch:
    from opentelemetry import trace as trace_api

    from tracer._provider import LeanTracerProvider

    tracer = LeanTracerProvider().get_tracer("bench", "1.0")
    records = []
    root = tracer.start_span("root", attributes=ATTRIBUTES, kind=trace_api.SpanKind.SERVER)
    context = trace_api.set_span_in_context(root)
    for index in range(spans - 1):
        child = tracer.start_span(f"child-{index}", context=context, attributes=ATTRIBUTES)
        child.end()
        records.append(child.to_record())
    root.end()
    records.append(root.to_record())
    decoded = msgpack.unpackb(msgpack.packb(records, use_bin_type=True), raw=False)  # as the extension reads them
    for record in decoded:
        wire.check_span(record)
    return Batch(RESOURCE, "r1", decoded, [200] * spans)


def _proto_messages(batches: list[Batch]) -> bytes:
    """The same request built as opentelemetry-proto (upb) messages, field for field, without the SDK."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

    def value(item: Any) -> AnyValue:
        if isinstance(item, bool):
            return AnyValue(bool_value=item)
        if isinstance(item, str):
            return AnyValue(string_value=item)
        if isinstance(item, int):
            return AnyValue(int_value=item)
        if isinstance(item, float):
            return AnyValue(double_value=item)
        return AnyValue(array_value=ArrayValue(values=[value(element) for element in item]))

    def attributes(mapping: dict[str, Any] | None) -> list[KeyValue]:
        return [KeyValue(key=key, value=value(item)) for key, item in (mapping or {}).items()]

    def span(record: list[Any]) -> Span:
        code = record[wire.STATUS_CODE]
        remote = record[wire.PARENT_SPAN_ID] is not None and record[wire.KIND] in (1, 4)
        return Span(
            trace_id=record[wire.TRACE_ID], span_id=record[wire.SPAN_ID], trace_state=record[wire.TRACE_STATE],
            parent_span_id=record[wire.PARENT_SPAN_ID], name=record[wire.NAME], kind=record[wire.KIND] + 1,
            start_time_unix_nano=record[wire.START_NS], end_time_unix_nano=record[wire.END_NS],
            attributes=attributes(record[wire.ATTRIBUTES]),
            events=[Span.Event(name=name, time_unix_nano=time_ns, attributes=attributes(event_attributes))
                    for name, time_ns, event_attributes in record[wire.EVENTS] or ()],
            links=[Span.Link(trace_id=trace_id, span_id=span_id, trace_state=state,
                             attributes=attributes(link_attributes), flags=0x300)
                   for trace_id, span_id, _, state, link_attributes in record[wire.LINKS] or ()],
            status=Status(code=code, message=record[wire.STATUS_DESCRIPTION] if code == 2 else None),
            dropped_attributes_count=record[wire.DROPPED][0], dropped_events_count=record[wire.DROPPED][1],
            dropped_links_count=record[wire.DROPPED][2], flags=0x300 if remote else 0x100,
        )

    groups: dict[str, tuple[dict[str, Any], dict[tuple[str, str | None], list[Span]]]] = {}
    for batch in batches:
        group = groups.setdefault(repr(sorted(batch.resource.items())), (batch.resource, {}))
        for record in batch.spans:
            group[1].setdefault((record[wire.SCOPE_NAME], record[wire.SCOPE_VERSION]), []).append(span(record))
    request = ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=Resource(attributes=attributes(resource)), scope_spans=[
            ScopeSpans(scope=InstrumentationScope(name=name, version=version), spans=spans)
            for (name, version), spans in scopes.items()])
        for resource, scopes in groups.values()])
    return bytes(request.SerializeToString())


def _run(benchmark: Any, encode: Any, spans: int) -> None:
    benchmark.group = f"encode {spans} spans into an ExportTraceServiceRequest"
    batches = [_batch(spans)]
    encode(batches)  # warm: caches, imports
    benchmark(encode, batches)
    benchmark.extra_info["per_span_us"] = round(benchmark.stats.stats.median * 1e6 / spans, 1)


def _official(converter: Converter) -> Any:
    return lambda batches: converter.request(batches).SerializeToString()


@pytest.mark.parametrize("spans", [10, 100])
def test_baseline_official_sdk_encoder(benchmark: Any, spans: int) -> None:
    _run(benchmark, _official(Converter()), spans)


@pytest.mark.parametrize("spans", [10, 100])
def test_opentelemetry_proto_messages(benchmark: Any, spans: int) -> None:
    _run(benchmark, _proto_messages, spans)


@pytest.mark.parametrize("spans", [10, 100])
def test_hand_written_span_encoder(benchmark: Any, spans: int) -> None:
    _run(benchmark, SpanEncoder().request, spans)


def _log_batch(records: int) -> Batch:
    entries = []
    for index in range(records):
        entry = LogEntry(f"order {index} charged", 1_700_000_000_000_000_000 + index, 1_700_000_000_100_000_000)
        entry.severity_text, entry.severity_number = "INFO", 9
        entry.attributes = {"faas.invocation_id": "r1", "code.line": index}
        entry.trace_id, entry.span_id, entry.trace_flags = b"\x01" * 16, b"\x02" * 8, 1
        entries.append(entry)
    return Batch(RESOURCE, "r1", entries, [200] * records)


@pytest.mark.benchmark(group="encode 100 log records into an ExportLogsServiceRequest")
def test_baseline_official_log_encoder(benchmark: Any) -> None:
    converter = LogConverter()
    benchmark(lambda batches: converter.request(batches).SerializeToString(), [_log_batch(100)])


@pytest.mark.benchmark(group="encode 100 log records into an ExportLogsServiceRequest")
def test_hand_written_log_encoder(benchmark: Any) -> None:
    benchmark(LogEncoder().request, [_log_batch(100)])
