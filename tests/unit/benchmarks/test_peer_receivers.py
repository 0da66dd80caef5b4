"""The peers' receivers decode what each tracer sends into its spans, and refuse what is not that."""

from __future__ import annotations

import base64
import gzip
import json
from types import SimpleNamespace

import msgpack
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from benchmarks.peer_receivers import (
    StdoutSpans,
    Undecodable,
    datadog_spans,
    lumigo_spans,
    otlp_stdout_spans,
    otlp_udp_spans,
)


def _otlp_request(*span_ids: bytes) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for span_id in span_ids:
        span = scope.spans.add()
        span.span_id = span_id
        span.trace_id = b"\x01" * 16
        span.end_time_unix_nano = 1_700_000_000_000_000_000
    return request.SerializeToString()


def test_otlp_over_udp_gives_its_spans_and_an_xray_segment_is_left_alone() -> None:
    body = b"T1S" + base64.b64encode(_otlp_request(b"\x00" * 7 + b"\x01", b"\x00" * 7 + b"\x02"))
    assert otlp_udp_spans(body) == [("0000000000000001", 1_700_000_000.0), ("0000000000000002", 1_700_000_000.0)]
    assert otlp_udp_spans(b'{"id": "a", "name": "segment"}') is None
    with pytest.raises(Undecodable):
        otlp_udp_spans(b"T1U not base64!")


def test_an_otlp_stdout_line_gives_its_spans_and_other_lines_none() -> None:
    payload = base64.b64encode(gzip.compress(_otlp_request(b"\x00" * 7 + b"\x09"))).decode()
    line = json.dumps({"__otel_otlp_stdout": "0.16.0", "content-encoding": "gzip", "payload": payload,
                       "base64": True})
    assert otlp_stdout_spans(line) == [("0000000000000009", 1_700_000_000.0)]
    assert otlp_stdout_spans("processed 10 items") is None
    with pytest.raises(Undecodable):
        otlp_stdout_spans('{"__otel_otlp_stdout": "0.16.0", "payload": "@@"}')


def test_stdout_spans_count_only_the_function_s_otlp_lines() -> None:
    payload = base64.b64encode(gzip.compress(_otlp_request(b"\x00" * 7 + b"\x05"))).decode()
    line = json.dumps({"__otel_otlp_stdout": "0.16.0", "content-encoding": "gzip", "payload": payload})
    counter = StdoutSpans()
    for source, text in (("function", line), ("function", line), ("function", "hello"), ("platform", line)):
        counter.feed(SimpleNamespace(source=source, text=text))
    assert {key: counter.stats()[key] for key in ("distinct", "received", "rejected")} == \
        {"distinct": 1, "received": 2, "rejected": 0}


def test_datadog_payloads_in_both_intake_versions() -> None:
    v04 = msgpack.packb([[{"span_id": 1, "start": 10**18, "duration": 10**9, "name": "aws.lambda"},
                          {"span_id": 2, "start": 10**18, "duration": 0, "name": "child"}]])
    assert datadog_spans("/v0.4/traces", v04) == [("0000000000000001", 10**9 + 1.0), ("0000000000000002", 10**9)]
    strings = ["", "bench", "aws.lambda"]
    span = [1, 2, 2, 77, 255, 0, 10**18, 10**9, 0, {}, {}, 0]
    v05 = msgpack.packb([strings, [[span]]])
    assert datadog_spans("/v0.5/traces", v05) == [("00000000000000ff", 10**9 + 1.0)]
    with pytest.raises(Undecodable):
        datadog_spans("/v0.4/traces", b"\xc1")
    with pytest.raises(Undecodable):
        datadog_spans("/v0.4/traces", msgpack.packb([[{"name": "no id"}]]))


def test_lumigo_spans_are_the_function_span_its_manual_traces_and_other_spans() -> None:
    sent = [
        {"id": "req_started", "type": "function", "started": 1},
        {"id": "req", "type": "function", "ended": 2_000, "manualTraces": [{"name": "child", "endTime": 1_500}] * 2},
        {"type": "enrichment", "lumigo_execution_tags_no_scrub": []},
        {"id": "call", "type": "http", "ended": 1_800, "info": {"httpInfo": {"request": {"uri": "example.com/"}}}},
        {"id": "own", "type": "http", "ended": 1_900,
         "info": {"httpInfo": {"request": {"uri": "127.0.0.1/api/spans"}}}},
    ]
    assert lumigo_spans(json.dumps(sent).encode()) == [
        ("req", 2.0), ("req/manual/0", 1.5), ("req/manual/1", 1.5), ("call", 1.8)]
    with pytest.raises(Undecodable):
        lumigo_spans(b"{not json")
