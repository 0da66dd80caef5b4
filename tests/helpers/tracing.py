"""Test helpers for the function side: a real Unix-socket span reader, Lambda contexts, fresh global state."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from awslambdaric.lambda_context import LambdaContext
from opentelemetry import trace as trace_api

from tracer import wire

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:checkout"


def lambda_context(
    request_id: str = "req-1", arn: str = ARN, deadline_ms: int | None = None, client_context: Any = None
) -> LambdaContext:
    """awslambdaric's own context object, built as its bootstrap builds it (env vars must be set)."""
    deadline = deadline_ms if deadline_ms is not None else int(time.time() * 1000) + 30_000
    return LambdaContext(request_id, client_context, None, deadline, arn)


LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "checkout",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/checkout",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/26/[$LATEST]abcdef",
    "AWS_REGION": "eu-west-1",
}


def reset_tracing() -> None:
    """Forget every piece of process-wide tracing state (OpenTelemetry's global provider included)."""
    from tracer import _decorator, _handler, _profile, _runtime, _safe, config

    _runtime.reset_for_tests()
    trace_api._TRACER_PROVIDER = None
    trace_api._TRACER_PROVIDER_SET_ONCE._done = False
    _handler._cold_start = True
    _profile._enabled = None
    _decorator._cached = None
    _safe._warned.clear()
    config._warned.clear()


class SpanReader:
    """The extension's end of the socket, reduced to reading: accepts connections, decodes every frame.

    Each connection is read as the extension reads it (``extension.ring.FunctionStream``): socket frames, and the
    frames of the function's ring at END, at DRAIN and when the connection closes. ``drain()`` also reads every
    ring up to what was written (the extension's ``sync``). ``stall()`` stops reading (the kernel buffer fills,
    the ring is not read); ``resume()`` reads on (a DRAIN that came meanwhile is read then). ``restart()`` drops
    every connection and the listening socket, then listens again at the same path.
    """

    def __init__(self, path: str, polled: bool = False, hold_ms: int = 0) -> None:
        self.path = path
        self.polled = polled  # as the extension in the background: rings are read at ``drain``, END may be there
        self.hold_ms = hold_ms  # the bound stored in each ring: how long its function may wait for us (back-pressure)
        self.frames: list[tuple[int, Any]] = []
        self.errors: list[wire.WireError] = []
        self.connections = 0
        self._lock = threading.Condition()
        self._reading = threading.Event()
        self._reading.set()
        self._stop = False
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._receive_buffer: int | None = None
        self._drain_requested = threading.Event()
        self._drained = threading.Event()

    def start(self, receive_buffer: int | None = None) -> SpanReader:
        self._receive_buffer = receive_buffer
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(8)
        self._listener = listener
        self._stop = False
        self._thread = threading.Thread(target=self._serve, name="span-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        self._reading.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if os.path.exists(self.path):
            os.unlink(self.path)

    def restart(self) -> None:
        self.stop()
        self.start(self._receive_buffer)

    def stall(self) -> None:
        self._reading.clear()

    def resume(self) -> None:
        self._reading.set()

    def drain(self, timeout: float = 5.0) -> None:
        """Read every ring up to what its function has written (as the extension does before a verdict)."""
        self._drained.clear()
        self._drain_requested.set()
        assert self._drained.wait(timeout), "the reader thread did not drain"

    def _serve(self) -> None:
        from extension.ring import FunctionStream

        assert self._listener is not None
        listener = self._listener
        listener.setblocking(False)
        connections: dict[socket.socket, FunctionStream] = {}
        try:
            while not self._stop:
                readable = [listener, *connections] if self._reading.is_set() else [listener]
                ready, _, _ = select.select(readable, [], [], 0.02)
                for sock in ready:
                    if sock is listener:
                        self._accept(listener, connections)
                    elif self._reading.is_set():
                        self._read(sock, connections)
                if self._drain_requested.is_set() and self._reading.is_set():
                    # as the extension's sync: what is in the sockets first, then every ring
                    self._drain_requested.clear()
                    self._accept(listener, connections)
                    for sock in list(connections):
                        while self._read(sock, connections):
                            pass
                    for stream in connections.values():
                        self._record(stream.drain())
                    self._drained.set()
        finally:
            for connection, stream in connections.items():
                connection.close()
                stream.close()

    def _accept(self, listener: socket.socket, connections: dict[socket.socket, Any]) -> None:
        from extension.ring import FunctionStream

        while True:
            try:
                connection, _ = listener.accept()
            except BlockingIOError:
                return
            connection.setblocking(False)
            if self._receive_buffer:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._receive_buffer)
            connections[connection] = FunctionStream(self.polled)
            connections[connection].hold(self.hold_ms)
            with self._lock:
                self.connections += 1

    def _read(self, sock: socket.socket, connections: dict[socket.socket, Any]) -> bool:
        """One read; False when nothing more is there now (or the connection closed)."""
        from extension.receiver import received_descriptors

        try:
            data, ancillary, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return False
        stream = connections[sock]
        if not data:
            del connections[sock]
            sock.close()
            self._record(stream.drain())
            stream.close()
            return False
        self._record(stream.receive(data, received_descriptors(ancillary)))
        return True

    def _record(self, items: Iterable[Any]) -> None:
        with self._lock:
            for item in items:
                if isinstance(item, wire.WireError):
                    self.errors.append(item)
                else:
                    self.frames.append(item)
            self._lock.notify_all()

    # --- reading what arrived -------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[list[tuple[int, Any]]], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.frames):
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [wire.KINDS[kind] for kind, _ in self.frames]
                    raise AssertionError(f"timed out waiting for frames; got {kinds}, errors {self.errors}")
                self._lock.wait(left)

    def wait_for_end(self, request_id: str, timeout: float = 5.0) -> list[Any]:
        """Wait for END(request_id); returns its payload."""
        self.wait_for(lambda frames: any(k == wire.END and p[0] == request_id for k, p in frames), timeout)
        return next(p for k, p in self.snapshot() if k == wire.END and p[0] == request_id)

    def snapshot(self) -> list[tuple[int, Any]]:
        with self._lock:
            return list(self.frames)

    def kinds(self) -> list[str]:
        return [wire.KINDS[kind] for kind, _ in self.snapshot()]

    def spans(self) -> list[list[Any]]:
        """Every finished span record received, in arrival order."""
        return [span for kind, payload in self.snapshot() if kind == wire.SPANS for span in payload]

    def spans_by_name(self) -> dict[str, list[Any]]:
        return {span[wire.NAME]: span for span in self.spans()}


@contextmanager
def span_reader(path: str, receive_buffer: int | None = None, polled: bool = False,
                hold_ms: int = 0) -> Iterator[SpanReader]:
    reader = SpanReader(path, polled, hold_ms).start(receive_buffer)
    try:
        yield reader
    finally:
        reader.stop()
