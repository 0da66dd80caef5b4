"""The hand-off: finished spans leave the function over a Unix stream socket to the afterglow extension.

One connection per process, opened at the first invocation. HELLO once per connection, START when the
invocation span opens, each span as it ends, END when the invocation is over (for every invocation,
sampled or not). A span that ends within ``window_ns`` of the previous send joins a pending batch that
leaves with the next send or with END, so a burst of short spans costs one write.

Nothing here blocks the handler: the socket is non-blocking; bytes the socket cannot take yet wait in a
bounded queue; whatever cannot be kept is counted by reason and reported in END. Bytes still queued when
END is written are finished by a daemon thread after the handler has returned (the extension is waiting
for END, so it keeps reading). With no extension listening at the first invocation, frames go to the
in-process fallback instead (``tracer._fallback``), exported at the end of each invocation.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
from collections import deque
from time import monotonic_ns
from typing import TYPE_CHECKING, Any

import msgpack
from opentelemetry import context as context_api
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context

from tracer import __version__, wire
from tracer._safe import log, swallowed, warn_once

if TYPE_CHECKING:
    from tracer._fallback import InProcessFallback
    from tracer._span import LeanSpan

# Measured in benchmarks/micro/test_handoff_window.py: 1 ms makes a burst of short spans one write, while
# a span that ends after slow work (an HTTP call, a query) still leaves at once.
DEFAULT_WINDOW_NS = 1_000_000
DEFAULT_MAX_PENDING_BYTES = 4 * 1024 * 1024  # spans waiting for a slow reader, beyond which they are counted
BATCH_LIMIT_BYTES = 256 * 1024  # a batch this large is sent without waiting for the window
_SEND_BUFFER_BYTES = 1024 * 1024  # asked of the kernel (capped by wmem_max) so bursts rarely meet EAGAIN
_CONNECT_TIMEOUT_S = 0.2
_MAX_BUFFERS_PER_WRITE = 64

NEW, SOCKET, DISCONNECTED, FALLBACK, CLOSED = "new", "socket", "disconnected", "fallback", "closed"

# Drop reasons, as they appear in END's drop map.
BUFFER_FULL = "buffer_full"  # the extension read too slowly; the pending queue was at its bound
ENCODE_ERROR = "encode_error"  # a span that msgpack could not encode
OVERSIZED = "oversized"  # one span larger than a frame may be
DISCONNECTED_DROP = "disconnected"  # lost with a broken connection, or ended while there was none

_BROKEN = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNREFUSED, errno.EBADF, errno.ESHUTDOWN)
_SUPPRESSED = Context({_SUPPRESS_INSTRUMENTATION_KEY: True})  # our own I/O is never traced


class Handoff:
    """The span sink of the function process (``LeanTracerProvider.sink``)."""

    def __init__(
        self,
        path: str,
        *,
        window_ns: int = DEFAULT_WINDOW_NS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        fallback: InProcessFallback | None = None,
    ) -> None:
        self.path = path
        self.window_ns = window_ns
        self.max_pending_bytes = max_pending_bytes
        self.resource: dict[str, Any] = {}
        self.mode = NEW
        self.writes = 0  # write system calls made, for tests and benchmarks
        self._fallback = fallback
        self._lock = threading.Lock()
        self._packer = msgpack.Packer(use_bin_type=True)
        self._sock: socket.socket | None = None
        self._batch: list[bytes] = []  # packed span records waiting for company
        self._batch_bytes = 0
        self._last_send_ns = 0
        self._out: deque[bytes] = deque()  # whole frames the socket has not taken yet, in order
        self._out_spans: deque[int] = deque()  # spans inside each of them
        self._out_offset = 0  # bytes of _out[0] already written
        self._out_bytes = 0
        self._drops: dict[str, int] = {}
        self._start_frame: bytes | None = None  # re-sent after a reconnect within the invocation
        self._may_reconnect = True
        self._drainer: threading.Thread | None = None
        self._wake = threading.Event()
        self._closing = False

    # --- invocation boundaries (called by the decorator) ----------------------------------------

    def begin(self, request_id: str, span: LeanSpan | None) -> None:
        """The invocation starts: connect if needed, send START for a sampled invocation span."""
        with self._lock:
            self._may_reconnect = True
            if self.mode in (NEW, DISCONNECTED):
                self._connect_locked()
            self._start_frame = None
            if span is not None:
                try:
                    body = self._packer.pack([request_id, span.to_record()])
                    self._start_frame = wire.frame_packed(wire.START, body)
                except Exception as error:
                    self._packer.reset()
                    swallowed("encoding the invocation span's START", error)
            if self._start_frame is not None:
                self._emit_locked(self._start_frame, 0)
            self._flush_batch_locked()
            self._write_locked()

    def finish(self, request_id: str, sampled: bool, fallback_timeout_s: float = 5.0) -> None:
        """The invocation is over: pending spans, then END. Never waits for the extension."""
        fallback: InProcessFallback | None = None
        with self._lock:
            self._flush_batch_locked()
            if self.mode in (SOCKET, FALLBACK):  # else the counts wait for an END that can be delivered
                drops, self._drops = self._drops, {}
                end = wire.frame_packed(wire.END, self._packer.pack([request_id, sampled, drops]))
                self._emit_locked(end, 0)
            self._start_frame = None
            if self.mode == FALLBACK:
                fallback = self._fallback
            elif self._write_locked() is False:
                self._start_drainer_locked()
        if fallback is not None:
            fallback.flush(fallback_timeout_s)  # outside the lock: spans of other threads keep flowing

    def flush(self) -> None:
        """Send the pending batch now (non-blocking), e.g. for ``TracerProvider.force_flush``."""
        with self._lock:
            self._flush_batch_locked()
            self._write_locked()

    # --- the sink (called as spans end and start) -----------------------------------------------

    def on_end(self, span: LeanSpan) -> None:
        try:
            record = span.to_record()
            with self._lock:
                try:
                    body = self._packer.pack(record)
                except Exception:
                    self._packer.reset()
                    self._count_locked(ENCODE_ERROR)
                    return
                size = len(body)
                if size > wire.MAX_PAYLOAD - 16:
                    self._count_locked(OVERSIZED)
                    return
                if self.mode in (DISCONNECTED, CLOSED):
                    self._count_locked(DISCONNECTED_DROP)
                    return
                if self._out_bytes + self._batch_bytes + size > self.max_pending_bytes:
                    self._count_locked(BUFFER_FULL)
                    return
                self._batch.append(body)
                self._batch_bytes += size
                if self.mode != SOCKET:
                    return  # NEW: waits for the first invocation; FALLBACK: leaves at END
                now = monotonic_ns()
                if now - self._last_send_ns < self.window_ns and self._batch_bytes < BATCH_LIMIT_BYTES:
                    return  # coalesce: this span goes with the next send or with END
                self._flush_batch_locked()
                self._write_locked()
        except Exception as error:
            swallowed("handing a span over", error)

    def poke(self) -> None:
        """A span is starting: send a batch that has waited longer than the window (lost if we died)."""
        if not self._batch or self.mode != SOCKET:
            return
        if monotonic_ns() - self._last_send_ns < self.window_ns:
            return
        try:
            with self._lock:
                self._flush_batch_locked()
                self._write_locked()
        except Exception as error:
            swallowed("sending a pending batch", error)

    # --- state for tests, benchmarks and the operator -------------------------------------------

    @property
    def pending_bytes(self) -> int:
        return self._out_bytes + self._batch_bytes

    @property
    def drops(self) -> dict[str, int]:
        """Drops counted since the last END (they go in the next END)."""
        return dict(self._drops)

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop the drain thread and close the socket, writing what is left for up to ``timeout_s``."""
        drainer = self._drainer
        with self._lock:
            self._closing = True
            self._wake.set()
        if drainer is not None:
            drainer.join(timeout_s)
        with self._lock:
            if self._sock is not None and self._out:
                self._write_blocking_locked(timeout_s)
            self._close_socket_locked()
            self.mode = CLOSED
            fallback, self._fallback = self._fallback, None
        if fallback is not None:
            fallback.close(timeout_s)

    # --- internals (all under self._lock) -------------------------------------------------------

    def _count_locked(self, reason: str, count: int = 1) -> None:
        self._drops[reason] = self._drops.get(reason, 0) + count

    def _connect_locked(self) -> None:
        first = self.mode == NEW
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        token = context_api.attach(_SUPPRESSED)
        try:
            sock.settimeout(_CONNECT_TIMEOUT_S)
            sock.connect(self.path)
        except OSError as error:
            sock.close()
            if first:
                self.mode = FALLBACK
                self._fallback_announce(error)
            else:
                self.mode = DISCONNECTED
                log.warning("afterglow: cannot reconnect to the extension at %s (%s)", self.path, error)
            return
        finally:
            context_api.detach(token)
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER_BYTES)
        self._sock = sock
        self.mode = SOCKET
        hello = {"tracer": f"afterglow-python {__version__}", "pid": os.getpid(), "resource": self.resource}
        self._out.appendleft(wire.frame_packed(wire.HELLO, self._packer.pack(hello)))
        self._out_spans.appendleft(0)
        self._out_bytes += len(self._out[0])
        self._out_offset = 0

    def _fallback_announce(self, error: OSError) -> None:
        warn_once(
            "fallback",
            "afterglow: no extension listening at %s (%s); exporting in-process at the end of each invocation, "
            "which the handler pays for. Add the afterglow layer to move export after the response.",
            self.path,
            error.strerror or error,
        )
        if self._fallback is None:
            from tracer._fallback import InProcessFallback

            self._fallback = InProcessFallback()
        hello = {"tracer": f"afterglow-python {__version__}", "pid": os.getpid(), "resource": self.resource}
        self._fallback.write(wire.frame_packed(wire.HELLO, self._packer.pack(hello)))

    def _flush_batch_locked(self) -> None:
        batch = self._batch
        if not batch or self.mode not in (SOCKET, FALLBACK):
            return
        count = len(batch)
        header = self._packer.pack_array_header(count)
        body_size = len(header) + self._batch_bytes
        self._batch = []
        self._batch_bytes = 0
        data = b"".join([wire.HEADER.pack(wire.MAGIC, wire.VERSION, wire.SPANS, body_size), header, *batch])
        self._emit_locked(data, count)

    def _emit_locked(self, data: bytes, spans: int) -> None:
        if self.mode == FALLBACK:
            if self._fallback is not None:
                self._fallback.write(data)
            return
        if self.mode != SOCKET:
            if spans:
                self._count_locked(DISCONNECTED_DROP, spans)
            return
        self._out.append(data)
        self._out_spans.append(spans)
        self._out_bytes += len(data)

    def _write_locked(self) -> bool | None:
        """Write what the socket takes now. True: all sent; False: bytes remain; None: nothing to do."""
        sock = self._sock
        if sock is None or not self._out:
            return None
        self._last_send_ns = monotonic_ns()
        token = context_api.attach(_SUPPRESSED)
        try:
            while self._out:
                buffers: list[Any] = [memoryview(self._out[0])[self._out_offset :]]
                for index in range(1, min(len(self._out), _MAX_BUFFERS_PER_WRITE)):
                    buffers.append(self._out[index])
                try:
                    sent = sock.sendmsg(buffers)
                except (BlockingIOError, InterruptedError):
                    return False
                except OSError as error:
                    if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS):
                        return False
                    if error.errno in _BROKEN or isinstance(error, ConnectionError):
                        return self._broken_locked(error)
                    raise
                finally:
                    self.writes += 1
                self._advance_locked(sent)
            return True
        finally:
            context_api.detach(token)

    def _advance_locked(self, sent: int) -> None:
        self._out_bytes -= sent
        while sent and self._out:
            remaining = len(self._out[0]) - self._out_offset
            if sent < remaining:
                self._out_offset += sent
                return
            sent -= remaining
            self._out.popleft()
            self._out_spans.popleft()
            self._out_offset = 0

    def _broken_locked(self, error: OSError) -> bool:
        """The extension went away: count what was queued, then try one reconnect."""
        lost = sum(self._out_spans)
        self._out.clear()
        self._out_spans.clear()
        self._out_offset = 0
        self._out_bytes = 0
        self._close_socket_locked()
        if lost:
            self._count_locked(DISCONNECTED_DROP, lost)
        self.mode = DISCONNECTED
        if not self._may_reconnect:
            return False
        self._may_reconnect = False
        log.warning("afterglow: connection to the extension lost (%s); reconnecting once", error)
        self._connect_locked()
        if self.mode != SOCKET:
            return False
        if self._start_frame is not None:
            self._emit_locked(self._start_frame, 0)
        return self._write_locked() is not False

    def _close_socket_locked(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _write_blocking_locked(self, timeout_s: float) -> None:
        deadline = monotonic_ns() + int(timeout_s * 1e9)
        while self._out and self._sock is not None:
            remaining = (deadline - monotonic_ns()) / 1e9
            if remaining <= 0:
                return
            try:
                select.select([], [self._sock], [], remaining)
            except (OSError, ValueError):
                return
            if self._write_locked() is not False:
                return

    # --- the drain thread -----------------------------------------------------------------------

    def _start_drainer_locked(self) -> None:
        self._wake.set()
        if self._drainer is None or not self._drainer.is_alive():
            self._drainer = threading.Thread(target=self._drain, name="afterglow-handoff", daemon=True)
            self._drainer.start()

    def _drain(self) -> None:
        """Finish writes the handler left behind; sleeps on an Event between invocations."""
        context_api.attach(_SUPPRESSED)
        while True:
            self._wake.wait()
            with self._lock:
                if self._closing:
                    return
                sock = self._sock
                if sock is None or not self._out:
                    self._wake.clear()
                    continue
            try:
                poller = select.poll()
                poller.register(sock, select.POLLOUT)
                poller.poll(200)
                with self._lock:
                    if self._sock is sock:
                        self._write_locked()
            except Exception as error:
                swallowed("finishing writes to the extension", error)
                with self._lock:
                    self._wake.clear()
