"""AFTERGLOW_CAPTURE_PAYLOAD with a decorated handler, read from the real socket as the extension reads it."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.helpers.tracing import SpanReader, lambda_context
from tracer import _runtime, trace_handler, wire
from tracer._capture import MASKED

EVENT = {
    "headers": {"Authorization": "Bearer abc", "user-agent": "curl"},
    "body": json.dumps({"user": "ann", "password": "hunter2"}),
}


def _spans(reader: SpanReader, request_id: str) -> tuple[list[Any], list[Any]]:
    """(the invocation span as START carried it, as it ended)."""
    reader.wait_for_end(request_id)
    start = next(payload[1] for kind, payload in reader.snapshot() if kind == wire.START and payload[0] == request_id)
    end = next(span for span in reader.spans() if span[wire.SPAN_ID] == start[wire.SPAN_ID])
    return start, end


@pytest.fixture
def capturing(lambda_env: str, reader: SpanReader, monkeypatch: pytest.MonkeyPatch) -> SpanReader:
    monkeypatch.setenv("AFTERGLOW_CAPTURE_PAYLOAD", "true")
    return reader


def test_event_and_response_are_captured_masked(capturing: SpanReader) -> None:
    result = {"statusCode": 200, "body": "ok", "token": "t-1"}

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return result

    assert handler(EVENT, lambda_context("req-1")) is result
    start, end = _spans(capturing, "req-1")
    event = json.loads(end[wire.ATTRIBUTES]["faas.invocation.event"])
    assert event["headers"] == {"Authorization": MASKED, "user-agent": "curl"}
    assert json.loads(event["body"]) == {"user": "ann", "password": MASKED}
    assert json.loads(end[wire.ATTRIBUTES]["faas.invocation.response"]) == {
        "statusCode": 200, "body": "ok", "token": MASKED}
    # the event is already on START: a crash or a timeout still shows what the function was given
    assert start[wire.ATTRIBUTES]["faas.invocation.event"] == end[wire.ATTRIBUTES]["faas.invocation.event"]
    assert "hunter2" not in str(capturing.snapshot()) and "Bearer abc" not in str(capturing.snapshot())


def test_off_by_default(lambda_env: str, reader: SpanReader) -> None:
    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return {"a": 1}

    handler(EVENT, lambda_context("req-1"))
    _, end = _spans(reader, "req-1")
    assert not {"faas.invocation.event", "faas.invocation.response"} & set(end[wire.ATTRIBUTES])
    assert _runtime.current().capture is None  # type: ignore[union-attr]  # nothing to pay for per invocation


def test_results_json_cannot_hold_pass_through_untouched(capturing: SpanReader) -> None:
    class Custom:
        def __repr__(self) -> str:
            return "Custom()"

    looped: dict[str, Any] = {}
    looped["me"] = looped
    results: list[Any] = [b"\x00\xffraw", Custom(), looped, None, "x" * 100_000]

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return results[event["n"]]

    for number, expected in enumerate(results):
        assert handler({"n": number}, lambda_context(f"req-{number}")) is expected
    texts = [_spans(capturing, f"req-{number}")[1][wire.ATTRIBUTES]["faas.invocation.response"]
             for number in range(len(results))]
    assert texts[0] == '"\\u0000\\\\xffraw"' and texts[1] == '"Custom()"' and texts[2] == '{"me":"[cycle]"}'
    assert texts[3] == "null" and len(texts[4]) == 8192 and texts[4].endswith("[truncated]")


def test_an_exception_leaves_no_response_and_passes_unchanged(capturing: SpanReader) -> None:
    failure = ValueError("boom")

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        raise failure

    with pytest.raises(ValueError) as raised:
        handler({"password": "p"}, lambda_context("req-1"))
    assert raised.value is failure
    _, end = _spans(capturing, "req-1")
    assert json.loads(end[wire.ATTRIBUTES]["faas.invocation.event"]) == {"password": MASKED}
    assert "faas.invocation.response" not in end[wire.ATTRIBUTES]


def test_an_unsampled_invocation_captures_nothing(capturing: SpanReader) -> None:
    seen: list[Any] = []

    class Watched(dict):  # type: ignore[type-arg]
        def items(self) -> Any:
            seen.append("read")
            return super().items()

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return Watched(a=1)

    event = {
        "requestContext": {"http": {"method": "GET", "path": "/"}},
        "rawPath": "/",
        "headers": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},  # not sampled
        "payload": Watched(b=2),
    }
    handler(event, lambda_context("req-1"))
    assert capturing.wait_for_end("req-1")[:3] == ["req-1", False, {}]
    assert seen == []


def test_the_value_limit_applies(capturing: SpanReader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64")

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return list(range(1000))

    handler({"items": list(range(1000))}, lambda_context("req-1"))
    _, end = _spans(capturing, "req-1")
    for name in ("faas.invocation.event", "faas.invocation.response"):
        assert len(end[wire.ATTRIBUTES][name]) == 64 and end[wire.ATTRIBUTES][name].endswith("...[truncated]")


def test_a_bad_mask_pattern_warns_once_and_masks_with_the_default(
    capturing: SpanReader, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AFTERGLOW_CAPTURE_MASK", "(unclosed")

    with caplog.at_level(logging.WARNING, logger="afterglow"):

        @trace_handler
        def handler(event: Any, context: Any) -> Any:
            return None

        handler({"secret": "s"}, lambda_context("req-1"))
        handler({"secret": "s"}, lambda_context("req-2"))
    assert caplog.text.count("AFTERGLOW_CAPTURE_MASK") == 1
    _, end = _spans(capturing, "req-2")
    assert json.loads(end[wire.ATTRIBUTES]["faas.invocation.event"]) == {"secret": MASKED}


def test_a_custom_mask_pattern(capturing: SpanReader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERGLOW_CAPTURE_MASK", "^email$|card")

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return None

    handler({"email": "a@b", "emails": 2, "creditCard": "4111", "password": "p"}, lambda_context("req-1"))
    _, end = _spans(capturing, "req-1")
    assert json.loads(end[wire.ATTRIBUTES]["faas.invocation.event"]) == {
        "email": MASKED, "emails": 2, "creditCard": MASKED, "password": "p"}
