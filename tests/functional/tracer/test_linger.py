"""The coalescing batch never waits for company much longer than the window, whatever the handler does next.

A decorated handler runs in a thread and stops in the middle (a plain wait, as ``time.sleep`` before a
timeout or a crash); the real socket reader must already hold every span that ended before the stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace as trace_api

from tests.helpers.tracing import SpanReader, lambda_context
from tracer import _runtime, trace_handler, wire


class Paused:
    """A decorated handler in its own thread: ends ``children`` spans, then waits until released."""

    def __init__(self, children: int = 3) -> None:
        self.release = threading.Event()
        self.done = threading.Event()
        self.result: Any = None
        tracer = trace_api.get_tracer("app")

        @trace_handler
        def handler(event: Any, context: Any) -> dict[str, bool]:
            for index in range(children):
                with tracer.start_as_current_span(f"child-{index}"):
                    pass
            self.release.wait(30)  # the handler "sleeps": no span starts or ends, no END
            return {"ok": True}

        self.handler = handler

    def start(self, request_id: str) -> Paused:
        def run() -> None:
            self.result = self.handler({}, lambda_context(request_id))
            self.done.set()

        self.thread = threading.Thread(target=run)
        self.thread.start()
        return self

    def finish(self) -> None:
        self.release.set()
        self.thread.join(30)


@pytest.fixture
def paused(lambda_env: str, reader: SpanReader) -> Iterator[Paused]:
    made = Paused()
    yield made
    made.release.set()


def _child_names(reader: SpanReader) -> list[str]:
    return [span[wire.NAME] for span in reader.spans() if span[wire.NAME].startswith("child")]


def test_three_children_then_a_plain_sleep_all_arrive_before_end(paused: Paused, reader: SpanReader) -> None:
    paused.start("req-1")
    reader.wait_for(lambda frames: len(_child_names(reader)) == 3)
    assert _child_names(reader) == ["child-0", "child-1", "child-2"]
    assert "END" not in reader.kinds() and not paused.done.is_set()  # the handler is still asleep
    handoff = _runtime.current().handoff  # type: ignore[union-attr]
    assert handoff.writes <= 3  # HELLO+START, then the children as one or two batches: still coalesced
    paused.finish()
    assert reader.wait_for_end("req-1") == ["req-1", True, {}]
    assert paused.result == {"ok": True}
    assert len(reader.spans()) == 4  # the children were sent once, the invocation span with END


def test_the_sender_stays_one_thread_across_invocations(paused: Paused, reader: SpanReader) -> None:
    paused.release.set()
    for number in range(20):
        paused.handler({}, lambda_context(f"req-{number}"))
    reader.wait_for_end("req-19")
    senders = [thread for thread in threading.enumerate() if thread.name == "afterglow-handoff"]
    assert len(senders) == 1 and senders[0].daemon
    assert len(reader.spans()) == 20 * 4


def test_window_zero_from_the_environment_sends_each_span_as_it_ends(
    lambda_env: str, reader: SpanReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFTERGLOW_HANDOFF_WINDOW_US", "0")
    paused = Paused().start("req-1")
    try:
        reader.wait_for(lambda frames: len(_child_names(reader)) == 3)
        assert _runtime.current().handoff.window_ns == 0  # type: ignore[union-attr]
        assert reader.kinds() == ["HELLO", "START", "SPANS", "SPANS", "SPANS"]
    finally:
        paused.finish()
    reader.wait_for_end("req-1")


def test_a_bad_window_warns_once_and_keeps_the_default(
    lambda_env: str, reader: SpanReader, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AFTERGLOW_HANDOFF_WINDOW_US", "-5")
    with caplog.at_level(logging.WARNING):
        paused = Paused().start("req-1")
        paused.finish()
    reader.wait_for_end("req-1")
    assert _runtime.current().handoff.window_ns == 1_000_000  # type: ignore[union-attr]
    assert caplog.text.count("AFTERGLOW_HANDOFF_WINDOW_US") == 1


READER_PROCESS = """
import os, socket, sys
path = sys.argv[1]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(8)
print("ready", flush=True)
connection, _ = listener.accept()
while connection.recv(1 << 16):
    pass
"""


@pytest.fixture
def extension_process(lambda_env: str) -> Iterator[Any]:
    """A stand-in for the extension's end of the socket in its own process, so that it can be SIGKILLed."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", READER_PROCESS, lambda_env], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield process
    finally:
        process.kill()
        process.wait(10)


def test_extension_killed_mid_invocation_the_handler_is_unaffected_and_the_loss_is_logged(
    lambda_env: str, extension_process: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.helpers.tracing import span_reader

    tracer = trace_api.get_tracer("app")
    killed = threading.Event()

    @trace_handler
    def handler(event: Any, context: Any) -> dict[str, int]:
        if event.get("kill"):
            killed.wait(30)  # the extension dies while the handler works: START may or may not have left before
            for index in range(5):
                with tracer.start_as_current_span(f"after-{index}"):
                    pass
        else:
            with tracer.start_as_current_span("work"):
                pass
        return {"spans": 6}

    assert handler({}, lambda_context("req-1")) == {"spans": 6}
    outcome: list[Any] = []

    def in_flight() -> None:
        try:
            outcome.append(handler({"kill": True}, lambda_context("req-2")))
        except BaseException as error:  # the assertion below shows it
            outcome.append(error)

    thread = threading.Thread(target=in_flight)
    with caplog.at_level(logging.WARNING, logger="afterglow"):
        thread.start()
        extension_process.kill()
        extension_process.wait(10)
        killed.set()
        thread.join(30)
        assert not thread.is_alive(), "the handler blocked on a dead extension"  # a hang detector, not a timing goal
    assert outcome == [{"spans": 6}]  # the handler's own result, no exception
    lines = [record.getMessage() for record in caplog.records if record.name == "afterglow"]
    assert len(lines) == 1, lines
    assert "6 spans of invocation req-2 were not handed over (disconnected=6)" in lines[0]

    with span_reader(lambda_env) as reader:  # an extension listens again: the next invocation reconnects
        assert handler({}, lambda_context("req-3")) == {"spans": 6}
        end = reader.wait_for_end("req-3")
    assert end == ["req-3", True, {"disconnected": 6}]  # the counts reach the extension with the next END
    assert reader.kinds()[:2] == ["HELLO", "START"] and len(reader.spans()) == 2


def _cpu_ticks(thread: threading.Thread) -> int:
    """utime + stime of one thread of this process, in clock ticks (Linux /proc)."""
    with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_the_sender_sleeps_when_there_is_nothing_to_send(paused: Paused, reader: SpanReader) -> None:
    import time

    from tracer._handoff import _IDLE

    paused.release.set()
    for number in range(50):
        paused.handler({}, lambda_context(f"req-{number}"))
    reader.wait_for_end("req-49")
    handoff = _runtime.current().handoff  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while handoff._sender_wait != _IDLE and time.monotonic() < deadline:  # a hang detector, not a timing goal
        time.sleep(0.01)
    assert handoff._sender_wait == _IDLE
    sender = next(thread for thread in threading.enumerate() if thread.name == "afterglow-handoff")
    before = _cpu_ticks(sender)
    time.sleep(0.3)  # a thread that polled or spun would use most of this
    assert _cpu_ticks(sender) == before


def test_a_short_invocation_writes_once_with_its_end(
    lambda_env: str, reader: SpanReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFTERGLOW_HANDOFF_WINDOW_US", "2000000")  # "short" must not depend on this machine's load

    @trace_handler
    def handler(event: Any, context: Any) -> str:
        return "ok"

    handler({}, lambda_context("req-0"))  # connects (HELLO)
    reader.wait_for_end("req-0")
    handoff = _runtime.current().handoff  # type: ignore[union-attr]
    before = handoff.writes
    for number in range(1, 5):
        handler({}, lambda_context(f"req-{number}"))  # shorter than the window: START waits for END
    reader.wait_for_end("req-4")
    assert handoff.writes - before == 4  # one write per invocation, none while the handler ran
    assert len(reader.spans()) == 5
    assert reader.kinds().count("START") == 5


def test_start_leaves_within_the_window_while_the_handler_still_runs(lambda_env: str, reader: SpanReader) -> None:
    seen_during: list[list[str]] = []

    @trace_handler
    def handler(event: Any, context: Any) -> str:
        deadline = time.monotonic() + 10
        while "START" not in reader.kinds() and time.monotonic() < deadline:  # a hang detector only
            time.sleep(0.005)
        seen_during.append(reader.kinds())
        return "ok"

    handler({}, lambda_context("req-1"))
    reader.wait_for_end("req-1")
    assert "START" in seen_during[0] and "END" not in seen_during[0]  # a crash now would still leave START
