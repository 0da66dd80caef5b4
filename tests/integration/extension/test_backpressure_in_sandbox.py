"""Back-pressure, in the sandbox with awslambdaric, the real tracer and the real extension (background export):
big invocations back to back lose nothing while the collector answers; with the collector down the function never
waits and the losses are counted; an extension that stopped reading makes the function wait once, within the bound.

The handler returns how often the function waited for the extension after a response (``Handoff.holds``) and how
often such a wait ran out with nothing read: counts, not times."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox
from tests.helpers.otlp_receiver import OtlpReceiver, refusing_endpoint
from tests.integration.extension.conftest import function_root

pytestmark = pytest.mark.slow

FUNCTION = """
from opentelemetry import trace

from tracer import _runtime, trace_handler

tracer = trace.get_tracer("backpressure")


@trace_handler
def handler(event, context):
    for index in range(event["spans"]):
        with tracer.start_as_current_span("step") as span:
            span.set_attribute("index", index)
            span.set_attribute("filler", event.get("filler", ""))
    handoff = _runtime.current().handoff
    return {"made": event["spans"], "holds": handoff.holds, "stalls": handoff.stalls}
"""

FILLER = "f" * 400  # about 0.5 KB a span: 1,000 spans fill a quarter of the 8 MiB ring in four invocations
BURSTS = 30


@pytest.fixture
def backpressure_root(tmp_path: Path) -> Path:
    return function_root(tmp_path, FUNCTION)


@pytest.fixture
def slow_receiver() -> Iterator[OtlpReceiver]:
    """A collector that answers every request 20 ms late: the extension exports slower than the function makes."""
    receiver = OtlpReceiver(delay_s=0.02).start()
    try:
        yield receiver
    finally:
        receiver.stop(hold_port=False)


def _last_report(box: Sandbox) -> str:
    return [line.text for line in box.logs if "spans received=" in line.text][-1]


def _count(report: str, pattern: str) -> int:
    return sum(int(count) for count in re.findall(pattern, report))


@pytest.mark.parametrize("policy", ["background", "periodic,1000"])
def test_big_invocations_back_to_back_lose_nothing(
    backpressure_root: Path, dev_layer: Path, slow_receiver: OtlpReceiver, policy: str
) -> None:
    """30 invocations of 1,000 spans back to back through a buffer of 2,000 spans and a collector slower than the
    function: without back-pressure most of them are dropped (``buffer_full``); with it, every one arrives. In the
    background the function waits for the extension; periodic export holds the environment itself."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": slow_receiver.endpoint, "AFTERGLOW_MAX_BUFFERED_SPANS": "2000",
           "AFTERGLOW_FLUSH_BUDGET_MS": "2000", "AFTERGLOW_FLUSH": policy}
    with Sandbox(backpressure_root, "app.handler", layers=[dev_layer], env=env, timeout=30) as box:
        answers = [box.invoke({"spans": 1_000, "filler": FILLER}).json() for _ in range(BURSTS)]
        last = box.invoke({"spans": 0}).json()
        box.shutdown()
    assert all(answer["made"] == 1_000 for answer in answers)
    made = BURSTS * 1_001 + 1
    spans = slow_receiver.wait_for_spans(made, timeout=60)
    report = _last_report(box)
    assert len({span.span_id for span in spans}) == made, report  # nothing lost, nothing twice
    assert "dropped=0" in report, report
    if policy == "background":
        assert last["holds"] > 0, report  # the function did wait for the extension: that is what kept them
    else:
        assert last["holds"] == 0, report  # the extension held the environment, the function never waited


def test_with_the_collector_down_nothing_waits_and_the_losses_are_counted(
    backpressure_root: Path, dev_layer: Path
) -> None:
    """The same bursts against a collector that refuses every connection: holding cannot help, so the extension
    drops the oldest and counts them, and the function never waits for it until the bound."""
    with refusing_endpoint() as endpoint:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "AFTERGLOW_MAX_BUFFERED_SPANS": "2000"}
        with Sandbox(backpressure_root, "app.handler", layers=[dev_layer], env=env, timeout=30) as box:
            for _ in range(BURSTS):
                box.invoke({"spans": 1_000, "filler": FILLER})
            last = box.invoke({"spans": 0}).json()
            box.shutdown()
    report = _last_report(box)
    assert last["stalls"] == 0, (last, report)  # no wait ran to its bound
    received = int(re.findall(r"spans received=(\d+)", report)[0])
    function_dropped = _count(report, r"function\.\w+=(\d+)")
    assert received + function_dropped == BURSTS * 1_001 + 1, report  # every span received or counted
    assert _count(report, r"(?<![.\w])buffer_full=(\d+)") > 0, report  # the extension dropped, and said so


def test_an_extension_that_stopped_reading_makes_the_function_wait_once(
    backpressure_root: Path, dev_layer: Path, otlp_receiver: OtlpReceiver
) -> None:
    """The extension stops (SIGSTOP) with the collector up: the function, behind by more than its mark, waits once
    until the bound, finds nothing read, and from then on does not wait (its ring fills, and what does not fit is
    counted). Continued, the extension reads what the ring kept."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_LOG_LEVEL": "DEBUG"}
    with Sandbox(backpressure_root, "app.handler", layers=[dev_layer], env=env, timeout=30) as box:
        warm = 0
        for _ in range(50):  # until the extension has met the function (HELLO: the ring and its hold bound)
            box.invoke({"spans": 10})
            warm += 1
            if any("function process" in line.text and "connected" in line.text for line in box.logs):
                break
        else:
            pytest.fail("the extension never took the function's HELLO")
        pid = box.extension_pids["afterglow"]
        os.kill(pid, signal.SIGSTOP)
        try:
            answers = [box.invoke({"spans": 1_000, "filler": FILLER}).json() for _ in range(BURSTS)]
            last = box.invoke({"spans": 0}).json()
        finally:
            os.kill(pid, signal.SIGCONT)
        box.shutdown()
    assert all(answer["made"] == 1_000 for answer in answers)
    assert last["stalls"] == 1, last  # one wait ran out with nothing read ...
    assert last["holds"] == 1, last  # ... and it was the only wait
    report = _last_report(box)
    received = int(re.findall(r"spans received=(\d+)", report)[0])
    function_dropped = _count(report, r"function\.buffer_full=(\d+)")
    assert function_dropped > 0, report  # the ring filled while nobody read it
    assert received + function_dropped == warm * 11 + BURSTS * 1_001 + 1, report
