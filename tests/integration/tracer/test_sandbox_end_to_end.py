"""A decorated handler in the local Lambda sandbox (awslambdaric as the runtime) with the real afterglow
extension, exporting to a loopback OTLP collector: what the collector receives is what a user would see.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

HANDLER = """
import time

from opentelemetry import trace

from tracer import trace_handler

tracer = trace.get_tracer("app")


@trace_handler
def handler(event, context):
    with tracer.start_as_current_span("load") as load:
        load.set_attribute("order.id", event.get("order", "none"))
        for step in range(8):
            with tracer.start_as_current_span(f"step-{step}"):
                pass
    if event.get("fail"):
        raise ValueError("order rejected")
    return {"statusCode": 200, "body": "ok"}
"""


@pytest.fixture
def box(tmp_path: Path, layer: Path, otlp_receiver: Any) -> Iterator[Sandbox]:
    task_root = tmp_path / "function"
    task_root.mkdir()
    (task_root / "app.py").write_text(textwrap.dedent(HANDLER))
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AWS_REGION": "eu-west-1"}
    with Sandbox(task_root, "app.handler", layers=[layer], env=env, timeout=10, function_name="orders") as sandbox:
        yield sandbox


def _hex(number: str | bytes) -> str:
    return number if isinstance(number, str) else number.hex()


def test_ten_spans_with_their_parents_and_attributes(box: Sandbox, otlp_receiver: Any) -> None:
    invocation = box.invoke({"order": "o-1"})
    assert invocation.json() == {"statusCode": 200, "body": "ok"}
    box.shutdown()  # the spans leave at the latest at SHUTDOWN
    spans = otlp_receiver.wait_for_spans(10)
    assert len(spans) == 10
    by_name = {span.name: span for span in spans}
    root = by_name["orders"]
    assert root.kind == 2 and root.parent_span_id in (None, "")  # SERVER; a new trace
    assert root.attributes["faas.invocation_id"] == invocation.request_id
    assert root.attributes["faas.coldstart"] is True and root.attributes["faas.trigger"] == "other"
    assert root.attributes["cloud.resource_id"].endswith(":function:orders")
    assert by_name["load"].parent_span_id == root.span_id and by_name["load"].attributes["order.id"] == "o-1"
    assert all(by_name[f"step-{n}"].parent_span_id == by_name["load"].span_id for n in range(8))
    assert len({span.trace_id for span in spans}) == 1
    resource = root.resource
    assert resource["service.name"] == "orders" and resource["cloud.region"] == "eu-west-1"
    assert resource["faas.max_memory"] == 128 * 1024 * 1024 and resource["cloud.platform"] == "aws_lambda"


def test_trace_continues_from_an_incoming_traceparent_and_errors_are_recorded(
    box: Sandbox, otlp_receiver: Any
) -> None:
    event = {
        "version": "2.0",
        "routeKey": "POST /orders",
        "rawPath": "/orders",
        "headers": {"traceparent": INCOMING},
        "requestContext": {"http": {"method": "POST", "path": "/orders"}, "routeKey": "POST /orders"},
        "fail": True,
    }
    invocation = box.invoke(event)
    assert invocation.function_error == "Unhandled" and invocation.json()["errorType"] == "ValueError"
    box.shutdown()
    spans = otlp_receiver.wait_for_spans(10)
    root = next(span for span in spans if span.name == "POST /orders")
    assert _hex(root.trace_id) == INCOMING.split("-")[1] and _hex(root.parent_span_id) == INCOMING.split("-")[2]
    assert root.status_code == 2 and root.events[0][0] == "exception"
    assert root.events[0][2]["exception.type"] == "ValueError"


def test_many_invocations_lose_and_duplicate_nothing(box: Sandbox, otlp_receiver: Any) -> None:
    count = 40
    request_ids = [box.invoke({"order": f"o-{n}"}).request_id for n in range(count)]
    box.shutdown()  # after SHUTDOWN nothing more can arrive: what is here is all there will be
    spans = otlp_receiver.wait_for_spans(10 * count, timeout=30)
    assert len(otlp_receiver.spans) == 10 * count
    assert len({span.span_id for span in otlp_receiver.spans}) == 10 * count
    roots = [span for span in spans if span.name == "orders"]
    assert sorted(span.attributes["faas.invocation_id"] for span in roots) == sorted(request_ids)
    assert [span.attributes["faas.coldstart"] for span in roots].count(True) == 1
