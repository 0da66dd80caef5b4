"""The listener the Telemetry API posts platform events to.

Lambda delivers only to ``sandbox.localdomain`` (the environment's own address, not necessarily loopback), so the
listener binds the address that name resolves to, on a free port: never every interface, which would open it to
whatever else shares the network. Where the name does not resolve (outside Lambda), loopback.

Each POST body is a JSON array of ``{time, type, record}``; records whose ``type`` starts with one of the
subscribed types reach ``on_event``. The listener only parses and dispatches, in the order delivered: what an
event means is the caller's business (``platform.runtimeDone`` for the assembler; function lines and platform
reports for ``logs``).

One thread accepts and serves every connection (a selector): Lambda posts one batch at a time over a kept-alive
connection, and each thread waiting in a frozen environment costs it CPU at every freeze and thaw. That thread is
the span receiver's when there is one (``host``): the listener then has no thread of its own, and its deliveries
read the function's rings without waking another thread. A request that has begun must arrive whole within
``_REQUEST_TIMEOUT_S``; other connections (and the span socket, when hosted) wait meanwhile: Lambda sends each
delivery whole.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
from collections.abc import Callable

from tracer.export.diagnostics import log
from tracer.export.http11 import HttpError, read_request, response_bytes
from tracer.export.supervise import supervised

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Host(Protocol):  # ``extension.receiver.Receiver``
        def host(self, sock: socket.socket, on_readable: Callable[[], None],
                 on_failure: Callable[[], None] | None = None) -> bool: ...

        def unhost(self, sock: socket.socket) -> None: ...


DESTINATION_HOST = "sandbox.localdomain"
LOOPBACK = "127.0.0.1"
_MAX_BODY = 4 * 1024 * 1024  # the platform batches at most 1 MiB per POST
_READ_SIZE = 256 * 1024
_REQUEST_TIMEOUT_S = 30.0  # a request begun must arrive in full within this (the others wait meanwhile)


def listen_address(host: str = DESTINATION_HOST) -> str:
    """The IPv4 address ``host`` resolves to (loopback in the sandbox, the environment's own in Lambda), else
    loopback; never the wildcard address."""
    try:
        address = socket.gethostbyname(host)
    except OSError as error:
        log.debug("%s does not resolve (%s): the telemetry listener binds 127.0.0.1", host, error)
        return LOOPBACK
    if address == "0.0.0.0":
        log.debug("%s resolves to 0.0.0.0: the telemetry listener binds 127.0.0.1 instead", host)
        return LOOPBACK
    return address


class _Connection:
    """One connection of the platform's: the socket and what was read from it but not parsed yet (``readline`` and
    ``read``, as ``read_request`` asks; reads block, bounded by the socket's timeout)."""

    __slots__ = ("buffer", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(_READ_SIZE)
        self.buffer += data
        return bool(data)

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self.buffer.find(b"\n") + 1
            if end or 0 <= limit <= len(self.buffer) or not self._fill():
                if not end:
                    end = len(self.buffer) if limit < 0 else min(limit, len(self.buffer))
                elif limit >= 0:
                    end = min(end, limit)
                line = bytes(self.buffer[:end])
                del self.buffer[:end]
                return line

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self.buffer) < size) and self._fill():
            pass
        end = len(self.buffer) if size < 0 else min(size, len(self.buffer))
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data


class TelemetryListener:
    def __init__(self, on_event: Callable[[dict[str, Any]], None], bind_host: str | None = None,
                 on_failure: Callable[[], None] | None = None, before_batch: Callable[[], None] | None = None,
                 host: Host | None = None) -> None:
        """``on_failure``: called once, from the listener's thread, when it stopped for good. ``before_batch``:
        called before the events of each delivery are handed on. ``host``: serve the sockets on its thread rather
        than on one of our own (when it can)."""
        self._host = host
        self._hosted = False
        self._connections: list[_Connection] = []  # hosted: the platform's open connections
        self._on_event = on_event
        self._before_batch = before_batch
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.bind_host = bind_host or listen_address()
        self._server.bind((self.bind_host, 0))
        self._server.listen(8)
        self.port: int = self._server.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()  # stop() wakes the thread through it
        self.received = 0
        self._stopping = False
        self._on_failure = on_failure
        self.failed = False  # the listener failed for good: nothing more is received
        # One thread for every connection: each thread waiting in a frozen environment costs 10-15 us of CPU per
        # freeze and thaw (a thread per connection and one accepting were two of them).
        self._thread = threading.Thread(target=supervised("Telemetry API listener", self._serve_loop,
                                                          self._give_up, lambda: self._stopping),
                                        name="afterglow-telemetry", daemon=True)

    @property
    def uri(self) -> str:
        return f"http://{DESTINATION_HOST}:{self.port}/telemetry"

    def start(self) -> None:
        if self._host is not None:
            self._server.setblocking(False)  # an accept that finds nothing must not hold the receiver's thread
            if self._host.host(self._server, self._accept_hosted, self._give_up):
                self._hosted = True
                return
            self._server.setblocking(True)
        self._thread.start()

    def _accept_hosted(self) -> None:
        try:
            conn, _ = self._server.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._give_up_hosted()
            return
        conn.settimeout(_REQUEST_TIMEOUT_S)
        connection = _Connection(conn)
        assert self._host is not None
        if self._host.host(conn, lambda: self._serve_hosted(connection)):
            self._connections.append(connection)
        else:
            conn.close()

    def _serve_hosted(self, connection: _Connection) -> None:
        if not self._serve(connection):
            assert self._host is not None
            self._host.unhost(connection.sock)
            with contextlib.suppress(ValueError):
                self._connections.remove(connection)
            connection.sock.close()

    def _give_up_hosted(self) -> None:
        if not self._stopping and not self.failed:
            self._give_up()

    def stop(self) -> None:
        if self._hosted:
            self._stopping = True
            assert self._host is not None
            for connection in list(self._connections):
                self._host.unhost(connection.sock)
                connection.sock.close()
            self._connections.clear()
            self._host.unhost(self._server)
            self._server.close()
            self._wake_r.close()
            self._wake_w.close()
            return
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        if self._thread.ident is not None:  # started
            self._thread.join(2.0)
        if not self._thread.is_alive():
            self._wake_r.close()
            self._wake_w.close()

    def _give_up(self) -> None:
        self.failed = True
        with contextlib.suppress(OSError):
            self._server.close()  # Lambda's deliveries fail at once instead of waiting on a listener nobody serves
        log.error("the Telemetry API listener stopped for good: the function's log lines and Lambda's platform "
                  "reports are no longer received in this environment (the platform counts what it cannot deliver); "
                  "invocations are followed by bounded waits instead")
        if self._on_failure is not None:
            self._on_failure()

    def _serve_loop(self) -> None:
        selector = selectors.DefaultSelector()
        connections: list[_Connection] = []
        try:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if self._stopping:
                        return
                    if key.fileobj is self._server:
                        try:
                            conn, _ = self._server.accept()
                        except OSError:
                            return
                        conn.settimeout(_REQUEST_TIMEOUT_S)
                        connection = _Connection(conn)
                        connections.append(connection)
                        selector.register(conn, selectors.EVENT_READ, connection)
                    elif isinstance(key.data, _Connection) and not self._serve(key.data):
                        selector.unregister(key.data.sock)
                        connections.remove(key.data)
                        key.data.sock.close()
        finally:
            for connection in connections:
                connection.sock.close()
            selector.close()

    def _serve(self, connection: _Connection) -> bool:
        """Answer the requests that came on ``connection`` (all that are in); False when it is to be closed."""
        while True:
            try:
                request = read_request(connection, _MAX_BODY)  # type: ignore[arg-type]  # readline and read
            except (HttpError, OSError) as error:
                log.debug("telemetry connection dropped: %s", error)
                return False
            if request is None:
                return False
            status, reason = (200, "OK") if request.method == "POST" else (405, "Method Not Allowed")
            if request.method == "POST":
                self._dispatch(request.body)
            try:
                connection.sock.sendall(response_bytes(status, reason))
            except OSError:
                return False
            if not request.keep_alive or self._stopping:
                return False
            if not connection.buffer:  # the next request, when it comes: wait for it with the others
                return True

    def _dispatch(self, body: bytes) -> None:
        try:
            events = json.loads(body)
        except ValueError:
            log.warning("ignoring a telemetry batch that is not JSON")
            return
        if not isinstance(events, list):
            log.warning("ignoring a telemetry batch that is not a JSON array")
            return
        if self._before_batch is not None:
            try:
                self._before_batch()
            except Exception:  # the events are handled all the same
                log.exception("preparing for a telemetry batch failed (recovered)")
        for event in events:
            if isinstance(event, dict) and isinstance(event.get("type"), str):
                self.received += 1
                try:
                    self._on_event(event)
                except Exception:  # a bad record must not stop the listener
                    log.exception("telemetry event handler failed (recovered)")
