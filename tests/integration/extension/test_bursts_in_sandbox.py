"""Bursts and size, in the sandbox with awslambdaric, the real tracer and the real extension:
10,000 spans in one invocation, 1 MB attribute values, and a flood against a dead collector."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox
from tests.helpers.otlp_receiver import OtlpReceiver, refusing_endpoint
from tests.integration.extension.conftest import function_root

pytestmark = pytest.mark.slow

FUNCTION = """
from opentelemetry import trace

from tracer import trace_handler

tracer = trace.get_tracer("bursts")
MEGABYTE = "x" * (1024 * 1024)


@trace_handler
def handler(event, context):
    for index in range(event["spans"]):
        with tracer.start_as_current_span("step") as span:
            span.set_attribute("index", index)
            if index < event.get("big", 0):
                span.set_attribute("payload", MEGABYTE)
            if event.get("filler"):
                span.set_attribute("filler", event["filler"])
    return {"made": event["spans"]}
"""


@pytest.fixture
def bursts_root(tmp_path: Path) -> Path:
    return function_root(tmp_path, FUNCTION)


@pytest.fixture
def dead_endpoint() -> Iterator[str]:
    """A collector endpoint that refuses every connection (its port held by the test, never listened on)."""
    with refusing_endpoint() as endpoint:
        yield endpoint


def _vm_hwm_mb(pid: int) -> float:
    """The process's peak resident memory so far: what it reached between two samples counts too. It includes the
    pages of the function's ring the extension has touched (shared with the function, paid once by Lambda): the
    goal is held with them counted."""
    return _status_mb(pid, "VmHWM")


def _status_mb(pid: int, field: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024  # type: ignore[union-attr]


def test_ten_thousand_spans_and_megabyte_values_arrive_whole_and_truncated(
    bursts_root: Path, dev_layer: Path, otlp_receiver: OtlpReceiver
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_FLUSH_BUDGET_MS": "10000"}
    with Sandbox(bursts_root, "app.handler", layers=[dev_layer], env=env, timeout=60) as box:
        invocation = box.invoke({"spans": 10_000, "big": 3})
        assert invocation.json() == {"made": 10_000}
    spans = otlp_receiver.wait_for_spans(10_001, timeout=60)
    assert len({span.span_id for span in spans}) == 10_001  # nothing lost, nothing twice
    payloads = [span.attributes["payload"] for span in spans if "payload" in span.attributes]
    assert len(payloads) == 3
    assert {len(value) for value in payloads} == {8192}  # OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT's default


def test_a_custom_value_limit_is_honoured(bursts_root: Path, dev_layer: Path, otlp_receiver: OtlpReceiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100"}
    with Sandbox(bursts_root, "app.handler", layers=[dev_layer], env=env) as box:
        box.invoke({"spans": 2, "big": 1})
    spans = otlp_receiver.wait_for_spans(3, timeout=20)
    (payload,) = [span.attributes["payload"] for span in spans if "payload" in span.attributes]
    assert payload == "x" * 100


def test_a_flood_against_a_dead_collector_keeps_the_extension_bounded(
    bursts_root: Path, dev_layer: Path, dead_endpoint: str
) -> None:
    """100,000 spans of ~1 KB while nothing accepts them: the extension keeps at most its bound, drops the
    oldest and says so, and every span is either received or counted by the function; its memory stays bounded
    (keeping them all would take well over 100 MB)."""
    filler = "f" * 1000
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": dead_endpoint, "AFTERGLOW_MAX_BUFFERED_SPANS": "5000",
           "AFTERGLOW_FLUSH_BUDGET_MS": "50"}
    with Sandbox(bursts_root, "app.handler", layers=[dev_layer], env=env, timeout=60) as box:
        box.invoke({"spans": 10, "filler": filler})  # warm: the exporter is loaded, the breaker learns
        for _ in range(20):
            assert box.invoke({"spans": 5_000, "filler": filler}).json() == {"made": 5_000}
        peak_mb = _vm_hwm_mb(box.extension_pids["afterglow"])
    report = "\n".join(line.text for line in box.logs if "spans received=" in line.text)
    last = report.splitlines()[-1]
    # the self-report written at SHUTDOWN (what the buffer still held is counted there), not one written on the way
    assert "shutdown=" in last, report
    received = int(re.findall(r"spans received=(\d+)", last)[0])
    dropped = sum(int(count) for count in re.findall(r"(?<![.\w])buffer_full=(\d+)", last))
    # what the function could not hand over (a reader slower than this flood) is counted on its side
    function_dropped = sum(int(count) for count in re.findall(r"function\.\w+=(\d+)", last))
    assert received + function_dropped == 10 + 20 * 5_001 + 1, report
    assert dropped >= received - 5_000 - 1_000  # at most the bound is kept (give or take a batch in flight)
    # The byte bound (AFTERGLOW_MAX_BUFFERED_BYTES) holds the buffer, the ring is read a step at a time. Measured
    # here, the peak is 29 to 40 MB (the 4 MiB buffer, ring steps being decoded, a request of up to 2 MiB being
    # encoded), under 40 in most runs but not all: the bound asserted leaves room for that spread, and is still far
    # below what keeping the flood would take.
    assert peak_mb < 48, (peak_mb, report)


def test_an_invocation_that_outruns_the_extension_loses_only_what_is_counted(
    bursts_root: Path, dev_layer: Path, otlp_receiver: OtlpReceiver
) -> None:
    """3,000 spans of 8 KB (24 MB) in one invocation, through 8 MiB of shared memory: the extension reads at high
    water while the handler goes on; whatever did not fit is counted, and every span is either exported or in
    that count."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_FLUSH_BUDGET_MS": "20000"}
    filler = "f" * 8000
    with Sandbox(bursts_root, "app.handler", layers=[dev_layer], env=env, timeout=60) as box:
        assert box.invoke({"spans": 3_000, "filler": filler}).json() == {"made": 3_000}
        box.shutdown()
    report = [line.text for line in box.logs if "spans received=" in line.text][-1]
    received = int(re.findall(r"spans received=(\d+)", report)[0])
    counted = sum(int(count) for count in re.findall(r"function\.buffer_full=(\d+)", report))
    assert received + counted == 3_001, report  # the children and the invocation span
    # 24 MB of spans: what the extension's own byte bound (AFTERGLOW_MAX_BUFFERED_BYTES) dropped is counted too
    extension_dropped = sum(int(count) for count in re.findall(r"(?<![.\w])buffer_full=(\d+)", report))
    assert len({span.span_id for span in otlp_receiver.spans}) + extension_dropped == received, report
    assert "malformed_frames=0" in report



def test_megabyte_values_against_a_dead_collector_keep_the_extension_under_40_mb(
    bursts_root: Path, dev_layer: Path, dead_endpoint: str
) -> None:
    """10,000 spans with 1 MB values (8 KB each after the value limit) while nothing accepts them: 80 MB if all
    were kept, well within the span count bound; the byte bound (AFTERGLOW_MAX_BUFFERED_BYTES, default) keeps the
    extension's resident memory under 40 MB and counts what it drops."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": dead_endpoint}
    with Sandbox(bursts_root, "app.handler", layers=[dev_layer], env=env, timeout=60) as box:
        for _ in range(10):
            assert box.invoke({"spans": 1_000, "big": 1_000}).json() == {"made": 1_000}
        peak_mb = _vm_hwm_mb(box.extension_pids["afterglow"])
    report = "\n".join(line.text for line in box.logs if "spans received=" in line.text)
    last = report.splitlines()[-1]
    assert "shutdown=" in last, report  # the self-report written at SHUTDOWN
    assert int(re.search(r"(?<![.\w])buffer_full=(\d+)", last).group(1)) > 0, report  # type: ignore[union-attr]
    assert peak_mb < 40, (peak_mb, report)
