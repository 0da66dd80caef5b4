"""The log collector: which invocation a line belongs to, when it is stamped, reports, bounds, and no loss."""

from __future__ import annotations

import datetime
import os
from typing import Any

from extension.function_logs import (
    PLATFORM_SCOPE,
    REPORT_EVENT,
    LogCollector,
    LogEntry,
    platform_resource,
    report_entry,
)
from tracer.export.assembler import Correlation
from tracer.export.buffer import SpanBuffer
from tracer.export.stats import Stats

HELLO_RESOURCE = {"service.name": "checkout", "process.pid": 7}
T0 = int(datetime.datetime(2026, 11, 26, 15, tzinfo=datetime.timezone.utc).timestamp()) * 10**9
FALLBACK = {"service.name": "from-platform"}


class World:
    """A collector over a real buffer, with the traced invocations the assembler would know."""

    def __init__(self, max_records: int = 1000, keep_untraced: bool = True, reports: bool = True,
                 max_bytes: int = 1 << 40) -> None:
        self.stats = Stats()
        self.buffer = SpanBuffer(max_records, self.stats, max_bytes)
        self.traces: dict[str, Correlation] = {}
        self.resources: dict[int, Any] = {}  # id(entry) -> the resource its batch was exported with
        self.collector = LogCollector(self.buffer, self.stats, self.correlate, lambda: FALLBACK,
                                      keep_untraced=keep_untraced, reports=reports, clock_ns=lambda: 42)

    def correlate(self, request_id: str | None) -> Correlation | None:
        return self.traces.get(request_id) if request_id is not None else None

    def traced(self, request_id: str) -> Correlation:
        correlation = Correlation(os.urandom(16), os.urandom(8), 1, HELLO_RESOURCE)
        self.traces[request_id] = correlation
        return correlation

    def send(self, kind: str, record: Any, when: str = "2026-11-26T15:00:00.000Z") -> None:
        self.collector.on_event({"time": when, "type": kind, "record": record})

    def start(self, request_id: str) -> None:
        self.collector.begin(request_id)  # INVOKE reaches the extension...
        self.send("platform.start", {"requestId": request_id})  # ...while the platform tells its listeners

    def runtime_done(self, request_id: str, status: str = "success") -> None:
        self.send("platform.runtimeDone", {"requestId": request_id, "status": status,
                                           "metrics": {"durationMs": 3.5, "producedBytes": 11},
                                           "spans": [{"name": "responseLatency", "durationMs": 3.1}]})

    def exported(self) -> list[LogEntry]:
        """Everything in the buffer (taken and committed, as a flush would)."""
        entries: list[LogEntry] = []
        while (lease := self.buffer.take(10_000, 1 << 40)) is not None:
            for batch in lease.batches:
                for entry in batch.spans:
                    self.resources[id(entry)] = batch.resource
                    entries.append(entry)
            self.buffer.commit(lease)
        return entries


def bodies(entries: list[LogEntry]) -> list[Any]:
    return [entry.body for entry in entries]


def test_an_invocations_lines_wait_for_its_seal_then_carry_its_trace() -> None:
    world = World()
    trace = world.traced("r1")
    world.start("r1")
    world.send("function", "print output")
    world.send("function", "[INFO]\t2026-11-26T15:00:00.010Z\tr1\tlogging output")
    world.runtime_done("r1")
    assert world.buffer.held == 0 and world.collector.pending == 2  # not before the main thread says so
    assert world.collector.seal() == 2
    entries = world.exported()
    assert bodies(entries) == ["print output", "logging output"]
    for entry in entries:
        assert entry.request_id == "r1" and entry.attributes["faas.invocation_id"] == "r1"
        assert (entry.trace_id, entry.span_id, entry.trace_flags) == (trace.trace_id, trace.span_id, 1)
        assert world.resources[id(entry)] is HELLO_RESOURCE
    assert entries[0].time_ns == T0 and entries[1].time_ns == T0 + 10_000_000  # the event's, the line's
    assert entries[0].observed_ns == 42
    assert world.stats.received == 2


def test_a_line_that_comes_after_the_seal_is_stamped_at_once_and_kept_for_the_next_flush() -> None:
    world = World()
    trace = world.traced("r1")
    world.start("r1")
    world.collector.seal()  # END came and the wait ended before the lines did
    world.send("function", "late print")  # still between platform.start and runtimeDone: r1's
    world.runtime_done("r1")
    world.send("function", "[ERROR]\t2026-11-26T15:00:01.000Z\tr1\tlater still")  # names r1 itself
    assert bodies(world.exported()) == ["later still"]  # r1 is over: straight to the buffer
    world.start("r2")
    world.collector.seal()
    (late,) = world.exported()
    assert late.body == "late print" and late.trace_id == trace.trace_id and late.request_id == "r1"


def test_lines_outside_any_invocation_go_with_the_next_seal_without_a_trace() -> None:
    world = World()
    world.send("function", "init: loading the model")
    world.traced("r1")
    world.start("r1")
    world.send("function", "in r1")
    world.runtime_done("r1")
    world.send("function", "background thread after the response")
    world.collector.seal()
    entries = {entry.body: entry for entry in world.exported()}
    assert set(entries) == {"init: loading the model", "in r1", "background thread after the response"}
    for body in ("init: loading the model", "background thread after the response"):
        assert entries[body].trace_id is None and entries[body].request_id is None
        assert "faas.invocation_id" not in entries[body].attributes
        assert world.resources[id(entries[body])] is FALLBACK
    assert entries["in r1"].trace_id is not None


def test_a_line_with_its_own_trace_context_keeps_it() -> None:
    world = World()
    world.traced("r1")
    world.start("r1")
    world.send("function", {"message": "from a child span", "level": "INFO", "requestId": "r1",
                            "otelTraceID": "0af7651916cd43dd8448eb211c80319c", "otelSpanID": "b7ad6b7169203331"})
    world.collector.seal()
    (entry,) = world.exported()
    assert entry.trace_id == bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    assert entry.span_id == bytes.fromhex("b7ad6b7169203331") and entry.trace_flags == 0


def test_an_untraced_invocation_s_lines_have_no_trace_and_the_fallback_resource() -> None:
    world = World()
    world.start("r1")
    world.send("function", "hello")
    world.runtime_done("r1")
    world.collector.seal()
    (entry,) = world.exported()
    assert entry.trace_id is None and entry.attributes == {"faas.invocation_id": "r1"}
    assert world.resources[id(entry)] is FALLBACK


def test_printing_waterfalls_keeps_only_lines_of_a_trace_and_no_reports() -> None:
    world = World(keep_untraced=False, reports=False)
    world.send("function", "init line")
    world.traced("r1")
    world.start("r1")
    world.send("function", "traced line")
    world.runtime_done("r1")
    world.collector.seal()
    world.send("platform.report", {"requestId": "r1", "status": "success", "metrics": {"durationMs": 1.0}})
    world.collector.seal_all()
    assert bodies(world.exported()) == ["traced line"]


def test_each_invocation_gets_a_report_record_with_its_runtime_status() -> None:
    world = World()
    trace = world.traced("r1")
    world.start("r1")
    world.runtime_done("r1", status="error")
    world.collector.seal()
    world.start("r2")  # the report of r1 comes while r2 runs
    world.send("platform.report", {
        "requestId": "r1", "status": "error", "errorType": "Runtime.Unknown",
        "metrics": {"durationMs": 12.25, "billedDurationMs": 13, "memorySizeMB": 128, "maxMemoryUsedMB": 61,
                    "initDurationMs": 250.5}}, when="2026-11-26T15:00:02.000Z")
    (report,) = world.exported()  # r1 is over: stamped and buffered at once
    assert report.scope == PLATFORM_SCOPE and report.event_name == REPORT_EVENT
    assert report.trace_id == trace.trace_id and report.request_id == "r1"
    assert (report.severity_text, report.severity_number) == ("ERROR", 17)
    assert report.time_ns == T0 + 2 * 10**9
    assert report.attributes == {
        "faas.invocation_id": "r1", "aws.lambda.duration_ms": 12.25, "aws.lambda.billed_duration_ms": 13,
        "aws.lambda.memory_size_mb": 128, "aws.lambda.max_memory_used_mb": 61, "aws.lambda.init_duration_ms": 250.5,
        "aws.lambda.error_type": "Runtime.Unknown", "aws.lambda.runtime.status": "error",
        "aws.lambda.runtime.duration_ms": 3.5, "aws.lambda.runtime.produced_bytes": 11,
        "aws.lambda.response_latency_ms": 3.1, "aws.lambda.status": "error",
    }
    assert report.body == ("REPORT RequestId: r1\tDuration: 12.25 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
                           "Max Memory Used: 61 MB\tInit Duration: 250.50 ms\tStatus: error")


def test_at_shutdown_a_runtime_done_without_its_report_still_gets_a_record() -> None:
    world = World()
    world.start("r1")
    world.runtime_done("r1", status="timeout")
    world.collector.seal_all()
    (record,) = world.exported()
    assert record.attributes["aws.lambda.runtime.status"] == "timeout" and record.severity_text == "ERROR"
    assert "aws.lambda.billed_duration_ms" not in record.attributes


def test_what_waits_is_bounded_and_what_is_dropped_is_counted() -> None:
    world = World(max_records=10)
    world.start("r1")
    for index in range(25):
        world.send("function", f"line {index}")
    assert world.collector.pending == 10 and world.stats.dropped["buffer_full"] == 15
    world.collector.seal()
    assert bodies(world.exported()) == [f"line {index}" for index in range(15, 25)]  # the newest are kept


def test_what_waits_is_bounded_in_bytes_too() -> None:
    line = "x" * 10_000
    size = LogEntry(line, 0, 0).size()
    world = World(max_records=1000, max_bytes=3 * size + 100)  # about three such lines
    world.start("r1")
    for index in range(8):
        world.send("function", f"{index}{line}")
    assert world.collector.pending == 3 and world.stats.dropped["buffer_full"] == 5
    world.collector.seal()
    assert [body[0] for body in bodies(world.exported())] == ["5", "6", "7"]  # the newest are kept


def test_the_platforms_own_drops_are_counted() -> None:
    world = World()
    world.send("platform.logsDropped", {"droppedRecords": 12, "droppedBytes": 3000, "reason": "slow"})
    assert world.stats.dropped["lambda_dropped"] == 12


def test_odd_events_are_ignored() -> None:
    world = World()
    for event in ({}, {"type": "platform.start"}, {"type": "platform.report", "record": {"requestId": 5}},
                  {"type": "platform.runtimeDone", "record": []}, {"type": "extension", "record": "x"}):
        world.collector.on_event(event)
    world.collector.seal_all()
    assert world.exported() == []


def test_many_invocations_lose_and_duplicate_nothing() -> None:
    world = World()
    expected = []
    for number in range(50):
        request_id = f"r{number}"
        world.traced(request_id)
        world.start(request_id)
        for index in range(3):
            world.send("function", f"{request_id} line {index}")
            expected.append(f"{request_id} line {index}")
        if number % 2:  # every other invocation: the wait ends before the lines come
            world.collector.seal()
            world.runtime_done(request_id)
        else:
            world.runtime_done(request_id)
            world.collector.seal()
        if number:
            world.send("platform.report", {"requestId": f"r{number - 1}", "status": "success", "metrics": {}})
            expected.append(f"REPORT RequestId: r{number - 1}")
    world.collector.seal_all()  # the last report never came: its runtimeDone still gets a record
    expected.append("REPORT RequestId: r49")
    entries = world.exported()
    assert sorted(bodies(entries)) == sorted(expected)
    for entry in entries:
        assert entry.trace_id == world.traces[entry.request_id].trace_id  # type: ignore[index]


def test_the_resource_of_a_function_that_never_said_hello() -> None:
    resource = platform_resource("orders", "$LATEST", "arn:aws:lambda:eu-west-1:123456789012:function:orders:live",
                                 None, "team=pay%20ments,broken,deployment.environment=prod")
    assert resource == {"service.name": "orders", "cloud.provider": "aws", "cloud.platform": "aws_lambda",
                        "faas.name": "orders", "faas.version": "$LATEST", "cloud.region": "eu-west-1",
                        "cloud.account.id": "123456789012", "team": "pay ments", "deployment.environment": "prod"}
    assert platform_resource(None, None, None, "svc", None)["service.name"] == "svc"
    assert platform_resource(None, None, "not an arn", None, None)["faas.name"] == "unknown_service"


def test_a_report_s_size_estimate_is_the_one_its_fields_give() -> None:
    done = {"requestId": "r1", "status": "error", "errorType": "Runtime.ExitError",
            "metrics": {"durationMs": 3.5, "producedBytes": 0}, "spans": [{"name": "responseLatency", "durationMs": 1}]}
    reports: list[dict[str, Any] | None] = [
        None, {"metrics": {}}, {"status": "timeout", "errorType": "Sandbox.Timedout", "metrics": {
            "durationMs": 3000.0, "billedDurationMs": 3000, "memorySizeMB": 128, "maxMemoryUsedMB": 50,
            "initDurationMs": 120.5, "restoreDurationMs": 7, "bogus": True}},
        {"status": "success", "metrics": {"durationMs": True, "billedDurationMs": "2"}}]
    for report in reports:
        for runtime_done in (None, done, {"status": 3, "metrics": "x", "spans": [None, {"name": "responseLatency"}]}):
            entry = report_entry("r1", report, runtime_done, 1, 1)
            assert entry.nbytes == entry.size() > 0
