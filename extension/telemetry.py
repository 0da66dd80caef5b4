"""The listener the Telemetry API posts platform events to.

Lambda delivers only to ``sandbox.localdomain`` (the environment's own address, not necessarily loopback), so the
listener binds the address that name resolves to, on a free port: never every interface, which would open it to
whatever else shares the network. Where the name does not resolve (outside Lambda), loopback.

Each POST body is a JSON array of ``{time, type, record}``; records whose ``type`` starts with one of the
subscribed types reach ``on_event``. The listener only parses and dispatches, in the order delivered: what an
event means is the caller's business (``platform.runtimeDone`` for the assembler; function lines and platform
reports for ``logs``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable

from extension.http11 import HttpError, read_request, response_bytes
from tracer.export.diagnostics import log
from tracer.export.supervise import supervised

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any


DESTINATION_HOST = "sandbox.localdomain"
LOOPBACK = "127.0.0.1"
_MAX_BODY = 4 * 1024 * 1024  # the platform batches at most 1 MiB per POST


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


class TelemetryListener:
    def __init__(self, on_event: Callable[[dict[str, Any]], None], bind_host: str | None = None,
                 on_failure: Callable[[], None] | None = None, before_batch: Callable[[], None] | None = None
                 ) -> None:
        """``on_failure``: called once, from the listener's thread, when it stopped for good. ``before_batch``:
        called before the events of each delivery are handed on."""
        self._on_event = on_event
        self._before_batch = before_batch
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.bind_host = bind_host or listen_address()
        self._server.bind((self.bind_host, 0))
        self._server.listen(8)
        self.port: int = self._server.getsockname()[1]
        self.received = 0
        self._stopping = False
        self._on_failure = on_failure
        self.failed = False  # the listener failed for good: nothing more is received
        self._thread = threading.Thread(target=supervised("Telemetry API listener", self._accept_loop,
                                                          self._give_up, lambda: self._stopping),
                                        name="afterglow-telemetry", daemon=True)

    @property
    def uri(self) -> str:
        return f"http://{DESTINATION_HOST}:{self.port}/telemetry"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        if self._thread.ident is not None:  # started
            self._thread.join(2.0)

    def _give_up(self) -> None:
        self.failed = True
        with contextlib.suppress(OSError):
            self._server.close()  # Lambda's deliveries fail at once instead of waiting on a listener nobody serves
        log.error("the Telemetry API listener stopped for good: the function's log lines and Lambda's platform "
                  "reports are no longer received in this environment (the platform counts what it cannot deliver); "
                  "invocations are followed by bounded waits instead")
        if self._on_failure is not None:
            self._on_failure()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="afterglow-telemetry-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while not self._stopping:
                try:
                    request = read_request(reader, _MAX_BODY)
                except (HttpError, OSError) as error:
                    log.debug("telemetry connection dropped: %s", error)
                    return
                if request is None:
                    return
                status, reason = (200, "OK") if request.method == "POST" else (405, "Method Not Allowed")
                if request.method == "POST":
                    self._dispatch(request.body)
                try:
                    conn.sendall(response_bytes(status, reason))
                except OSError:
                    return
                if not request.keep_alive:
                    return

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
