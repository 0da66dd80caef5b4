"""Whatever the handler does next (sleeps past its timeout, is killed), the spans that ended are handed over.

A decorated handler runs in a thread and stops in the middle (a plain wait, as ``time.sleep`` before a
timeout or a crash); the real reader, reading the ring as the extension does before it declares an invocation
dead, must already find every span that ended before the stop, with no thread of ours having run.
"""

from __future__ import annotations

import logging
import os
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
    deadline = time.monotonic() + 10
    while len(_child_names(reader)) < 3 and time.monotonic() < deadline:  # a hang detector, not a timing goal
        reader.drain()
    assert _child_names(reader) == ["child-0", "child-1", "child-2"]
    assert "END" not in reader.kinds() and not paused.done.is_set()  # the handler is still asleep
    handoff = _runtime.current().handoff  # type: ignore[union-attr]
    assert handoff.writes == 1  # HELLO: the spans went into the ring, no write, nothing woken
    paused.finish()
    assert reader.wait_for_end("req-1")[:3] == ["req-1", True, {}]
    assert paused.result == {"ok": True}
    assert len(reader.spans()) == 4  # the children were read once, the invocation span with END


def test_the_hand_off_runs_no_thread(paused: Paused, reader: SpanReader) -> None:
    before = {thread.ident for thread in threading.enumerate()}
    paused.release.set()
    for number in range(20):
        paused.handler({}, lambda_context(f"req-{number}"))
    reader.wait_for_end("req-19")
    started = [thread.name for thread in threading.enumerate() if thread.ident not in before]
    assert [name for name in started if name.startswith("afterglow")] == []
    assert len(reader.spans()) == 20 * 4


READER_PROCESS = """
import socket, sys
from extension.receiver import received_descriptors
from extension.ring import FunctionStream
path = sys.argv[1]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(8)
print("ready", flush=True)
connection, _ = listener.accept()
stream = FunctionStream()
while True:
    data, ancillary, _, _ = connection.recvmsg(1 << 16, socket.CMSG_SPACE(16))
    if not data:
        break
    for item in stream.receive(data, received_descriptors(ancillary)):
        if item[0] == 4:  # END: the ring has been read up to it
            print("end", item[1][0], flush=True)
"""


@pytest.fixture
def extension_process(lambda_env: str) -> Iterator[Any]:
    """A stand-in for the extension's end of the socket in its own process, so that it can be SIGKILLed."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    process = subprocess.Popen([sys.executable, "-c", READER_PROCESS, lambda_env], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(root)})
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
    assert extension_process.stdout.readline().strip() == "end req-1"  # it read req-1's spans
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
    assert end[:3] == ["req-3", True, {"disconnected": 6}]  # the counts reach the extension with the next END
    assert reader.kinds()[:2] == ["HELLO", "START"] and len(reader.spans()) == 2


def test_a_short_invocation_writes_once_with_its_end(lambda_env: str, reader: SpanReader) -> None:
    @trace_handler
    def handler(event: Any, context: Any) -> str:
        return "ok"

    handler({}, lambda_context("req-0"))  # connects (HELLO)
    reader.wait_for_end("req-0")
    handoff = _runtime.current().handoff  # type: ignore[union-attr]
    before = handoff.writes
    for number in range(1, 5):
        handler({}, lambda_context(f"req-{number}"))
    reader.wait_for_end("req-4")
    assert handoff.writes - before == 4  # one write per invocation (END), none while the handler ran
    assert len(reader.spans()) == 5
    assert reader.kinds().count("START") == 5


def test_start_is_handed_over_while_the_handler_still_runs(lambda_env: str, reader: SpanReader) -> None:
    seen_during: list[list[str]] = []

    @trace_handler
    def handler(event: Any, context: Any) -> str:
        reader.drain()  # as the extension reads the ring when it must decide whether the invocation died
        seen_during.append(reader.kinds())
        return "ok"

    handler({}, lambda_context("req-1"))
    reader.wait_for_end("req-1")
    assert "START" in seen_during[0] and "END" not in seen_during[0]  # a crash now would still leave START
