"""Log entries through the log encoder: what a collector decodes."""

from __future__ import annotations

import os

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from extension.function_logs import FUNCTION_SCOPE, PLATFORM_SCOPE, LogEntry, report_entry
from tests.helpers.otlp_receiver import any_value, attributes
from tracer.export.buffer import Batch
from tracer.export.log_encoder import LogEncoder

RESOURCE = {"service.name": "checkout", "cloud.region": "eu-west-1"}


def entry(body: object, severity: tuple[str, int] = ("", 0), trace: bool = True) -> LogEntry:
    made = LogEntry(body, 1_700_000_000_000_000_000, 1_700_000_000_100_000_000)
    made.severity_text, made.severity_number = severity
    made.attributes = {"faas.invocation_id": "r1", "count": 3}
    if trace:
        made.trace_id, made.span_id, made.trace_flags = os.urandom(16), os.urandom(8), 1
    return made


def decode(batches: list[Batch]) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest.FromString(LogEncoder().request(batches))


def test_every_field_reaches_the_collector() -> None:
    line = entry("charged\norder 42", ("WARNING", 13))
    request = decode([Batch(RESOURCE, "r1", [line], [1])])
    (resource_logs,) = request.resource_logs
    assert attributes(resource_logs.resource.attributes) == RESOURCE
    (scope_logs,) = resource_logs.scope_logs
    assert scope_logs.scope.name == FUNCTION_SCOPE
    (record,) = scope_logs.log_records
    assert any_value(record.body) == "charged\norder 42"
    assert (record.severity_text, record.severity_number) == ("WARNING", 13)
    assert record.time_unix_nano == line.time_ns and record.observed_time_unix_nano == line.observed_ns
    assert record.trace_id == line.trace_id and record.span_id == line.span_id and record.flags == 1
    assert attributes(record.attributes) == {"faas.invocation_id": "r1", "count": 3}


def test_untraced_lines_map_bodies_and_reports() -> None:
    plain = entry({"order": 42, "items": ["a", "b"]}, trace=False)
    report = report_entry("r1", {"status": "success", "metrics": {"durationMs": 1.5, "billedDurationMs": 2}}, None,
                          1_700_000_000_000_000_000, 1_700_000_000_000_000_000)
    encoded = LogEncoder().request([Batch(RESOURCE, "r1", [plain, report], [1, 1])])
    request = ExportLogsServiceRequest.FromString(encoded)
    scopes = {scope_logs.scope.name: scope_logs.log_records for scope_logs in request.resource_logs[0].scope_logs}
    (line,) = scopes[FUNCTION_SCOPE]
    assert line.trace_id == b"" and line.span_id == b"" and line.severity_number == 0 and line.severity_text == ""
    assert any_value(line.body) == {"order": 42, "items": ["a", "b"]}
    (record,) = scopes[PLATFORM_SCOPE]
    if "event_name" in record.DESCRIPTOR.fields_by_name:
        assert record.event_name == "aws.lambda.report"
    else:  # an opentelemetry-proto older than LogRecord.event_name (12) cannot name it: the bytes carry it all the same
        assert b"\x62\x11aws.lambda.report" in encoded
    assert attributes(record.attributes)["aws.lambda.billed_duration_ms"] == 2


def test_records_of_different_processes_keep_their_resources() -> None:
    other = {"service.name": "checkout", "process.pid": 2}
    request = decode([Batch(RESOURCE, "r1", [entry("a")], [1]), Batch(other, "r2", [entry("b")], [1]),
                      Batch(RESOURCE, "r3", [entry("c")], [1])])
    grouped = {attributes(rl.resource.attributes).get("process.pid"):
               [any_value(record.body) for sl in rl.scope_logs for record in sl.log_records]
               for rl in request.resource_logs}
    assert grouped == {None: ["a", "c"], 2: ["b"]}
