"""Invoking through the sandbox with the real awslambdaric: answers, context, headers, early return, queueing."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)


def test_response_reaches_the_caller_with_the_lambda_context(functions: Path) -> None:
    with Sandbox(functions, "handlers.echo", timeout=5, memory=256, function_name="greeter") as box:
        invocation = box.invoke({"name": "afterglow"})
        answer = invocation.json()
        assert invocation.status == 200
        assert invocation.function_error is None
        assert answer["event"] == {"name": "afterglow"}
        assert answer["request_id"] == invocation.request_id
        assert answer["function_name"] == "greeter"
        assert answer["function_version"] == "$LATEST"
        assert answer["memory_limit_in_mb"] == "256"
        assert answer["invoked_function_arn"] == "arn:aws:lambda:us-east-1:012345678912:function:greeter"
        assert answer["log_group_name"] == "/aws/lambda/greeter"
        assert "[$LATEST]" in answer["log_stream_name"]
        assert 0 < answer["remaining_ms"] <= 5000
        assert answer["trace_header"].startswith("Root=1-")
        assert invocation.headers["Content-Type"] == "application/json"
        assert invocation.headers["X-Amz-Executed-Version"] == "$LATEST"


def test_cold_then_warm_reports(functions: Path) -> None:
    with Sandbox(functions, "handlers.empty") as box:
        first = box.invoke().report()
        second = box.invoke().report()
    assert first.status == second.status == "success"
    assert first.init_duration_ms is not None and first.init_duration_ms > 0
    assert second.init_duration_ms is None
    assert second.billed_duration_ms >= second.duration_ms
    assert second.memory_size_mb == 128
    assert second.max_memory_used_mb > 1
    assert second.post_runtime_extensions_ms == 0.0  # no extensions


def test_incoming_trace_header_is_passed_through(functions: Path) -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    with Sandbox(functions, "handlers.echo") as box:
        answer = box.invoke({}, headers={"X-Amzn-Trace-Id": header}).json()
        other = box.invoke({}).json()
        start_events = [event for event in box.events if event["type"] == "platform.start"]
    assert answer["trace_header"] == header
    assert other["trace_header"] != header  # a fresh one when the caller sends none
    assert start_events[0]["record"]["tracing"] == {"type": "X-Amzn-Trace-Id", "value": header}


def test_client_context_reaches_the_handler(functions: Path) -> None:
    context = {"custom": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
    encoded = base64.b64encode(json.dumps(context).encode()).decode()
    with Sandbox(functions, "handlers.echo") as box:
        answer = box.invoke({}, headers={"X-Amz-Client-Context": encoded}).json()
    assert answer["client_context"] == context["custom"]


def test_handler_error_is_a_200_with_function_error(functions: Path) -> None:
    with Sandbox(functions, "handlers.fail") as box:
        invocation = box.invoke({})
        report = invocation.report()
        lines = [line for line in box.logs if line.source == "function"]
    assert invocation.status == 200
    assert invocation.function_error == "Unhandled"
    body = invocation.json()
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "it went wrong"
    assert body["requestId"] == invocation.request_id
    assert report.status == "error"
    # awslambdaric's multi-line error output stays one record, joined with "\r" (3.x writes its LAMBDA_WARNING
    # about runtime updates in the same record, before the error)
    error_lines = [line.text for line in lines if "[ERROR] ValueError: it went wrong" in line.text]
    assert len(error_lines) == 1 and "\rTraceback" in error_lines[0]


def test_bytes_result_keeps_its_content_type(functions: Path) -> None:
    with Sandbox(functions, "handlers.binary") as box:
        invocation = box.invoke({})
    assert invocation.body == b"\x00\x01binary"
    assert invocation.headers["Content-Type"] == "application/unknown"


def test_oversized_response_is_refused_and_the_environment_recovers(functions: Path) -> None:
    with Sandbox(functions, "handlers.oversized") as box:
        invocation = box.invoke({})
        assert invocation.function_error == "Unhandled"
        assert invocation.json()["errorType"] == "Function.ResponseSizeTooLarge"
        invocation.report()
        again = box.invoke({})  # awslambdaric exits on the 413; the next invoke is a cold start
        assert again.json()["errorType"] == "Function.ResponseSizeTooLarge"
        assert again.report().init_duration_ms is not None


def test_output_is_captured_as_function_log_lines(functions: Path) -> None:
    with Sandbox(functions, "handlers.chatty") as box:
        invocation = box.invoke({})
        invocation.report()
        texts = [line.text for line in box.logs if line.source == "function"]
        platform = [line.text for line in box.logs if line.source == "platform"]
    assert "to stdout" in texts and "to stderr" in texts
    assert any(text.startswith("[WARNING]") and text.endswith("a warning") for text in texts)
    order = [text.split(" ")[0] for text in platform if text.split(" ")[0] in ("START", "END", "REPORT")]
    assert order == ["START", "END", "REPORT"]


def test_rie_endpoint_answers_plain_http_callers(functions: Path) -> None:
    with Sandbox(functions, "handlers.echo") as box:
        request = urllib.request.Request(box.url, data=b'{"via": "urllib"}', method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
            request_id = response.headers["X-Amzn-RequestId"]
    assert answer["event"] == {"via": "urllib"}
    assert answer["request_id"] == request_id


def test_event_invocation_type_returns_202_at_once(functions: Path) -> None:
    with Sandbox(functions, "handlers.echo") as box:
        request = urllib.request.Request(box.url, data=b"{}", method="POST", headers={"X-Amz-Invocation-Type": "Event"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202
            request_id = response.headers["X-Amzn-RequestId"]
        box._recorder.wait_report(request_id, 30)  # the async invoke still ran


def test_early_return_and_the_next_invoke_waits_for_the_extension(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(holder={"hold_ms": 400})
    with Sandbox(functions, "handlers.empty", layers=[layer]) as box:
        box.invoke({}).report()  # cold start out of the way
        first = box.invoke({})
        answered = time.monotonic()
        second = box.invoke({})
        second_answered = time.monotonic()
        first_report = first.report()
        second.report()
    holder = recordings["holder"]
    starts = {
        entry["event"]["requestId"]: entry["t"]
        for entry in holder.entries("event")
        if entry["event"]["eventType"] == "INVOKE"
    }
    done = {entry["requestId"]: entry["t"] for entry in holder.entries("invoke_done")}
    # the caller had its answer while the extension was still holding the INVOKE ...
    assert first.latency_ms < 400
    assert first_report.post_runtime_extensions_ms >= 390
    assert first_report.duration_ms >= 390
    # ... and the next invocation was not dispatched before the extension called next again
    assert starts[second.request_id] >= done[first.request_id]
    assert second_answered - answered >= 0.39


def test_concurrent_callers_queue(functions: Path) -> None:
    with Sandbox(functions, "handlers.sleep") as box:
        futures = [box.invoke_async({"seconds": 0.2}) for _ in range(3)]
        invocations = [future.result(timeout=30) for future in futures]
        reports = [invocation.report() for invocation in invocations]
        starts = [event["time"] for event in box.events if event["type"] == "platform.start"]
        ends = [event["time"] for event in box.events if event["type"] == "platform.report"]
    assert all(invocation.json() == "slept" for invocation in invocations)
    assert len({invocation.request_id for invocation in invocations}) == 3
    assert all(report.status == "success" for report in reports)
    # one at a time: every invoke phase starts after the previous one ended
    assert all(starts[index + 1] >= ends[index] for index in range(2))
