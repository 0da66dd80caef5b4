"""The extension in the local Lambda sandbox, with awslambdaric and the real tracer: spans with their parents, a
slow collector kept from the caller, what a timeout, a crash or an error leaves behind, the waterfall."""

from __future__ import annotations

import time
from pathlib import Path

from sandbox import Sandbox
from tests.helpers.otlp_receiver import OtlpReceiver


def env_for(collector: OtlpReceiver, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, **extra}


def test_spans_reach_the_collector_with_their_parents(task_root: Path, dev_layer: Path,
                                                     otlp_receiver: OtlpReceiver) -> None:
    with Sandbox(task_root, "app.handler", layers=[dev_layer], env=env_for(otlp_receiver)) as box:
        for _ in range(3):
            invocation = box.invoke({"children": 9})
            assert invocation.status == 200 and invocation.json() == {"ok": True}
    spans = otlp_receiver.wait_for_spans(30)  # at the latest at SHUTDOWN
    roots = [span for span in spans if span.kind == 2]
    assert len(roots) == 3
    for root in roots:
        children = [span for span in spans if span.parent_span_id == root.span_id]
        assert sorted(child.name for child in children) == [f"step-{i}" for i in range(9)]
        assert all(child.trace_id == root.trace_id for child in children)


def test_a_slow_collector_never_reaches_the_caller(task_root: Path, dev_layer: Path) -> None:
    with OtlpReceiver(delay_s=1.0) as collector:
        with Sandbox(task_root, "app.handler", layers=[dev_layer], env=env_for(collector)) as box:
            box.invoke({})  # cold start; the exporter loads in the background
            latencies = [box.invoke({}).latency_ms for _ in range(3)]
            # a caller that waited on the collector even once would have waited over 1000 ms
            assert max(latencies) < 1000
            collector.delay_s = 0.0  # let the rest drain quickly at SHUTDOWN
        ids = collector.span_ids()
        assert len(ids) == 16 and len(set(ids)) == 16  # everything arrived, once


def test_a_timed_out_invocation_still_exports_its_span_marked_timeout_with_its_children(
        task_root: Path, dev_layer: Path, otlp_receiver: OtlpReceiver) -> None:
    with Sandbox(task_root, "app.handler", layers=[dev_layer], env=env_for(otlp_receiver), timeout=1.0) as box:
        invocation = box.invoke({"mode": "timeout"})
        assert invocation.function_error
        spans = otlp_receiver.wait_for_spans(5, timeout=20)
    (root,) = [span for span in spans if span.kind == 2]
    assert root.status_code == 2 and root.attributes["faas.error"] == "timeout"
    assert sorted(span.name for span in spans if span is not root) == ["in-progress", "step-0", "step-1", "step-2"]
    # the span the handler was in when it timed out: from the open-span table, ending with the invocation span
    (open_one,) = [span for span in spans if span.name == "in-progress"]
    assert open_one.attributes["afterglow.span.unended"] is True and open_one.status_code == 2
    assert open_one.parent_span_id == root.span_id and open_one.end_ns == root.end_ns
    assert "timed out" in open_one.status_message


def test_a_crashed_invocation_still_exports_its_span_marked_crash_with_its_children(
        task_root: Path, dev_layer: Path, otlp_receiver: OtlpReceiver) -> None:
    with Sandbox(task_root, "app.handler", layers=[dev_layer], env=env_for(otlp_receiver)) as box:
        invocation = box.invoke({"mode": "crash"})
        assert invocation.function_error
        spans = otlp_receiver.wait_for_spans(5, timeout=20)
        after = box.invoke({})  # the next environment works
        assert after.status == 200 and after.json() == {"ok": True}
    (root,) = [span for span in spans if span.kind == 2 and span.attributes.get("faas.error")]
    assert root.status_code == 2 and root.attributes["faas.error"] == "crash"
    assert sorted(span.name for span in spans if span.trace_id == root.trace_id and span is not root) == [
        "in-progress", "step-0", "step-1", "step-2"]
    (open_one,) = [span for span in spans if span.name == "in-progress"]
    assert open_one.attributes["afterglow.span.unended"] is True and open_one.parent_span_id == root.span_id


def test_an_unhandled_exception_is_exported_as_an_error_with_its_exception(
        task_root: Path, dev_layer: Path, otlp_receiver: OtlpReceiver) -> None:
    with Sandbox(task_root, "app.handler", layers=[dev_layer], env=env_for(otlp_receiver)) as box:
        invocation = box.invoke({"mode": "raise"})
        assert invocation.function_error
    spans = otlp_receiver.wait_for_spans(4, timeout=20)
    (root,) = [span for span in spans if span.kind == 2]
    assert root.status_code == 2
    assert any(event[0] == "exception" and event[2].get("exception.type") == "ValueError" for event in root.events)


def test_the_waterfall_shows_in_the_logs_without_an_endpoint(task_root: Path, dev_layer: Path) -> None:
    with Sandbox(task_root, "app.handler", layers=[dev_layer]) as box:
        box.invoke({"children": 2})
        deadline = time.monotonic() + 10
        while not any("└─ step-1" in line.text for line in box.logs) and time.monotonic() < deadline:
            time.sleep(0.05)
    lines = [line.text for line in box.logs if line.source == "extension"]
    assert any("service " in line and "3 spans" in line for line in lines)
    assert any("└─ step-1" in line for line in lines)
    assert any("spans received=3 exported=3 dropped=0" in line for line in lines)
