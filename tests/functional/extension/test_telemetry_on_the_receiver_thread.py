"""The Telemetry API listener served on the span receiver's thread (one thread fewer to freeze and thaw): deliveries
arrive, a delivery reads the function's spans first without waiting on another thread, stopping it leaves the
receiver running, and a receiver that stops for good says so to the listener. Real sockets and threads."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extension.receiver import Receiver, bind_socket
from extension.telemetry import TelemetryListener
from tests.functional.extension.receiver_world import WAIT_S, ReceiverWorld, post_telemetry, wait_until
from tracer.export import supervise
from tracer.export.assembler import Assembler
from tracer.export.buffer import SpanBuffer
from tracer.export.stats import Stats


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ReceiverWorld]:
    """A started receiver with a function connected to it."""
    running = ReceiverWorld(tmp_path)
    running.receiver.start()
    running.connect()
    yield running
    running.close()


def test_deliveries_arrive_on_the_receiver_thread_after_the_spans_written_before_them(world: ReceiverWorld) -> None:
    held_when_heard: list[int] = []
    synced: list[bool] = []
    listener = TelemetryListener(lambda event: held_when_heard.append(world.buffer.held),
                                 before_batch=lambda: synced.append(world.receiver.sync()), host=world.receiver)
    try:
        listener.start()
        assert "afterglow-telemetry" not in [thread.name for thread in threading.enumerate()]
        world.send_spans(4)  # written before the delivery: read by the delivery's own sync, on the same thread
        assert post_telemetry(listener.port, [{"type": "platform.start", "record": {"requestId": "r1"}},
                                    {"type": "function", "record": "a line"}]) == 200
        assert synced == [True]
        assert held_when_heard == [4, 4]
        assert post_telemetry(listener.port, [{"type": "platform.runtimeDone", "record": {"requestId": "r1"}}]) == 200
        assert listener.received == 3
    finally:
        listener.stop()


def test_a_stopped_listener_refuses_deliveries_and_the_receiver_goes_on(world: ReceiverWorld) -> None:
    listener = TelemetryListener(lambda event: None, host=world.receiver)
    listener.start()
    kept_open = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=WAIT_S)
    kept_open.request("POST", "/telemetry", body="[]")
    assert kept_open.getresponse().read() == b""  # a kept-alive connection, as Lambda's, open at the stop
    port = listener.port
    listener.stop()
    kept_open.close()
    with pytest.raises(ConnectionRefusedError):
        post_telemetry(port, [])
    world.send_spans(3)
    assert world.receiver.sync() and world.buffer.held == 3


def test_a_receiver_that_stops_for_good_tells_its_hosted_listener(world: ReceiverWorld,
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
            post_telemetry(listener.port, [])  # closed: Lambda's deliveries fail at once
    finally:
        listener.stop()


def test_without_a_running_receiver_the_listener_serves_on_its_own_thread(tmp_path: Path) -> None:
    stats = Stats()
    idle = Receiver(bind_socket(str(tmp_path / "sock" / "spans.sock")), Assembler(SpanBuffer(10, stats), stats), stats)
    received: list[dict[str, Any]] = []
    listener = TelemetryListener(received.append, host=idle)  # never started: it cannot host
    try:
        listener.start()
        assert post_telemetry(listener.port, [{"type": "platform.start", "record": {"requestId": "r1"}}]) == 200
        assert [event["type"] for event in received] == ["platform.start"]
        assert listener._thread.is_alive()
    finally:
        listener.stop()
        idle.stop()
