"""The Telemetry API listener's one thread: every connection is served, kept-alive and pipelined requests
included, and a connection that stops halfway holds up nobody else for long."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from extension.telemetry import TelemetryListener

WAIT_S = 10.0


@pytest.fixture
def listener() -> Iterator[tuple[TelemetryListener, list[dict[str, Any]], threading.Event]]:
    received: list[dict[str, Any]] = []
    arrived = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        received.append(event)
        arrived.set()

    listener = TelemetryListener(on_event, bind_host="127.0.0.1")
    listener.start()
    try:
        yield listener, received, arrived
    finally:
        listener.stop()


def request(events: list[dict[str, Any]], keep_alive: bool = True) -> bytes:
    body = json.dumps(events).encode()
    head = (f"POST /telemetry HTTP/1.1\r\nHost: sandbox.localdomain\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{'' if keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n")
    return head.encode() + body


def answers(sock: socket.socket, count: int) -> list[bytes]:
    """The status lines of ``count`` answers (each has an empty body)."""
    data = b""
    while data.count(b"\r\n\r\n") < count:
        chunk = sock.recv(65536)
        assert chunk, "the listener closed the connection"
        data += chunk
    return [part.split(b"\r\n", 1)[0] for part in data.split(b"\r\n\r\n")[:count]]


def test_requests_on_two_connections_and_pipelined_ones_are_all_answered_in_order(
        listener: tuple[TelemetryListener, list[dict[str, Any]], threading.Event]) -> None:
    server, received, _ = listener
    first = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
    second = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
    try:
        first.sendall(request([{"type": "function", "record": "one"}]))
        assert answers(first, 1) == [b"HTTP/1.1 200 OK"]
        # the first connection stays open and idle while the second sends two requests in one write
        second.sendall(request([{"type": "function", "record": "two"}])
                       + request([{"type": "function", "record": "three"}, {"type": "function", "record": "four"}]))
        assert answers(second, 2) == [b"HTTP/1.1 200 OK"] * 2
        first.sendall(request([{"type": "function", "record": "five"}], keep_alive=False))
        assert answers(first, 1) == [b"HTTP/1.1 200 OK"]
        assert first.recv(1) == b""  # Connection: close is honoured
    finally:
        first.close()
        second.close()
    assert [event["record"] for event in received] == ["one", "two", "three", "four", "five"]
    assert server.received == 5


def test_a_connection_that_closes_halfway_through_a_request_loses_only_that_request(
        listener: tuple[TelemetryListener, list[dict[str, Any]], threading.Event]) -> None:
    server, received, arrived = listener
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as broken:
        broken.sendall(request([{"type": "function", "record": "lost"}])[:-5])
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as good:
        good.sendall(request([{"type": "function", "record": "kept"}]))
        assert answers(good, 1) == [b"HTTP/1.1 200 OK"]
    assert arrived.wait(WAIT_S)
    assert [event["record"] for event in received] == ["kept"]


def test_the_listener_runs_on_one_thread_however_many_connections(
        listener: tuple[TelemetryListener, list[dict[str, Any]], threading.Event]) -> None:
    server, _, _ = listener
    sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) for _ in range(3)]
    try:
        for sock in sockets:
            sock.sendall(request([{"type": "function", "record": "x"}]))
            assert answers(sock, 1) == [b"HTTP/1.1 200 OK"]
        names = [thread.name for thread in threading.enumerate() if thread.name.startswith("afterglow-telemetry")]
        assert names == ["afterglow-telemetry"]
    finally:
        for sock in sockets:
            sock.close()
