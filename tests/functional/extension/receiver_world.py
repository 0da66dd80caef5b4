"""What the receiver's thread tests share: a receiver on a real Unix socket with a function connection to it, a
Telemetry API delivery posted over real HTTP, and a bounded wait for a condition."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from extension.receiver import Receiver, bind_socket
from tests.functional.extension.fake_platform import new_span_id, new_trace_id, span_record
from tracer import wire
from tracer.export.assembler import Assembler
from tracer.export.buffer import SpanBuffer
from tracer.export.stats import Stats

WAIT_S = 10.0


class ReceiverWorld:
    """A receiver (not started) on a Unix socket under ``tmp_path``; ``connect`` plays a function process."""

    def __init__(self, tmp_path: Path) -> None:
        self.stats = Stats()
        self.buffer = SpanBuffer(10_000, self.stats)
        self.path = str(tmp_path / "sock" / "spans.sock")
        self.receiver = Receiver(bind_socket(self.path), Assembler(self.buffer, self.stats), self.stats)
        self.trace_id = new_trace_id()
        self.client: socket.socket | None = None

    def connect(self) -> socket.socket:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(self.path)
        client.sendall(wire.frame(wire.HELLO, {"tracer": "tests", "pid": 1, "resource": {"service.name": "svc"}}))
        self.client = client
        return client

    def send_spans(self, count: int) -> None:
        assert self.client is not None
        spans = [span_record(f"step-{i}", self.trace_id, new_span_id()) for i in range(count)]
        self.client.sendall(wire.frame(wire.SPANS, spans))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.receiver.stop()


def post_telemetry(port: int, events: list[dict[str, Any]]) -> int:
    """POST one Telemetry API delivery to a listener on loopback, as Lambda does; the answer's status."""
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
