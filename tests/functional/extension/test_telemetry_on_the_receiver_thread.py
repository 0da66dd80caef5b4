"""The Telemetry API listener served on the span receiver's thread (one thread fewer to freeze and thaw): deliveries
arrive, a delivery reads the function's spans first without waiting on another thread, stopping it leaves the
receiver running, and a receiver that stops for good says so to the listener. Real sockets and threads."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from extension.receiver import Receiver, bind_socket
from extension.telemetry import TelemetryListener
from tests.functional.extension.fake_platform import new_span_id, new_trace_id, span_record
from tracer import wire
from tracer.export import supervise
from tracer.export.assembler import Assembler
from tracer.export.buffer import SpanBuffer
from tracer.export.stats import Stats

WAIT_S = 10.0


class World:
    """A started receiver on a Unix socket, and a function connection to it."""

    def __init__(self, tmp_path: Path) -> None:
        self.stats = Stats()
        self.buffer = SpanBuffer(10_000, self.stats)
        self.path = str(tmp_path / "sock" / "spans.sock")
        self.receiver = Receiver(bind_socket(self.path), Assembler(self.buffer, self.stats), self.stats)
        self.receiver.start()
        self.client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.client.connect(self.path)
        self.client.sendall(wire.frame(wire.HELLO, {"tracer": "tests", "pid": 1, "resource": {"service.name": "s"}}))

    def send_spans(self, count: int) -> None:
        trace_id = new_trace_id()
        spans = [span_record(f"step-{i}", trace_id, new_span_id()) for i in range(count)]
        self.client.sendall(wire.frame(wire.SPANS, spans))

    def close(self) -> None:
        self.client.close()
        self.receiver.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    running = World(tmp_path)
    yield running
    running.close()


def post(port: int, events: list[dict[str, Any]]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        connection.request("POST", "/telemetry", body=json.dumps(events))
        return connection.getresponse().status
    finally:
        connection.close()


def wait_until(condition: Callable[[], bool]) -> bool:
    give_up = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.005)
    return True


def test_deliveries_arrive_on_the_receiver_thread_after_the_spans_written_before_them(world: World) -> None:
    held_when_heard: list[int] = []
    synced: list[bool] = []
    listener = TelemetryListener(lambda event: held_when_heard.append(world.buffer.held),
                                 before_batch=lambda: synced.append(world.receiver.sync()), host=world.receiver)
    try:
        listener.start()
        assert "afterglow-telemetry" not in [thread.name for thread in threading.enumerate()]
        world.send_spans(4)  # written before the delivery: read by the delivery's own sync, on the same thread
        assert post(listener.port, [{"type": "platform.start", "record": {"requestId": "r1"}},
                                    {"type": "function", "record": "a line"}]) == 200
        assert synced == [True]
        assert held_when_heard == [4, 4]
        assert post(listener.port, [{"type": "platform.runtimeDone", "record": {"requestId": "r1"}}]) == 200
        assert listener.received == 3
    finally:
        listener.stop()


def test_a_stopped_listener_refuses_deliveries_and_the_receiver_goes_on(world: World) -> None:
    listener = TelemetryListener(lambda event: None, host=world.receiver)
    listener.start()
    kept_open = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=WAIT_S)
    kept_open.request("POST", "/telemetry", body="[]")
    assert kept_open.getresponse().read() == b""  # a kept-alive connection, as Lambda's, open at the stop
    port = listener.port
    listener.stop()
    kept_open.close()
    with pytest.raises(ConnectionRefusedError):
        post(port, [])
    world.send_spans(3)
    assert world.receiver.sync() and world.buffer.held == 3


def test_a_receiver_that_stops_for_good_tells_its_hosted_listener(world: World,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "BACKOFF_S", 0.01)
    failures: list[bool] = []
    listener = TelemetryListener(lambda event: None, on_failure=lambda: failures.append(True), host=world.receiver)
    try:
        listener.start()
        selector = world.receiver._selector

        def broken(timeout: float | None = None) -> Any:
            raise OSError("selector broke for good")

        selector.select = broken  # type: ignore[method-assign]
        world.receiver.sync()  # the loop wakes, and every select from now on fails
        world.receiver._thread.join(WAIT_S)
        assert world.receiver.failed
        assert wait_until(lambda: listener.failed) and failures == [True]
        with pytest.raises(ConnectionRefusedError):
            post(listener.port, [])  # closed: Lambda's deliveries fail at once
    finally:
        listener.stop()


def test_without_a_running_receiver_the_listener_serves_on_its_own_thread(tmp_path: Path) -> None:
    stats = Stats()
    idle = Receiver(bind_socket(str(tmp_path / "sock" / "spans.sock")), Assembler(SpanBuffer(10, stats), stats), stats)
    received: list[dict[str, Any]] = []
    listener = TelemetryListener(received.append, host=idle)  # never started: it cannot host
    try:
        listener.start()
        assert post(listener.port, [{"type": "platform.start", "record": {"requestId": "r1"}}]) == 200
        assert [event["type"] for event in received] == ["platform.start"]
        assert listener._thread.is_alive()
    finally:
        listener.stop()
        idle.stop()
