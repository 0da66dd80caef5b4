"""Logs in the local Lambda sandbox (awslambdaric, the real tracer, the real extension): function logs and
platform reports as OTLP log records, and the invocation profile on the invocation span."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox
from tests.helpers.otlp_receiver import OtlpReceiver, ReceivedLog, ReceivedSpan
from tests.integration.extension.conftest import function_root

pytestmark = pytest.mark.timeout(120)

FUNCTION = '''
import json
import logging
import os
import time

from tracer import trace_handler

logging.getLogger().setLevel(logging.DEBUG)
log = logging.getLogger("app")
print("init line")


def work(event):
    mode = event.get("mode")
    if mode == "levels":
        print("plain print", event["tag"])
        log.debug("debug %s", event["tag"])
        log.info("info %s", event["tag"])
        log.warning("warning %s", event["tag"])
        log.error("error %s", event["tag"])
    elif mode == "raise":
        print("about to fail", event["tag"])
        raise ValueError("boom " + event["tag"])
    elif mode == "cpu":
        end = time.process_time() + event.get("seconds", 0.05)
        while time.process_time() < end:
            pass
    elif mode == "memory":
        block = bytearray(event.get("mb", 50) * 1024 * 1024)
        for offset in range(0, len(block), 4096):  # touch every page: resident, not just reserved
            block[offset] = 1
        del block
    return {"ok": True}


@trace_handler
def traced(event, context):
    return work(event)


def untraced(event, context):
    return work(event)
'''


@pytest.fixture
def logs_task_root(tmp_path: Path) -> Path:
    return function_root(tmp_path, FUNCTION)


@pytest.fixture
def collector() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def sandbox(root: Path, layer: Path, collector: OtlpReceiver, handler: str = "app.traced", memory: int = 512,
            **env: str) -> Sandbox:
    # A generous flush budget: on a loaded machine loading the exporter must not push records to a later flush
    # (the wait for an invocation's lines ends with its runtimeDone, some 25 ms after the response, anyway).
    return Sandbox(root, handler, layers=[layer], memory=memory,
                   env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "AFTERGLOW_FLUSH_BUDGET_MS": "5000",
                        **env})


def function_logs(collector: OtlpReceiver) -> list[ReceivedLog]:
    return [record for record in collector.logs if record.scope_name == "afterglow.lambda.function"]


def reports(collector: OtlpReceiver) -> list[ReceivedLog]:
    return [record for record in collector.logs if record.event_name == "aws.lambda.report"]


def invocation_span(collector: OtlpReceiver, request_id: str) -> ReceivedSpan:
    (span,) = [span for span in collector.spans if span.attributes.get("faas.invocation_id") == request_id]
    return span


def test_plain_and_logging_lines_arrive_with_their_severity_and_trace(logs_task_root: Path, dev_layer: Path,
                                                                     collector: OtlpReceiver) -> None:
    with sandbox(logs_task_root, dev_layer, collector, AFTERGLOW_LOGS="true", AFTERGLOW_FLUSH="end") as box:
        first = box.invoke({"mode": "levels", "tag": "one"})
        second = box.invoke({"mode": "levels", "tag": "two"})
        assert first.json() == second.json() == {"ok": True}
        # with AFTERGLOW_LOGS=true an invocation's lines leave with its own flush
        collector.wait_for_logs(5, where=lambda record: "two" in str(record.body), timeout=20)
        spans = collector.wait_for_spans(2)
    for invocation, tag in ((first, "one"), (second, "two")):
        root = invocation_span(collector, invocation.request_id)
        lines = [record for record in function_logs(collector) if tag in str(record.body)]
        by_body = {record.body: record for record in lines}
        assert set(by_body) == {f"plain print {tag}", f"debug {tag}", f"info {tag}", f"warning {tag}",
                                f"error {tag}"}
        assert [(by_body[f"{level} {tag}"].severity_text, by_body[f"{level} {tag}"].severity_number)
                for level in ("debug", "info", "warning", "error")] == [
            ("DEBUG", 5), ("INFO", 9), ("WARNING", 13), ("ERROR", 17)]
        assert by_body[f"plain print {tag}"].severity_number == 0  # print says nothing about severity
        for record in lines:
            assert record.attributes["faas.invocation_id"] == invocation.request_id
            assert record.trace_id == root.trace_id and record.span_id == root.span_id
            assert record.resource["service.name"] == root.resource["service.name"]
            assert root.start_ns - 5_000_000 <= record.time_ns <= root.end_ns + 5_000_000  # ms precision
    assert len(spans) == 2
    init = [record for record in function_logs(collector) if record.body == "init line"]
    assert len(init) == 1 and not init[0].trace_id and "faas.invocation_id" not in init[0].attributes


def test_an_unhandled_exception_is_one_error_record_with_the_whole_traceback(logs_task_root: Path, dev_layer: Path,
                                                                           collector: OtlpReceiver) -> None:
    with sandbox(logs_task_root, dev_layer, collector) as box:
        invocation = box.invoke({"mode": "raise", "tag": "x1"})
        assert invocation.function_error
    root = invocation_span(collector, invocation.request_id)
    (error,) = [record for record in function_logs(collector) if "Traceback" in str(record.body)]
    assert error.severity_text == "ERROR" and error.severity_number == 17
    assert error.body.startswith("[ERROR] ValueError: boom x1\nTraceback (most recent call last):\n")
    assert 'raise ValueError("boom " + event["tag"])' in error.body  # the last frame, in the same record
    assert error.attributes["exception.type"] == "ValueError"
    assert error.attributes["exception.message"] == "boom x1"
    assert error.trace_id == root.trace_id and error.attributes["faas.invocation_id"] == invocation.request_id


def test_json_log_format(logs_task_root: Path, dev_layer: Path, collector: OtlpReceiver) -> None:
    with sandbox(logs_task_root, dev_layer, collector, AWS_LAMBDA_LOG_FORMAT="JSON") as box:
        invocation = box.invoke({"mode": "levels", "tag": "j1"})
        failed = box.invoke({"mode": "raise", "tag": "j2"})
    root = invocation_span(collector, invocation.request_id)
    lines = {record.body: record for record in function_logs(collector)
             if record.attributes.get("faas.invocation_id") == invocation.request_id}
    warning = lines["warning j1"]
    assert (warning.severity_text, warning.severity_number) == ("WARNING", 13)
    assert warning.attributes["logger"] == "app"
    assert warning.trace_id == root.trace_id
    assert lines["plain print j1"].severity_number == 0  # print output stays text in the JSON format
    (error,) = [record for record in function_logs(collector)
                if record.attributes.get("exception.type") == "ValueError"]
    failed_root = invocation_span(collector, failed.request_id)
    assert error.severity_text == "ERROR" and error.body == "ValueError: boom j2"
    assert error.attributes["faas.invocation_id"] == failed.request_id and error.trace_id == failed_root.trace_id
    assert "raise ValueError" in error.attributes["exception.stacktrace"]


def test_every_invocation_has_a_report_record(logs_task_root: Path, dev_layer: Path, collector: OtlpReceiver) -> None:
    with sandbox(logs_task_root, dev_layer, collector, memory=256) as box:
        invocations = [box.invoke({}), box.invoke({"mode": "raise", "tag": "r"}), box.invoke({})]
        platform_reports = [invocation.report() for invocation in invocations]
    # the last report comes after the last invocation: it leaves at SHUTDOWN
    records = {record.attributes["faas.invocation_id"]: record for record in reports(collector)}
    assert set(records) == {invocation.request_id for invocation in invocations}
    for invocation, platform_report in zip(invocations, platform_reports, strict=True):
        record = records[invocation.request_id]
        attributes = record.attributes
        assert record.trace_id == invocation_span(collector, invocation.request_id).trace_id
        assert attributes["aws.lambda.billed_duration_ms"] == platform_report.billed_duration_ms
        assert attributes["aws.lambda.duration_ms"] == pytest.approx(platform_report.duration_ms)
        assert attributes["aws.lambda.max_memory_used_mb"] == platform_report.max_memory_used_mb > 0
        assert attributes["aws.lambda.memory_size_mb"] == platform_report.memory_size_mb
        assert ("aws.lambda.init_duration_ms" in attributes) is (platform_report.init_duration_ms is not None)
        assert attributes["aws.lambda.status"] == platform_report.status
        assert attributes["aws.lambda.runtime.status"] == platform_report.status
        assert record.body.startswith(f"REPORT RequestId: {invocation.request_id}\tDuration: ")
    assert records[invocations[0].request_id].attributes["aws.lambda.init_duration_ms"] > 0
    assert records[invocations[1].request_id].severity_text == "ERROR"


def test_the_profile_is_on_the_invocation_span(logs_task_root: Path, dev_layer: Path,
                                               collector: OtlpReceiver) -> None:
    """With ``AFTERGLOW_FLUSH=end`` the extension follows every invocation, so it adds memory and network."""
    with sandbox(logs_task_root, dev_layer, collector, AFTERGLOW_FLUSH="end") as box:
        idle = box.invoke({})
        busy = box.invoke({"mode": "cpu", "seconds": 0.05})
        hungry = box.invoke({"mode": "memory", "mb": 50})
        after = box.invoke({})
    collector.wait_for_spans(4)
    idle_span, busy_span = invocation_span(collector, idle.request_id), invocation_span(collector, busy.request_id)
    hungry_span, after_span = invocation_span(collector, hungry.request_id), invocation_span(collector,
                                                                                            after.request_id)
    cpu = busy_span.attributes["process.cpu.time.user"] + busy_span.attributes["process.cpu.time.system"]
    assert cpu >= 0.04  # the handler burnt 50 ms of CPU
    for span in (idle_span, busy_span, hungry_span, after_span):
        assert span.attributes["process.cpu.time.user"] >= 0 and span.attributes["process.cpu.time.system"] >= 0
        assert span.attributes["process.network.io.receive"] >= 0
        assert span.attributes["process.network.io.transmit"] >= 0
    peak = {name: span.attributes["process.memory.peak_rss"] / 1024 / 1024
            for name, span in (("idle", idle_span), ("hungry", hungry_span), ("after", after_span))}
    assert peak["hungry"] >= peak["after"] + 45  # the 50 MB the handler held
    assert peak["after"] < peak["idle"] + 45  # the peak is the invocation's own, not the process's lifetime


def test_in_the_background_the_profile_is_the_cpu_time_the_function_measures(
        logs_task_root: Path, dev_layer: Path, collector: OtlpReceiver) -> None:
    """Nothing is woken as an invocation ends, so nothing reads /proc then: CPU time only, and nothing misleading."""
    with sandbox(logs_task_root, dev_layer, collector, AFTERGLOW_FLUSH="background") as box:
        idle = box.invoke({})
        busy = box.invoke({"mode": "cpu", "seconds": 0.05})
    collector.wait_for_spans(2)
    idle_span, busy_span = invocation_span(collector, idle.request_id), invocation_span(collector, busy.request_id)
    busy_cpu = busy_span.attributes["process.cpu.time.user"] + busy_span.attributes["process.cpu.time.system"]
    assert busy_cpu >= 0.04
    assert idle_span.attributes["process.cpu.time.user"] + idle_span.attributes["process.cpu.time.system"] < busy_cpu
    for span in (idle_span, busy_span):
        assert not {"process.memory.peak_rss", "process.network.io.receive"} & set(span.attributes)


@pytest.mark.parametrize("flush", ["end", "background"])
def test_opting_out_exports_no_logs_and_subscribes_to_platform_events_only(
        logs_task_root: Path, dev_layer: Path, collector: OtlpReceiver, flush: str) -> None:
    with sandbox(logs_task_root, dev_layer, collector, AFTERGLOW_LOGS="false", AFTERGLOW_PROFILE="false",
                 AFTERGLOW_FLUSH=flush) as box:
        box.invoke({"mode": "levels", "tag": "quiet"})
        box.invoke({})
    collector.wait_for_spans(2)
    assert collector.logs == []
    assert [request for request in collector.requests if request.path.endswith("/v1/logs")] == []
    assert all("process.cpu.time.user" not in span.attributes and "process.memory.peak_rss" not in span.attributes
               for span in collector.spans)
    subscriptions = [event["record"] for event in box.events if event["type"] == "platform.telemetrySubscription"]
    if flush == "end":  # following each invocation needs platform.runtimeDone
        assert subscriptions and all(record["types"] == ["platform"] for record in subscriptions)
    else:  # in the background nothing follows invocations: no Telemetry API at all
        assert subscriptions == []


def test_an_untraced_function_still_ships_its_logs(logs_task_root: Path, dev_layer: Path,
                                                   collector: OtlpReceiver) -> None:
    with sandbox(logs_task_root, dev_layer, collector, handler="app.untraced", OTEL_SERVICE_NAME="plain") as box:
        invocation = box.invoke({"mode": "levels", "tag": "u1"})
    lines = [record for record in function_logs(collector) if "u1" in str(record.body)]
    assert len(lines) == 5
    for record in lines:
        assert record.trace_id == "" and record.span_id == ""
        assert record.attributes["faas.invocation_id"] == invocation.request_id
        assert record.resource["service.name"] == "plain" and record.resource["cloud.platform"] == "aws_lambda"
    assert collector.spans == []
    assert [record.attributes["faas.invocation_id"] for record in reports(collector)] == [invocation.request_id]


def test_the_waterfall_shows_the_log_lines_under_their_trace(logs_task_root: Path, dev_layer: Path) -> None:
    with Sandbox(logs_task_root, "app.traced", layers=[dev_layer]) as box:
        box.invoke({"mode": "levels", "tag": "w1"})
        deadline = time.monotonic() + 10
        while not any("error w1" in line.text for line in box.logs if line.source == "extension"):
            assert time.monotonic() < deadline, "no waterfall with log lines"
            time.sleep(0.05)
    printed = "\n".join(line.text for line in box.logs if line.source == "extension")
    waterfall = printed[printed.index("trace "):]
    for expected in ("plain print w1", "DEBUG  debug w1", "INFO   info w1", "WARNING warning w1", "ERROR  error w1"):
        assert expected in waterfall
    assert "init line" not in printed  # a line outside any trace is in the function's own log already


@pytest.mark.parametrize("logs", ["deferred", "true"])
def test_a_collector_without_a_logs_endpoint_gets_the_spans_and_one_line_on_how_to_silence_it(
        logs_task_root: Path, dev_layer: Path, collector: OtlpReceiver, logs: str) -> None:
    collector.refuse("/v1/logs", 405)  # a traces-only backend: /v1/traces answers 200
    with sandbox(logs_task_root, dev_layer, collector, AFTERGLOW_LOGS=logs) as box:
        invocations = [box.invoke({"mode": "levels", "tag": f"t{number}"}) for number in range(4)]
        assert all(invocation.json() == {"ok": True} for invocation in invocations)
    collector.wait_for_spans(4, timeout=30)
    assert {span.attributes["faas.invocation_id"] for span in collector.spans} == {
        invocation.request_id for invocation in invocations}
    assert not collector.logs
    assert len([request for request in collector.requests if request.path == "/v1/logs"]) == 1  # never asked again
    lines = [line.text for line in box.logs if line.source == "extension"]
    (said,) = [line for line in lines if "OTEL_LOGS_EXPORTER=none" in line]
    assert said.startswith("[afterglow] WARNING the collector has no logs endpoint") and "HTTP 405" in said
    (self_report,) = [line for line in lines if "received=" in line]  # at SHUTDOWN, not once per invocation
    assert self_report.startswith("[afterglow] spans received=4 exported=4 dropped=0")
    received = int(self_report.split("logs received=")[1].split()[0])
    assert received >= 4 * 5 and f"exported=0 dropped={received} (no_endpoint={received})" in self_report
