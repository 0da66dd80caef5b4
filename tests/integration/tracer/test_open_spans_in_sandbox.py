"""Spans still open when the function's process dies, in the local Lambda sandbox (awslambdaric, the real extension,
a loopback OTLP collector): a handler ends one child, opens ``process_order`` and inside it ``db.query``, and dies
there (``os._exit``, or a SIGKILL from outside). The two open spans arrive with their names, kinds, ids and parents
(the tree intact under the invocation span), status ERROR and ``afterglow.span.unended``, ending when the invocation
span does; the ended child arrives as before; nothing arrives twice; a normal invocation has no unended span.
"""

from __future__ import annotations

import os
import re
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox
from tests.helpers.otlp_receiver import OtlpReceiver, ReceivedSpan

UNENDED = "afterglow.span.unended"

FUNCTION = """
import os
import time

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tracer import trace_handler

tracer = trace.get_tracer("orders")


@trace_handler
def handler(event, context):
    with tracer.start_as_current_span("validate"):
        pass
    with tracer.start_as_current_span("process_order", attributes={"order.id": "o-1"}):
        with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT):
            mode = event.get("mode")
            if mode == "exit":
                os._exit(3)
            if mode == "wait-to-be-killed":
                print("handler: inside the query", flush=True)
                time.sleep(30)
    return {"ok": True}
"""


@pytest.fixture
def box(tmp_path: Path, layer: Path, otlp_receiver: OtlpReceiver) -> Iterator[Sandbox]:
    task_root = tmp_path / "function"
    task_root.mkdir()
    (task_root / "app.py").write_text(textwrap.dedent(FUNCTION))
    environment = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint}
    sandbox = Sandbox(task_root, "app.handler", layers=[layer], env=environment, timeout=10.0)
    try:
        yield sandbox
    finally:
        sandbox.shutdown()


def _synthesized(box: Sandbox) -> int:
    """``synthesized`` of the extension's last self-report line (spans it made: invocation spans, unended ones)."""
    counts = [int(match.group(1)) for line in box.logs if line.source == "extension"
              for match in [re.search(r"synthesized=(\d+)", line.text)] if match]
    return counts[-1]


def _check_the_stack_at_death(spans: list[ReceivedSpan], request_id: str) -> None:
    assert len({span.span_id for span in spans}) == len(spans) == 4, [span.name for span in spans]
    by_name = {span.name: span for span in spans}
    root = next(span for span in spans if span.kind == 2)
    assert root.attributes["faas.invocation_id"] == request_id and root.attributes["faas.error"] == "crash"
    validate, order, query = by_name["validate"], by_name["process_order"], by_name["db.query"]
    assert {span.trace_id for span in spans} == {root.trace_id}
    # ended before the death: as before, not marked
    assert validate.parent_span_id == root.span_id and UNENDED not in validate.attributes
    assert validate.status_code == 0
    # open at the death: the tree intact, their real names and kinds, status ERROR, marked
    assert order.parent_span_id == root.span_id and query.parent_span_id == order.span_id
    assert order.kind == 1 and query.kind == 3
    for span in (order, query):
        assert span.attributes[UNENDED] is True
        assert span.status_code == 2 and "before the span ended" in span.status_message
        assert span.end_ns == root.end_ns  # ended where the invocation span was
    assert root.start_ns <= validate.start_ns <= validate.end_ns <= order.start_ns <= query.start_ns <= query.end_ns


def test_os_exit_inside_nested_spans(box: Sandbox, otlp_receiver: OtlpReceiver) -> None:
    invocation = box.invoke({"mode": "exit"})
    assert invocation.json()["errorType"] == "Runtime.ExitError"
    spans = otlp_receiver.wait_for_spans(4, timeout=20)
    box.shutdown()  # the self-report at SHUTDOWN closes the account
    _check_the_stack_at_death(otlp_receiver.spans, invocation.request_id)
    assert len(spans) <= len(otlp_receiver.spans) == 4
    assert _synthesized(box) == 3  # the invocation span from START, the two open spans from the table


def test_sigkill_from_outside_inside_nested_spans(box: Sandbox, otlp_receiver: OtlpReceiver) -> None:
    in_flight = box.invoke_async({"mode": "wait-to-be-killed"})
    deadline = time.monotonic() + 20
    while not any("handler: inside the query" in line.text for line in box.logs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert box.runtime_pid is not None
    os.kill(box.runtime_pid, signal.SIGKILL)
    invocation = in_flight.result(30)
    assert invocation.json()["errorType"] == "Runtime.ExitError"
    otlp_receiver.wait_for_spans(4, timeout=20)
    box.shutdown()
    _check_the_stack_at_death(otlp_receiver.spans, invocation.request_id)
    assert _synthesized(box) == 3


def test_normal_invocations_have_no_unended_span(box: Sandbox, otlp_receiver: OtlpReceiver) -> None:
    first, second = box.invoke({}), box.invoke({})
    assert first.json() == second.json() == {"ok": True}
    box.shutdown()
    spans = otlp_receiver.wait_for_spans(8, timeout=20)
    assert len(spans) == 8 and not any(UNENDED in span.attributes for span in spans)
    assert all(span.status_code == 0 for span in spans)
    assert _synthesized(box) == 0


def test_a_crash_after_a_normal_invocation_reports_only_its_own_open_spans(
    box: Sandbox, otlp_receiver: OtlpReceiver
) -> None:
    """Slots are given back and reused: the first invocation's spans, all ended, never come back as unended."""
    assert box.invoke({}).json() == {"ok": True}
    crashed = box.invoke({"mode": "exit"})
    otlp_receiver.wait_for_spans(8, timeout=20)
    box.shutdown()
    spans: list[Any] = otlp_receiver.spans
    assert len(spans) == 8 and len({span.span_id for span in spans}) == 8
    unended = [span for span in spans if UNENDED in span.attributes]
    assert sorted(span.name for span in unended) == ["db.query", "process_order"]
    assert {span.trace_id for span in unended} == {
        span.trace_id for span in spans if span.attributes.get("faas.invocation_id") == crashed.request_id}


def test_turned_off_a_crash_exports_what_ended_and_the_invocation_span_only(
    tmp_path: Path, layer: Path, otlp_receiver: OtlpReceiver
) -> None:
    task_root = tmp_path / "function"
    task_root.mkdir()
    (task_root / "app.py").write_text(textwrap.dedent(FUNCTION))
    environment = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_OPEN_SPANS": "false"}
    with Sandbox(task_root, "app.handler", layers=[layer], env=environment, timeout=10.0) as box:
        invocation = box.invoke({"mode": "exit"})
        assert invocation.json()["errorType"] == "Runtime.ExitError"
        otlp_receiver.wait_for_spans(2, timeout=20)
        box.shutdown()
    assert sorted(span.name for span in otlp_receiver.spans) == sorted(
        [next(span.name for span in otlp_receiver.spans if span.kind == 2), "validate"])
    assert not any(UNENDED in span.attributes for span in otlp_receiver.spans)
    assert _synthesized(box) == 1  # the invocation span from START; the open ones are not known
