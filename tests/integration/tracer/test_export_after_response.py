"""Spans reach the collector only after the runtime has posted the response, in the sandbox with
awslambdaric and the real extension: END waits for awslambdaric's post, so the export never competes with it."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox import Sandbox

REPO = Path(__file__).resolve().parents[3]

# A big response: awslambdaric spends tens of milliseconds serialising and posting it after the handler
# returned. An END sent from inside the handler would have the spans exported during that time.
FUNCTION = """
from opentelemetry import trace

from tracer import trace_handler

tracer = trace.get_tracer("orders")


@trace_handler
def handler(event, context):
    for index in range(10):
        with tracer.start_as_current_span(f"step-{index}"):
            pass
    if event.get("fail"):
        raise ValueError("after ten spans")
    return {"rows": [{"id": index, "name": "x" * 40} for index in range(40_000)]}
"""


def _layer(tmp_path: Path) -> Path:
    root = tmp_path / "layer"
    (root / "extensions").mkdir(parents=True)
    shutil.copy2(REPO / "afterglow" / "layer_files" / "extensions" / "afterglow", root / "extensions" / "afterglow")
    return root


def _response_posted_at(box: Sandbox, request_id: str) -> float:
    """When the runtime's response reached the platform: runtimeDone's `responseDuration` span starts then."""
    for event in box.events:
        record = event["record"]
        if event["type"] == "platform.runtimeDone" and record["requestId"] == request_id:
            (span,) = [span for span in record["spans"] if span["name"] == "responseDuration"]
            return datetime.fromisoformat(span["start"].replace("Z", "+00:00")).timestamp()
    raise AssertionError(f"no platform.runtimeDone for {request_id}")


def test_spans_reach_the_collector_only_after_the_response(tmp_path: Path, otlp_receiver: Any) -> None:
    task_root = tmp_path / "task"
    task_root.mkdir()
    (task_root / "app.py").write_text(FUNCTION)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint}
    with Sandbox(task_root, "app.handler", layers=[_layer(tmp_path)], env=env, timeout=30) as box:
        invocations = [box.invoke({}), box.invoke({}), box.invoke({"fail": True})]
        for invocation in invocations:
            invocation.report()
    spans = otlp_receiver.wait_for_spans(33, timeout=30)
    posted = {invocation.request_id: _response_posted_at(box, invocation.request_id) for invocation in invocations}

    assert [len(invocation.json().get("rows", [])) for invocation in invocations] == [40_000, 40_000, 0]
    assert invocations[2].function_error == "Unhandled"
    roots = {span.trace_id: span for span in spans if span.parent_span_id in (None, b"", "")}
    assert len(roots) == 3
    for root in roots.values():
        request_id = root.attributes["faas.invocation_id"]
        first_arrival = min(span.arrived_at for span in spans if span.trace_id == root.trace_id)
        # the platform's timestamp has millisecond precision
        assert first_arrival >= posted[request_id] - 0.001, (request_id, first_arrival - posted[request_id])
