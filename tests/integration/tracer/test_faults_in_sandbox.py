"""A handler that dies after its spans, in the local Lambda sandbox (awslambdaric, the real extension, a
loopback OTLP collector): a function that ends child spans and then runs past its timeout, crashes (``os._exit``
the instant after the last child, a SIGKILL from outside, a segfault) or raises, with nothing else happening
after the last child. Every span that ended arrives: the hand-off put it in memory the extension shares, which
the extension reads once the runtime is gone. Each test counts the spans created, exported and dropped.
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

CHILDREN = ["child-0", "child-1", "child-2"]

FUNCTION = """
import ctypes
import os
import time

from opentelemetry import trace

from tracer import trace_handler

tracer = trace.get_tracer("faults")


@trace_handler
def handler(event, context):
    for index in range(event.get("children", 3)):
        with tracer.start_as_current_span(f"child-{index}"):
            pass
    mode = event.get("mode")
    if mode == "timeout":
        time.sleep(30)  # a plain sleep past the timeout: no span starts or ends, no END
    elif mode == "crash":
        time.sleep(0.005)  # some work
        os._exit(3)
    elif mode == "crash-at-once":
        os._exit(3)
    elif mode == "segfault":
        ctypes.string_at(0)
    elif mode == "wait-to-be-killed":
        print("handler: children ended", flush=True)
        time.sleep(30)
    elif mode == "raise":
        raise ValueError("boom")
    elif mode == "outlive-the-extension":
        print("handler: working", flush=True)
        time.sleep(3)  # the extension is killed meanwhile
        for index in range(3):
            with tracer.start_as_current_span(f"after-{index}"):
                pass
    return {"ok": True}
"""


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    root = tmp_path / "function"
    root.mkdir()
    (root / "app.py").write_text(textwrap.dedent(FUNCTION))
    return root


@pytest.fixture
def open_box(task_root: Path, layer: Path, otlp_receiver: OtlpReceiver) -> Iterator[Any]:
    """``open_box(**env)``: a sandbox exporting to the test's collector; all are closed after the test."""
    boxes: list[Sandbox] = []

    def open_one(timeout: float = 10.0, **env: str) -> Sandbox:
        environment = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, **env}
        box = Sandbox(task_root, "app.handler", layers=[layer], env=environment, timeout=timeout)
        boxes.append(box)
        return box

    yield open_one
    for box in boxes:
        box.shutdown()


def _one_trace(spans: list[ReceivedSpan]) -> tuple[ReceivedSpan, list[str]]:
    (root,) = [span for span in spans if span.kind == 2]
    children = sorted(span.name for span in spans if span.parent_span_id == root.span_id)
    return root, children


def _self_reports(box: Sandbox) -> list[dict[str, int]]:
    """The extension's self-report lines (at SHUTDOWN, and whenever something was dropped), as numbers."""
    pattern = re.compile(r"spans received=(\d+) exported=(\d+) dropped=(\d+).* synthesized=(\d+)")
    reports = []
    for line in box.logs:
        match = pattern.search(line.text) if line.source == "extension" else None
        if match:
            received, exported, dropped, synthesized = map(int, match.groups())
            reports.append({"received": received, "exported": exported, "dropped": dropped,
                            "synthesized": synthesized})
    return reports


def test_three_children_then_sleeping_past_the_timeout(open_box: Any, otlp_receiver: OtlpReceiver) -> None:
    box = open_box(timeout=1.0)
    invocation = box.invoke({"mode": "timeout"})
    assert invocation.function_error == "Unhandled" and invocation.json()["errorType"] == "Sandbox.Timedout"
    spans = otlp_receiver.wait_for_spans(4, timeout=20)
    root, children = _one_trace(spans)
    assert root.status_code == 2 and root.attributes["faas.error"] == "timeout"
    assert root.attributes["faas.invocation_id"] == invocation.request_id
    assert children == CHILDREN
    box.shutdown()  # the extension's SHUTDOWN self-report closes the account
    assert len(otlp_receiver.spans) == 4
    # the children arrived from the function; the invocation span was made from START by the extension
    assert _self_reports(box)[-1] == {"received": 3, "exported": 4, "dropped": 0, "synthesized": 1}


def test_three_children_some_work_then_os_exit(open_box: Any, otlp_receiver: OtlpReceiver) -> None:
    box = open_box()
    invocation = box.invoke({"mode": "crash"})
    assert invocation.function_error == "Unhandled" and invocation.json()["errorType"] == "Runtime.ExitError"
    spans = otlp_receiver.wait_for_spans(4, timeout=20)
    root, children = _one_trace(spans)
    assert root.status_code == 2 and root.attributes["faas.error"] == "crash"
    assert children == CHILDREN
    box.shutdown()
    assert len(otlp_receiver.spans) == 4
    assert _self_reports(box)[-1] == {"received": 3, "exported": 4, "dropped": 0, "synthesized": 1}


@pytest.mark.parametrize("count", [1, 3, 7])
def test_os_exit_the_instant_after_the_last_child(open_box: Any, otlp_receiver: OtlpReceiver, count: int) -> None:
    box = open_box()
    invocation = box.invoke({"mode": "crash-at-once", "children": count})
    assert invocation.json()["errorType"] == "Runtime.ExitError"
    spans = otlp_receiver.wait_for_spans(count + 1, timeout=20)
    root, children = _one_trace(spans)
    assert root.status_code == 2 and root.attributes["faas.error"] == "crash"
    assert children == sorted(f"child-{index}" for index in range(count))
    box.shutdown()
    assert len(otlp_receiver.spans) == count + 1
    assert _self_reports(box)[-1] == {"received": count, "exported": count + 1, "dropped": 0, "synthesized": 1}


def test_sigkill_from_outside_after_the_children(open_box: Any, otlp_receiver: OtlpReceiver) -> None:
    box = open_box()
    in_flight = box.invoke_async({"mode": "wait-to-be-killed"})
    deadline = time.monotonic() + 20
    while not any("handler: children ended" in line.text for line in box.logs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert box.runtime_pid is not None
    os.kill(box.runtime_pid, signal.SIGKILL)
    invocation = in_flight.result(30)
    assert invocation.json()["errorType"] == "Runtime.ExitError"
    root, children = _one_trace(otlp_receiver.wait_for_spans(4, timeout=20))
    assert root.status_code == 2 and root.attributes["faas.error"] == "crash" and children == CHILDREN
    box.shutdown()
    assert _self_reports(box)[-1] == {"received": 3, "exported": 4, "dropped": 0, "synthesized": 1}


def test_a_segfault_after_the_children(open_box: Any, otlp_receiver: OtlpReceiver) -> None:
    box = open_box()
    invocation = box.invoke({"mode": "segfault"})
    assert invocation.function_error == "Unhandled" and invocation.json()["errorType"] == "Runtime.ExitError"
    root, children = _one_trace(otlp_receiver.wait_for_spans(4, timeout=20))
    assert root.status_code == 2 and root.attributes["faas.error"] == "crash" and children == CHILDREN
    box.shutdown()
    assert _self_reports(box)[-1] == {"received": 3, "exported": 4, "dropped": 0, "synthesized": 1}


def test_three_children_then_an_unhandled_exception(open_box: Any, otlp_receiver: OtlpReceiver) -> None:
    box = open_box()
    invocation = box.invoke({"mode": "raise"})
    assert invocation.json()["errorType"] == "ValueError"
    box.shutdown()  # the spans leave at the latest at SHUTDOWN, whose self-report closes the account
    spans = otlp_receiver.wait_for_spans(4, timeout=20)
    root, children = _one_trace(spans)
    assert root.status_code == 2 and children == CHILDREN
    exception = next(event for event in root.events if event[0] == "exception")
    assert exception[2]["exception.type"] == "ValueError" and exception[2]["exception.message"] == "boom"
    assert _self_reports(box)[-1] == {"received": 4, "exported": 4, "dropped": 0, "synthesized": 0}


def test_extension_killed_while_an_invocation_is_in_flight(open_box: Any, otlp_receiver: OtlpReceiver) -> None:
    box = open_box()
    assert box.invoke({}).json() == {"ok": True}
    in_flight = box.invoke_async({"mode": "outlive-the-extension"})
    deadline = time.monotonic() + 20
    while not any("handler: working" in line.text for line in box.logs) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(box.extension_pids["afterglow"], signal.SIGKILL)
    invocation = in_flight.result(30)
    # Lambda's rule, not ours: an extension that exits during an invoke fails that invoke and resets the
    # environment, runtime included (Lambda's documented Extension.Crash). The caller is answered at once.
    assert invocation.status == 200 and invocation.json()["errorType"] == "Extension.Crash"
    assert invocation.latency_ms < 3000  # a hang detector: a caller held until the handler's end waits 3 s
    function_output = [line.text for line in box.logs if line.source == "function"]
    assert not any("Traceback" in text or "afterglow" in text for text in function_output), function_output

    otlp_receiver.clear()
    after = box.invoke({})  # a new environment: it traces and exports as usual
    assert after.json() == {"ok": True}
    box.shutdown()
    root, children = _one_trace(otlp_receiver.wait_for_spans(4, timeout=20))
    assert root.attributes["faas.invocation_id"] == after.request_id and root.attributes["faas.coldstart"] is True
    assert children == CHILDREN
