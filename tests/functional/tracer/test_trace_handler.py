"""trace_handler in a Lambda-like process: the invocation span, its attributes and parent, the three zones.

Each test reads what a real Unix-socket reader received, as the extension would.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import traceback
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind, StatusCode

from tests.helpers.tracing import ARN, SpanReader, lambda_context
from tracer import is_traced, trace, trace_handler, wire

EVENTS = Path(__file__).resolve().parents[2] / "fixtures" / "events"
INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def load(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return result


def invocation_span(reader: SpanReader, request_id: str) -> list[Any]:
    reader.wait_for_end(request_id)
    for kind, payload in reader.snapshot():
        if kind == wire.START and payload[0] == request_id:
            span_id = payload[1][wire.SPAN_ID]
    return next(span for span in reader.spans() if span[wire.SPAN_ID] == span_id)


@pytest.fixture
def env(lambda_env: str, reader: SpanReader) -> SpanReader:
    return reader


def test_result_is_returned_untouched_and_the_span_describes_the_invocation(env: SpanReader) -> None:
    result = {"statusCode": 200, "body": "hi"}

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        with trace_api.get_tracer("app").start_as_current_span("work") as span:
            span.set_attribute("n", 1)
        return result

    assert handler({}, lambda_context("req-1")) is result
    assert handler({}, lambda_context("req-2")) is result
    first, second = invocation_span(env, "req-1"), invocation_span(env, "req-2")
    assert first[wire.NAME] == "checkout" and first[wire.KIND] == SpanKind.SERVER.value
    profile = {key: first[wire.ATTRIBUTES].pop(key) for key in ("process.cpu.time.user", "process.cpu.time.system")}
    assert all(isinstance(seconds, float) and seconds >= 0 for seconds in profile.values())  # tracer/_profile.py
    assert first[wire.ATTRIBUTES] == {
        "faas.trigger": "other",
        "faas.invocation_id": "req-1",
        "faas.coldstart": True,
        "cloud.account.id": "123456789012",
        "cloud.resource_id": ARN,
        "aws.lambda.invoked_arn": ARN,
    }
    assert second[wire.ATTRIBUTES]["faas.coldstart"] is False
    work = next(span for span in env.spans() if span[wire.NAME] == "work")
    assert work[wire.PARENT_SPAN_ID] == first[wire.SPAN_ID] and work[wire.TRACE_ID] == first[wire.TRACE_ID]
    assert first[wire.PARENT_SPAN_ID] is None  # no incoming context: a new trace


def test_the_arn_attributes_follow_the_invoked_arn(env: SpanReader) -> None:
    @trace_handler
    def handler(event: Any, context: Any) -> str:
        return "ok"

    alias = ARN.replace(":function:checkout", ":function:checkout:live")
    handler({}, lambda_context("req-1"))
    handler({}, lambda_context("req-2", arn=alias))
    handler({}, lambda_context("req-3", arn="not an arn"))
    handler({}, lambda_context("req-4"))
    arns = {request: invocation_span(env, request)[wire.ATTRIBUTES].get("aws.lambda.invoked_arn")
            for request in ("req-1", "req-2", "req-3", "req-4")}
    assert arns == {"req-1": ARN, "req-2": alias, "req-3": None, "req-4": ARN}
    assert invocation_span(env, "req-2")[wire.ATTRIBUTES]["cloud.resource_id"] == ARN  # $LATEST: no version
    assert "cloud.account.id" not in invocation_span(env, "req-3")[wire.ATTRIBUTES]


def test_resource_in_hello(env: SpanReader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=pay%20ments,deployment.environment=prod,broken")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout-service")

    @trace_handler
    def handler(event: Any, context: Any) -> str:
        return "ok"

    handler({}, lambda_context())
    env.wait_for_end("req-1")
    hello = env.snapshot()[0]
    assert hello[0] == wire.HELLO
    resource = hello[1]["resource"]
    assert resource == resource | {
        "service.name": "checkout-service",
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": "eu-west-1",
        "faas.name": "checkout",
        "faas.version": "$LATEST",
        "faas.instance": "2026/11/26/[$LATEST]abcdef",
        "faas.max_memory": 256 * 1024 * 1024,
        "aws.log.group.names": ["/aws/lambda/checkout"],
        "telemetry.sdk.language": "python",
        "team": "pay ments",
        "deployment.environment": "prod",
    }
    assert "broken" not in resource


def test_exception_is_reraised_identically_and_recorded(env: SpanReader) -> None:
    failure = ValueError("bad order")

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        raise failure

    with pytest.raises(ValueError) as raised:
        handler({}, lambda_context())
    assert raised.value is failure
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert frames[-1] == "handler"  # the user's raise is still where the traceback ends
    span = invocation_span(env, "req-1")
    assert span[wire.STATUS_CODE] == StatusCode.ERROR.value
    assert span[wire.STATUS_DESCRIPTION] == "ValueError: bad order"
    ((name, _, attributes),) = span[wire.EVENTS]
    assert name == "exception" and attributes["exception.escaped"] is True
    assert attributes["exception.type"] == "ValueError" and "raise failure" in attributes["exception.stacktrace"]


def test_http_trigger_names_the_span_continues_the_trace_and_reads_the_status(env: SpanReader) -> None:
    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return {"statusCode": 503, "body": "down"}

    handler(load("apigw_http_v2"), lambda_context())
    span = invocation_span(env, "req-1")
    assert span[wire.NAME] == "POST /orders/{orderId}/items"
    assert f"{int.from_bytes(span[wire.TRACE_ID], 'big'):032x}" == INCOMING.split("-")[1]
    assert f"{int.from_bytes(span[wire.PARENT_SPAN_ID], 'big'):016x}" == INCOMING.split("-")[2]
    attributes = span[wire.ATTRIBUTES]
    assert attributes["faas.trigger"] == "http" and attributes["http.route"] == "/orders/{orderId}/items"
    assert attributes["http.response.status_code"] == 503
    assert span[wire.STATUS_CODE] == StatusCode.ERROR.value


def test_headers_are_matched_in_any_case(env: SpanReader) -> None:
    event = load("apigw_http_v2")
    event["headers"] = {"TraceParent": INCOMING}

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return {"statusCode": 200}

    handler(event, lambda_context())
    span = invocation_span(env, "req-1")
    assert f"{int.from_bytes(span[wire.TRACE_ID], 'big'):032x}" == INCOMING.split("-")[1]
    assert span[wire.STATUS_CODE] == StatusCode.UNSET.value


def test_messages_become_links(env: SpanReader) -> None:
    @trace_handler
    def handler(event: Any, context: Any) -> None:
        return None

    handler(load("sqs"), lambda_context())
    span = invocation_span(env, "req-1")
    assert span[wire.NAME] == "orders-queue process" and span[wire.ATTRIBUTES]["faas.trigger"] == "pubsub"
    assert len(span[wire.LINKS]) == 2
    assert span[wire.LINKS][0][4] == {"messaging.message.id": "059f36b4-87a3-44ab-83d2-661975830a7d"}


XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled={}"


@pytest.mark.parametrize(
    ("order", "sampled_xray", "expected_parent"),
    [
        (None, "1", "00f067aa0ba902b7"),  # default order: W3C headers first
        ("xray,tracecontext", "1", "53995c3f42cd8ad8"),
        ("xray,tracecontext", "0", "00f067aa0ba902b7"),  # Sampled=0 (active tracing off) is not a parent
        ("none", "1", None),
        ("tracecontext,bogus", "1", "00f067aa0ba902b7"),
    ],
)
def test_parent_order(
    env: SpanReader, monkeypatch: pytest.MonkeyPatch, order: str | None, sampled_xray: str, expected_parent: str | None
) -> None:
    if order is not None:
        monkeypatch.setenv("AFTERGLOW_TRACE_PARENT", order)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", XRAY.format(sampled_xray))

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return {"statusCode": 200}

    handler(load("apigw_http_v2"), lambda_context())
    span = invocation_span(env, "req-1")
    parent = span[wire.PARENT_SPAN_ID]
    assert (f"{int.from_bytes(parent, 'big'):016x}" if parent else None) == expected_parent


def _xray_links(span: list[Any]) -> list[tuple[str, str]]:
    return [(link[0].hex(), link[1].hex()) for link in span[wire.LINKS] or ()
            if (link[4] or {}).get("aws.xray.lambda_segment")]


@pytest.mark.parametrize("sampled_xray", ["1", "0"])
def test_lambdas_xray_segment_is_a_link_by_default(
    env: SpanReader, monkeypatch: pytest.MonkeyPatch, sampled_xray: str
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", XRAY.format(sampled_xray))

    @trace_handler
    def handler(event: Any, context: Any) -> None:
        return None

    handler({}, lambda_context())
    span = invocation_span(env, "req-1")
    # a root of its own: the OTLP backend never receives the X-Ray segment, so it cannot be the parent
    assert span[wire.PARENT_SPAN_ID] is None
    assert span[wire.TRACE_ID].hex() != "5759e988bd862e3fe1be46a994272793"
    # linked when X-Ray active tracing recorded it (Sampled=1); Sampled=0 is a segment that exists nowhere
    expected = [("5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8")] if sampled_xray == "1" else []
    assert _xray_links(span) == expected


def test_xray_parent_when_asked_for_and_there_are_no_headers(env: SpanReader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERGLOW_TRACE_PARENT", "tracecontext,xray")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", XRAY.format("1"))

    @trace_handler
    def handler(event: Any, context: Any) -> None:
        return None

    handler({}, lambda_context())
    span = invocation_span(env, "req-1")
    assert f"{int.from_bytes(span[wire.TRACE_ID], 'big'):032x}" == "5759e988bd862e3fe1be46a994272793"
    assert span[wire.PARENT_SPAN_ID].hex() == "53995c3f42cd8ad8" and _xray_links(span) == []


def test_unsampled_invocation_sends_only_end(env: SpanReader) -> None:
    event = load("apigw_http_v2")
    event["headers"]["traceparent"] = INCOMING[:-2] + "00"  # the caller did not sample
    calls = []

    @trace_handler
    def handler(event: Any, context: Any) -> str:
        with trace("child") as span:
            calls.append(span.is_recording())
        return "done"

    assert handler(event, lambda_context()) == "done"
    assert env.wait_for_end("req-1")[:3] == ["req-1", False, {}]
    assert env.kinds() == ["HELLO", "END"] and calls == [False]


def test_traced_twice_gives_one_invocation_span(env: SpanReader) -> None:
    @trace_handler
    def handler(event: Any, context: Any) -> str:
        return "once"

    assert is_traced(handler) and not is_traced(lambda event, context: None)
    twice = trace_handler(handler)
    assert twice({}, lambda_context()) == "once"
    env.wait_for_end("req-1")
    assert env.kinds().count("START") == 1 and env.kinds().count("END") == 1
    assert [span[wire.NAME] for span in env.spans()] == ["checkout"]


def test_async_handler(env: SpanReader) -> None:
    @trace_handler(name="async-checkout", attributes={"app.tier": "gold"})
    async def handler(event: Any, context: Any) -> dict[str, int]:
        @trace
        async def step() -> None:
            await asyncio.sleep(0.01)

        await asyncio.gather(step(), step())
        return {"items": 2}

    assert inspect.iscoroutinefunction(handler)
    assert asyncio.run(handler({}, lambda_context())) == {"items": 2}
    span = invocation_span(env, "req-1")
    assert span[wire.NAME] == "async-checkout" and span[wire.ATTRIBUTES]["app.tier"] == "gold"
    steps = [s for s in env.spans() if s[wire.NAME].endswith("step")]
    assert len(steps) == 2 and all(s[wire.PARENT_SPAN_ID] == span[wire.SPAN_ID] for s in steps)
    assert span[wire.END_NS] >= max(s[wire.END_NS] for s in steps)


def test_trace_helper_forms(env: SpanReader) -> None:
    @trace
    def plain() -> int:
        return 1

    @trace("named", attributes={"k": "v"})
    def named() -> int:
        return 2

    @trace_handler
    def handler(event: Any, context: Any) -> int:
        with trace("block") as span:
            span.set_attribute("inside", True)
            value = plain() + named()
        return value

    assert handler({}, lambda_context()) == 3
    invocation_span(env, "req-1")
    spans = env.spans_by_name()
    assert set(spans) == {"test_trace_helper_forms.<locals>.plain", "named", "block", "checkout"}
    assert spans["named"][wire.ATTRIBUTES] == {"k": "v"}
    assert spans["named"][wire.PARENT_SPAN_ID] == spans["block"][wire.SPAN_ID]


def test_keeps_the_signature_and_metadata(lambda_env: str) -> None:
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        """Handles orders."""
        return event

    traced = trace_handler(handler)
    assert traced.__name__ == "handler" and traced.__doc__ == "Handles orders."
    assert inspect.signature(traced) == inspect.signature(handler)
    assert traced.__wrapped__ is handler  # type: ignore[attr-defined]


def test_bad_arguments_raise_at_decoration(lambda_env: str) -> None:
    with pytest.raises(TypeError):
        trace_handler("not a function")  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        trace_handler(name=3)  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        trace(42)  # type: ignore[call-overload]


def test_sdk_disabled_leaves_the_handler_alone(lambda_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")

    def handler(event: Any, context: Any) -> None:
        return None

    assert trace_handler(handler) is handler


# --- a tracer failure never reaches the handler's caller --------------------------------------------------


@pytest.mark.tracer_may_fail
def test_tracer_failures_are_swallowed_into_a_log_line(
    env: SpanReader,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    swallowed: list[tuple[str, BaseException]],
) -> None:
    from tracer import _handler

    def broken(*args: Any) -> Any:
        raise RuntimeError("tracer bug")

    monkeypatch.setattr(_handler, "_describe", broken)
    result = object()
    failure = KeyError("user")

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        if event.get("fail"):
            raise failure
        return result

    with caplog.at_level(logging.WARNING, logger="afterglow"):
        assert handler({}, lambda_context("req-1")) is result
        with pytest.raises(KeyError) as raised:
            handler({"fail": True}, lambda_context("req-2"))
    assert raised.value is failure
    assert [what for what, _ in swallowed] == ["opening the invocation span"] * 2
    assert "opening the invocation span failed; the handler is not affected" in caplog.text


@pytest.mark.tracer_may_fail
def test_failure_while_closing_is_swallowed(
    env: SpanReader, monkeypatch: pytest.MonkeyPatch, swallowed: list[tuple[str, BaseException]]
) -> None:
    from tracer import _handler

    def broken(self: Any, result: Any) -> None:
        raise RuntimeError("tracer bug at the end")

    monkeypatch.setattr(_handler.Invocation, "_response", broken)

    @trace_handler
    def handler(event: Any, context: Any) -> Any:
        return {"statusCode": 200}

    assert handler(load("apigw_http_v2"), lambda_context()) == {"statusCode": 200}
    assert [what for what, _ in swallowed] == ["closing the invocation span"]
    env.wait_for_end("req-1")  # the span still ended and END still went out (the finally)


def test_a_provider_the_user_set_is_kept(lambda_env: str, caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_api.set_tracer_provider(provider)
    with caplog.at_level(logging.WARNING, logger="afterglow"):

        @trace_handler
        def handler(event: Any, context: Any) -> str:
            return "theirs"

    assert "keeping it" in caplog.text
    assert handler({}, lambda_context()) == "theirs"
    (span,) = exporter.get_finished_spans()
    assert span.name == "checkout" and span.attributes["faas.invocation_id"] == "req-1"
    provider.shutdown()


def test_module_level_tracers_made_before_the_decorator_reach_our_spans(env: SpanReader) -> None:
    early = trace_api.get_tracer("made-at-import")  # before any provider: the API's ProxyTracer

    @early.start_as_current_span("decorated-early")
    def helper() -> None:
        with early.start_as_current_span("inside"):
            pass

    @trace_handler
    def handler(event: Any, context: Any) -> None:
        helper()

    handler({}, lambda_context())
    root = invocation_span(env, "req-1")
    spans = env.spans_by_name()
    assert spans["decorated-early"][wire.PARENT_SPAN_ID] == root[wire.SPAN_ID]
    assert spans["inside"][wire.PARENT_SPAN_ID] == spans["decorated-early"][wire.SPAN_ID]
    assert spans["inside"][wire.SCOPE_NAME] == "made-at-import"
