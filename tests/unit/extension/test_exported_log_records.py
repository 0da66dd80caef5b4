"""What the log records of a run of invocations decode to, field for field, from the Telemetry API's events to the
OTLP request (opentelemetry-proto): the function's lines in each form awslambdaric writes, the platform's reports
with and without their runtimeDone, a failed invocation, lines outside any invocation, as the extension's default
configuration (background export: sealed at runtimeDone) collects them."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from extension.function_logs import LogCollector
from tests.helpers.otlp_receiver import any_value, attributes
from tracer.export.assembler import Correlation
from tracer.export.buffer import SpanBuffer
from tracer.export.log_encoder import LogEncoder
from tracer.export.stats import Stats

T0 = "2026-11-26T15:00:00.000Z"
HELLO_RESOURCE = {"service.name": "checkout", "process.pid": 7, "cloud.region": "eu-west-1"}
FALLBACK = {"service.name": "from-platform", "cloud.provider": "aws"}
TRACED = Correlation(bytes(range(1, 17)), bytes(range(17, 25)), 1, HELLO_RESOURCE)
OBSERVED_NS = 1_764_169_200_123_000_000


def event(kind: str, record: Any, when: str = T0) -> dict[str, Any]:
    return {"time": when, "type": kind, "record": record}


def runtime_done(request_id: str, status: str = "success", error_type: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"requestId": request_id, "status": status,
                              "metrics": {"durationMs": 12.345, "producedBytes": 17},
                              "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5f8a3f4e-abc"},
                              "spans": [{"name": "responseLatency", "start": T0, "durationMs": 11.5},
                                        {"name": "responseDuration", "start": T0, "durationMs": 0.0}]}
    if error_type:
        record["errorType"] = error_type
    return event("platform.runtimeDone", record, "2026-11-26T15:00:00.020Z")


def report(request_id: str, status: str = "success", init: bool = False,
           error_type: str | None = None) -> dict[str, Any]:
    metrics: dict[str, Any] = {"durationMs": 13.9, "billedDurationMs": 14, "memorySizeMB": 128, "maxMemoryUsedMB": 41}
    if init:
        metrics["initDurationMs"] = 250.125
    record: dict[str, Any] = {"requestId": request_id, "status": status, "metrics": metrics,
                              "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5f8a3f4e-abc"}}
    if error_type:
        record["errorType"] = error_type
    return event("platform.report", record, "2026-11-26T15:00:00.031Z")


def exported_records() -> list[dict[str, Any]]:
    """The events of three invocations and a stray line, collected, flushed in one request, decoded."""
    stats = Stats()
    buffer = SpanBuffer(1000, stats, 1 << 30)
    correlations = {"r-traced": TRACED}
    collector = LogCollector(buffer, stats, lambda request_id: correlations.get(request_id or ""), lambda: FALLBACK,
                             clock_ns=lambda: OBSERVED_NS, seal_at_runtime_done=True)
    json_line = ('{"timestamp": "2026-11-26T15:00:00.005Z", "level": "WARNING", "message": "low stock", '
                 '"logger": "app", "requestId": "r-traced", "sku": "A-1", "count": 3, "tags": ["x", "y"], '
                 '"where": {"aisle": 4}}')
    events = [
        event("function", "a line before any invocation"),
        event("platform.start", {"requestId": "r-traced", "version": "$LATEST",
                                 "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5f8a3f4e-abc"}}),
        event("function", "processed 10 items", "2026-11-26T15:00:00.004Z"),
        event("function", "[INFO]\t2026-11-26T15:00:00.006Z\tr-traced\tcharged order 7\n"),
        event("function", json_line),
        event("function", {"timestamp": "2026-11-26T15:00:00.007Z", "level": "ERROR", "message": "retrying",
                           "requestId": "r-traced", "otelTraceID": "0af7651916cd43dd8448eb211c80319c",
                           "otelSpanID": "b7ad6b7169203331", "otelTraceSampled": True,
                           "errorType": "TimeoutError", "errorMessage": "slow",
                           "stackTrace": ["  File \"app.py\", line 3\n", "    call()\n"]}),
        runtime_done("r-traced"),
        report("r-traced", init=True),
        event("platform.start", {"requestId": "r-failed", "version": "$LATEST"}, "2026-11-26T15:00:01.000Z"),
        event("function", "[ERROR] ValueError: bad input\rTraceback (most recent call last):\r  File \"app.py\", "
                          "line 9, in handler\r    raise ValueError(\"bad input\")", "2026-11-26T15:00:01.002Z"),
        runtime_done("r-failed", "error", "Runtime.Unknown"),
        report("r-failed", "error", error_type="Runtime.Unknown"),
        event("platform.start", {"requestId": "r-cut"}, "2026-11-26T15:00:02.000Z"),
        event("function", "[WARNING]\t2026-11-26T15:00:02.001Z\tr-cut\tshutting down soon"),
        runtime_done("r-cut", "timeout"),
        event("platform.logsDropped", {"droppedRecords": 2, "droppedBytes": 100, "reason": "buffer"}),
    ]
    for item in events:
        if item["type"] == "platform.start":
            collector.begin(item["record"]["requestId"])
        collector.on_event(item)
    collector.seal_all()  # SHUTDOWN: r-cut's report never came
    entries = []
    while (lease := buffer.take(10_000, 1 << 40)) is not None:
        entries.extend(lease.batches)
        buffer.commit(lease)
    assert stats.dropped == {"lambda_dropped": 2}
    assert stats.received == 10 and stats.exported == 10
    request = ExportLogsServiceRequest.FromString(LogEncoder().request(entries))
    return [{"resource": attributes(resource_logs.resource.attributes)["service.name"],
             "scope": scope_logs.scope.name, "time": record.time_unix_nano, "severity": record.severity_number,
             "level": record.severity_text, "body": any_value(record.body), "attributes": attributes(record.attributes),
             "flags": record.flags, "trace": record.trace_id.hex(), "span": record.span_id.hex(),
             "observed": record.observed_time_unix_nano, "event": record.event_name}
            for resource_logs in request.resource_logs
            for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records]


def test_the_exported_records_are_these() -> None:
    assert exported_records() == EXPECTED


# Read against the events above, field for field (times: the line's own, else its event's; the stray line has
# the platform's resource and no trace; r-cut's report, which never came, is stamped when SHUTDOWN sealed it).
EXPECTED: list[dict[str, Any]] = [
    {"resource": "from-platform",
     "scope": "afterglow.lambda.function",
     "time": 1795705200000000000,
     "severity": 0,
     "level": "",
     "body": "a line before any invocation",
     "attributes": {},
     "flags": 0,
     "trace": "",
     "span": "",
     "observed": 1764169200123000000,
     "event": ""},
    {"resource": "from-platform",
     "scope": "afterglow.lambda.function",
     "time": 1795705201002000000,
     "severity": 17,
     "level": "ERROR",
     "body": "[ERROR] ValueError: bad input\n"
             "Traceback (most recent call last):\n"
             '  File "app.py", line 9, in handler\n'
             '    raise ValueError("bad input")',
     "attributes": {"exception.type": "ValueError",
                    "exception.message": "bad input",
                    "faas.invocation_id": "r-failed"},
     "flags": 0,
     "trace": "",
     "span": "",
     "observed": 1764169200123000000,
     "event": ""},
    {"resource": "from-platform",
     "scope": "afterglow.lambda.function",
     "time": 1795705202001000000,
     "severity": 13,
     "level": "WARNING",
     "body": "shutting down soon",
     "attributes": {"faas.invocation_id": "r-cut"},
     "flags": 0,
     "trace": "",
     "span": "",
     "observed": 1764169200123000000,
     "event": ""},
    {"resource": "from-platform",
     "scope": "afterglow.lambda.platform",
     "time": 1795705200031000000,
     "severity": 17,
     "level": "ERROR",
     "body": "REPORT RequestId: r-failed\tDuration: 13.90 ms\tBilled Duration: 14 ms\tMemory Size: 128 MB\tMax "
             "Memory Used: 41 MB\tStatus: error",
     "attributes": {"faas.invocation_id": "r-failed",
                    "aws.lambda.duration_ms": 13.9,
                    "aws.lambda.billed_duration_ms": 14,
                    "aws.lambda.memory_size_mb": 128,
                    "aws.lambda.max_memory_used_mb": 41,
                    "aws.lambda.error_type": "Runtime.Unknown",
                    "aws.lambda.runtime.status": "error",
                    "aws.lambda.runtime.duration_ms": 12.345,
                    "aws.lambda.runtime.produced_bytes": 17,
                    "aws.lambda.response_latency_ms": 11.5,
                    "aws.lambda.status": "error"},
     "flags": 0,
     "trace": "",
     "span": "",
     "observed": 1764169200123000000,
     "event": "aws.lambda.report"},
    {"resource": "from-platform",
     "scope": "afterglow.lambda.platform",
     "time": 1764169200123000000,
     "severity": 17,
     "level": "ERROR",
     "body": "REPORT RequestId: r-cut\tStatus: timeout",
     "attributes": {"faas.invocation_id": "r-cut",
                    "aws.lambda.runtime.status": "timeout",
                    "aws.lambda.runtime.duration_ms": 12.345,
                    "aws.lambda.runtime.produced_bytes": 17,
                    "aws.lambda.response_latency_ms": 11.5,
                    "aws.lambda.status": "timeout"},
     "flags": 0,
     "trace": "",
     "span": "",
     "observed": 1764169200123000000,
     "event": "aws.lambda.report"},
    {"resource": "checkout",
     "scope": "afterglow.lambda.function",
     "time": 1795705200004000000,
     "severity": 0,
     "level": "",
     "body": "processed 10 items",
     "attributes": {"faas.invocation_id": "r-traced"},
     "flags": 1,
     "trace": "0102030405060708090a0b0c0d0e0f10",
     "span": "1112131415161718",
     "observed": 1764169200123000000,
     "event": ""},
    {"resource": "checkout",
     "scope": "afterglow.lambda.function",
     "time": 1795705200006000000,
     "severity": 9,
     "level": "INFO",
     "body": "charged order 7",
     "attributes": {"faas.invocation_id": "r-traced"},
     "flags": 1,
     "trace": "0102030405060708090a0b0c0d0e0f10",
     "span": "1112131415161718",
     "observed": 1764169200123000000,
     "event": ""},
    {"resource": "checkout",
     "scope": "afterglow.lambda.function",
     "time": 1795705200005000000,
     "severity": 13,
     "level": "WARNING",
     "body": "low stock",
     "attributes": {"logger": "app",
                    "sku": "A-1",
                    "count": 3,
                    "tags": ["x", "y"],
                    "where": '{"aisle":4}',
                    "faas.invocation_id": "r-traced"},
     "flags": 1,
     "trace": "0102030405060708090a0b0c0d0e0f10",
     "span": "1112131415161718",
     "observed": 1764169200123000000,
     "event": ""},
    {"resource": "checkout",
     "scope": "afterglow.lambda.function",
     "time": 1795705200007000000,
     "severity": 17,
     "level": "ERROR",
     "body": "retrying",
     "attributes": {"exception.type": "TimeoutError",
                    "exception.message": "slow",
                    "exception.stacktrace": '  File "app.py", line 3\n    call()',
                    "faas.invocation_id": "r-traced"},
     "flags": 1,
     "trace": "0af7651916cd43dd8448eb211c80319c",
     "span": "b7ad6b7169203331",
     "observed": 1764169200123000000,
     "event": ""},
    {"resource": "checkout",
     "scope": "afterglow.lambda.platform",
     "time": 1795705200031000000,
     "severity": 9,
     "level": "INFO",
     "body": "REPORT RequestId: r-traced\tDuration: 13.90 ms\tBilled Duration: 14 ms\tMemory Size: 128 MB\tMax "
             "Memory Used: 41 MB\tInit Duration: 250.12 ms",
     "attributes": {"faas.invocation_id": "r-traced",
                    "aws.lambda.duration_ms": 13.9,
                    "aws.lambda.billed_duration_ms": 14,
                    "aws.lambda.memory_size_mb": 128,
                    "aws.lambda.max_memory_used_mb": 41,
                    "aws.lambda.init_duration_ms": 250.125,
                    "aws.lambda.runtime.status": "success",
                    "aws.lambda.runtime.duration_ms": 12.345,
                    "aws.lambda.runtime.produced_bytes": 17,
                    "aws.lambda.response_latency_ms": 11.5,
                    "aws.lambda.status": "success"},
     "flags": 1,
     "trace": "0102030405060708090a0b0c0d0e0f10",
     "span": "1112131415161718",
     "observed": 1764169200123000000,
     "event": "aws.lambda.report"},
]
