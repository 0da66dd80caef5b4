"""The hand-off: finished spans leave the function over a Unix stream socket to the afterglow extension.

One connection per process, opened at the first invocation. HELLO once per connection, START when the
invocation span opens, each span as it ends, END when the invocation is over (for every invocation,
sampled or not). A span that ends within ``window_ns`` of the previous send joins a pending batch, so a
burst of short spans costs one write. The batch leaves with the next send, with END, or, when neither
comes (the function sleeps, hangs or is about to crash), from the sender thread once the window has
passed: a span never waits much longer than the window to leave the process.

Nothing here blocks the handler: the socket is non-blocking; bytes the socket cannot take yet wait in a
bounded queue that the sender thread finishes writing (the extension keeps reading until END); whatever
cannot be kept is counted by reason, reported in END and, when the extension is gone, in one warning line
of the function's log. With no extension listening at the first invocation, frames go to the in-process
fallback instead (``tracer._fallback``), exported at the end of each invocation.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
import weakref
from collections import deque
from time import monotonic_ns
from typing import TYPE_CHECKING, Any

import msgpack
from opentelemetry import context as context_api
from opentelemetry.context import Context

from tracer import __version__, wire
from tracer._context_keys import SUPPRESS_INSTRUMENTATION_KEY
from tracer._safe import log, swallowed, warn_once

if TYPE_CHECKING:
    from _queue import SimpleQueue

    from tracer._fallback import InProcessFallback
    from tracer._span import LeanSpan

# Measured in benchmarks/micro/test_window.py: 1 ms makes a burst of short spans one write, while a span
# that ends after slow work (an HTTP call, a query) still leaves at once.
DEFAULT_WINDOW_NS = 1_000_000
DEFAULT_MAX_PENDING_BYTES = 4 * 1024 * 1024  # spans waiting for a slow reader, beyond which they are counted
BATCH_LIMIT_BYTES = 256 * 1024  # a batch this large is sent without waiting for the window
_SEND_BUFFER_BYTES = 1024 * 1024  # asked of the kernel (capped by wmem_max) so bursts rarely meet EAGAIN
_CONNECT_TIMEOUT_S = 0.2
_MAX_BUFFERS_PER_WRITE = 64
_POLL_MS = 200  # the sender re-checks a socket that stays full this often
_BUSY, _TIMED, _IDLE = 0, 1, 2  # how the sender thread waits: not at all, until a batch is due, for a wake-up
# The sender's pause when it finds the lock taken, or while it stays near a busy handler: a window, within
_MIN_BACK_OFF_S = 0.0002  # these bounds
_MAX_BACK_OFF_S = 0.005
_NO_SIGPIPE = getattr(socket, "MSG_NOSIGNAL", 0)  # a vanished reader is EPIPE, even where SIGPIPE is not ignored

NEW, SOCKET, DISCONNECTED, FALLBACK, CLOSED = "new", "socket", "disconnected", "fallback", "closed"

# Drop reasons, as they appear in END's drop map.
BUFFER_FULL = "buffer_full"  # the extension read too slowly; the pending queue was at its bound
ENCODE_ERROR = "encode_error"  # a span that msgpack could not encode
OVERSIZED = "oversized"  # one span larger than a frame may be
DISCONNECTED_DROP = "disconnected"  # lost with a broken connection, or ended while there was none

_BROKEN = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNREFUSED, errno.EBADF, errno.ESHUTDOWN)
_SUPPRESSED = Context({SUPPRESS_INSTRUMENTATION_KEY: True})  # our own I/O is never traced


_live: weakref.WeakSet[Handoff] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handoff in list(_live):
        try:
            handoff.after_fork_in_child()
        except Exception as error:
            swallowed("resetting the hand-off in a forked process", error)


os.register_at_fork(after_in_child=_after_fork_in_child)


class Handoff:
    """The span sink of the function process (``LeanTracerProvider.sink``)."""

    def __init__(
        self,
        path: str,
        *,
        window_ns: int = DEFAULT_WINDOW_NS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        fallback: InProcessFallback | None = None,
        linger: bool = True,
    ) -> None:
        self.path = path
        self.window_ns = window_ns
        self.linger = linger  # False: a batch waits for the next send or END only (benchmarks compare both)
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
        self._pending_since_ns = 0  # when the oldest frame or span still held back was queued; 0: none held
        self._out: deque[bytes] = deque()  # whole frames the socket has not taken yet, in order
        self._out_spans: deque[int] = deque()  # spans inside each of them
        self._out_offset = 0  # bytes of _out[0] already written
        self._out_bytes = 0
        self._drops: dict[str, int] = {}
        self._start_frame: bytes | None = None  # re-sent after a reconnect within the invocation
        self._invocation_span_id = 0  # the span END follows at once: its batch needs no sender
        self._may_reconnect = True
        self._lost_because: str | None = None  # why the connection went, for the one log line about the loss
        self._logged_drops: dict[str, int] = {}  # drops already in a log line, not yet in an END
        self._end_drops: tuple[bytes, dict[str, int]] | None = None  # the last END with counts, until written
        # The sender thread waits on _wakeups, a C-level SimpleQueue: waking it is one put (~0.1 us, at most
        # once per batch) instead of an Event's Condition, and a spare token only costs a spurious look.
        # _sender_wait says how it waits (_BUSY, _TIMED for a batch's window, _IDLE); wakers read it under the
        # lock, the sender writes it without (see _send_later).
        self._sender: threading.Thread | None = None
        self._wakeups: SimpleQueue[None] | None = None
        self._sender_wait = _IDLE
        self._writes_left = False  # a write stopped at a full socket: the sender finishes it
        self._closing = False
        self._deferred_end: tuple[str, bool] | None = None  # END held until the runtime posted the response
        _live.add(self)

    # --- invocation boundaries (called by the decorator) ----------------------------------------

    def begin(self, request_id: str, span: LeanSpan | None) -> None:
        """The invocation starts: connect if needed, send START for a sampled invocation span."""
        with self._lock:
            if self._deferred_end is not None:  # the runtime never told us it answered: END goes now
                self._finish_locked(*self._deferred_end)
            self._may_reconnect = True
            self._start_frame = None
            if self.mode == SOCKET and self._peer_closed_locked():
                # The extension restarted since the last write. Learn it now, not at the first write: this
                # invocation's frames are held back for a window, and a write that finds the connection gone
                # loses what it carried.
                self._broken_locked(ConnectionResetError(errno.ECONNRESET, "the extension closed the connection"))
            if self.mode in (NEW, DISCONNECTED):
                self._connect_locked()
            self._invocation_span_id = span._span_id if span is not None else 0
            if span is not None:
                try:
                    body = self._packer.pack([request_id, span.to_record()])
                    self._start_frame = wire.frame_packed(wire.START, body)
                except Exception as error:
                    self._packer.reset()
                    swallowed("encoding the invocation span's START", error)
            if self._start_frame is not None:
                self._emit_locked(self._start_frame, 0)
            if self.window_ns and self.mode == SOCKET and self._out:
                # START (and HELLO) wait, like spans, for at most a window: an invocation shorter than that
                # writes nothing until its END, after the response, and never wakes the extension while the
                # handler runs. Lost with a hard crash within the window, as spans are.
                self._hold_locked(monotonic_ns())
                return
            self._flush_batch_locked()
            if self._write_locked() is False:
                self._writes_left_locked()

    def finish(
        self, request_id: str, sampled: bool, fallback_timeout_s: float = 5.0, after_response: bool = False
    ) -> None:
        """The invocation is over: pending spans, then END. Never waits for the extension.

        ``after_response``: the runtime will call ``response_posted`` once the caller has its answer; END
        waits for that, so the extension's export never competes with posting the response.
        """
        fallback: InProcessFallback | None = None
        with self._lock:
            if after_response and self.mode == SOCKET:
                self._deferred_end = (request_id, sampled)
                return
            fallback = self._finish_locked(request_id, sampled)
        if fallback is not None:
            fallback.flush(fallback_timeout_s)  # outside the lock: spans of other threads keep flowing

    def response_posted(self) -> None:
        """The runtime posted the invocation's response: send the END that waited for it."""
        with self._lock:
            if self._deferred_end is not None:
                self._finish_locked(*self._deferred_end)

    def _finish_locked(self, request_id: str, sampled: bool) -> InProcessFallback | None:
        self._deferred_end = None
        self._flush_batch_locked()
        if self.mode in (SOCKET, FALLBACK):  # else the counts wait for an END that can be delivered
            drops, self._drops = self._drops, {}
            self._logged_drops = {}
            end = wire.frame_packed(wire.END, self._packer.pack([request_id, sampled, drops]))
            self._emit_locked(end, 0)
            self._end_drops = (end, drops) if drops else None
        self._start_frame = None
        if self.mode == FALLBACK:
            return self._fallback
        if self._write_locked() is False:
            self._writes_left_locked()
        if self.mode in (DISCONNECTED, CLOSED):  # gone before or during this very write
            self._log_loss_locked(request_id)
        return None

    def flush(self) -> None:
        """Send the pending batch now (non-blocking), e.g. for ``TracerProvider.force_flush``."""
        with self._lock:
            self._flush_batch_locked()
            if self._write_locked() is False:
                self._writes_left_locked()

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
                held_since = self._pending_since_ns or now
                if now - held_since < self.window_ns and self._batch_bytes < BATCH_LIMIT_BYTES:
                    # coalesce: this span goes with the next send, with END, or with the sender after the window
                    self._hold_locked(now, wake=span._span_id != self._invocation_span_id)
                    return
                self._flush_batch_locked()
                if self._write_locked() is False:
                    self._writes_left_locked()
        except Exception as error:
            swallowed("handing a span over", error)

    def poke(self) -> None:
        """A span is starting: send a batch that has waited longer than the window (lost if we died)."""
        if not self._batch or self.mode != SOCKET:
            return
        if monotonic_ns() - self._pending_since_ns < self.window_ns:
            return
        try:
            with self._lock:
                self._flush_batch_locked()
                if self._write_locked() is False:
                    self._writes_left_locked()
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

    def after_fork_in_child(self) -> None:
        """A process forked from the function's (multiprocessing, os.fork) gets its own connection.

        The parent's socket, queued bytes and held spans stay the parent's: writing on the shared socket
        would interleave two streams into garbage, and sending the parent's frames again would duplicate
        them. A child usually ends with ``os._exit``, which no thread can outrun, so its spans leave as they
        end (window 0). The lock may have been held by a parent thread that does not exist here.
        """
        self._lock = threading.Lock()
        was_connected = self.mode == SOCKET
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()  # our copy of the descriptor: the parent's connection stays open
            self._sock = None
        self._out.clear()
        self._out_spans.clear()
        self._out_offset = self._out_bytes = 0
        self._batch, self._batch_bytes = [], 0
        self._drops, self._logged_drops, self._end_drops = {}, {}, None
        self._deferred_end = self._start_frame = None
        self._pending_since_ns = 0
        self._sender = self._wakeups = None
        self._sender_wait = _IDLE
        self._writes_left = False
        self.window_ns = 0
        if was_connected:
            self.mode = DISCONNECTED  # a failed connect stays that, never the in-process fallback
            with self._lock:
                self._may_reconnect = False
                self._connect_locked()

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop the sender thread and close the socket, writing what is left for up to ``timeout_s``."""
        with self._lock:
            self._closing = True
            sender = self._sender
            if self._wakeups is not None:
                self._wakeups.put(None)
        if sender is not None:
            sender.join(timeout_s)
        with self._lock:
            if self._deferred_end is not None:
                self._finish_locked(*self._deferred_end)
            self._flush_batch_locked()
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
                self._lost_because = f"cannot reconnect: {error.strerror or error}"
                log.debug("afterglow: cannot reconnect to the extension at %s (%s)", self.path, error)
            return
        finally:
            context_api.detach(token)
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER_BYTES)
        self._sock = sock
        self.mode = SOCKET
        self._lost_because = None
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
                    sent = sock.sendmsg(buffers, (), _NO_SIGPIPE)
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
            self._writes_left = False
            if not self._batch:
                self._pending_since_ns = 0
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

    def _broken_locked(self, error: OSError) -> bool | None:
        """The extension went away: count what was queued, then try one reconnect (once per invocation)."""
        lost = sum(self._out_spans)
        if self._end_drops is not None:
            end, drops = self._end_drops
            self._end_drops = None
            if any(frame is end for frame in self._out):  # an END that did not get through: keep its counts
                for reason, count in drops.items():
                    self._count_locked(reason, count)
        self._out.clear()
        self._out_spans.clear()
        self._out_offset = 0
        self._out_bytes = 0
        self._close_socket_locked()
        if lost:
            self._count_locked(DISCONNECTED_DROP, lost)
        self.mode = DISCONNECTED
        self._lost_because = f"connection lost: {error.strerror or error}"
        if self._may_reconnect:
            self._may_reconnect = False
            log.debug("afterglow: connection to the extension lost (%s); reconnecting once", error)
            self._connect_locked()
        if self.mode != SOCKET:
            if self._batch:  # nothing will send it: counted now, so the loss line and the next END include it
                self._count_locked(DISCONNECTED_DROP, len(self._batch))
                self._batch = []
                self._batch_bytes = 0
            return None
        if self._start_frame is not None:
            self._emit_locked(self._start_frame, 0)
        return self._write_locked() is not False

    def _peer_closed_locked(self) -> bool:
        """Has the extension closed its end? (It never writes, so any readable state means it went.)"""
        sock = self._sock
        if sock is None:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

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

    def _log_loss_locked(self, request_id: str) -> None:
        """No END can carry the counts (the extension is gone): say it in the function's log, one line per
        invocation that lost something. The counts still go in the next END that gets through."""
        new = {reason: count - self._logged_drops.get(reason, 0) for reason, count in self._drops.items()}
        new = {reason: count for reason, count in new.items() if count > 0}
        if not new:
            return
        self._logged_drops = dict(self._drops)
        counts = ", ".join(f"{reason}={count}" for reason, count in sorted(new.items()))
        log.warning(
            "afterglow: the extension at %s is gone (%s); %d spans of invocation %s were not handed over (%s). "
            "The handler is not affected; the next invocation tries to reconnect.",
            self.path,
            self._lost_because or "not connected",
            sum(new.values()),
            request_id,
            counts,
        )

    # --- the sender thread ----------------------------------------------------------------------

    def _writes_left_locked(self) -> None:
        """The socket did not take everything: the sender finishes the writes (the extension reads until END)."""
        self._writes_left = True
        if self._sender_wait != _BUSY:
            self._wake_sender_locked()

    def _hold_locked(self, now: int, wake: bool = True) -> None:
        """Something waits to be written: it leaves with the next write, or the sender's after a window."""
        if not self._pending_since_ns:
            self._pending_since_ns = now
        if wake and self._sender_wait == _IDLE and self.linger:
            self._wake_sender_locked()

    def _wake_sender_locked(self) -> None:
        sender, wakeups = self._sender, self._wakeups
        self._sender_wait = _BUSY
        if sender is None or wakeups is None or not sender.is_alive():  # first use, or a fork lost the thread
            from _queue import SimpleQueue  # queue.SimpleQueue itself, without the queue module's imports (~1 ms)

            self._wakeups = SimpleQueue()
            sender = self._sender = threading.Thread(target=self._send_later, name="afterglow-handoff", daemon=True)
            sender.start()
            return
        wakeups.put(None)

    def _send_later(self) -> None:
        """Send the batch that nobody else sent within its window, and finish the writes the handler left.

        It looks without the lock and takes it only when something is due: a thread that queues for the lock
        the handler holds must then win the GIL back from it too, delaying the handler twice. When the lock
        is taken, another thread is busy handing spans over right now and sends a due batch itself
        (``on_end``, ``poke``, ``finish``), so this one backs off for a window: the linger only matters once
        every thread has stopped touching the hand-off.

        Going idle without the lock is safe: a waker appends its span before it reads ``_sender_wait`` (both
        under the lock), and this thread says ``_IDLE`` before it looks again; so either the waker sees
        ``_IDLE`` and puts a token, or this thread sees the span.
        """
        from _queue import Empty
        from time import sleep

        context_api.attach(_SUPPRESSED)
        wakeups, lock = self._wakeups, self._lock
        assert wakeups is not None
        back_off_s = min(max(self.window_ns / 1e9, _MIN_BACK_OFF_S), _MAX_BACK_OFF_S)
        woken = False
        last_seen_send = 0
        while not self._closing:
            try:
                due_in_ns, writes = self._work_unlocked()
                busy = self.linger and (woken or self._last_send_ns != last_seen_send)
                last_seen_send, woken = self._last_send_ns, False
                if due_in_ns is None and not writes and busy:
                    # Woken for a batch the handler sent itself before this thread got the GIL (the usual case:
                    # it gets the GIL while the handler writes), or the handler is still sending: stay near
                    # for a window rather than go idle, so that a busy handler's batches do not each pay for
                    # waking this thread. Once a window passes without a send, it goes idle.
                    due_in_ns = int(back_off_s * 1e9)
                if due_in_ns is None and not writes:
                    self._sender_wait = _IDLE
                    if self._work_unlocked() == (None, False):
                        wakeups.get()
                        woken = True
                    self._sender_wait = _BUSY
                    continue
                if due_in_ns is not None and due_in_ns > 0 and not writes:
                    self._sender_wait = _TIMED
                    with contextlib.suppress(Empty):
                        wakeups.get(timeout=due_in_ns / 1e9)
                    self._sender_wait = _BUSY
                    continue
                if not lock.acquire(False):
                    sleep(back_off_s)
                    continue
                try:
                    if self._closing:
                        return
                    delay_ns, sock = self._due_locked()
                finally:
                    lock.release()
                if sock is not None:  # bytes wait for room in the socket; a batch may come due meanwhile
                    poller = select.poll()
                    try:
                        poller.register(sock, select.POLLOUT)
                    except (OSError, ValueError):  # closed by the handler's thread just now: look again
                        continue
                    poller.poll(_POLL_MS if delay_ns is None else min(_POLL_MS, delay_ns // 1_000_000 + 1))
            except Exception as error:
                swallowed("sending spans to the extension", error)
                self._sender_wait = _IDLE
                wakeups.get()  # no retry loop on a bug: wait for the next batch or write to wake us

    def _work_unlocked(self) -> tuple[int | None, bool]:
        """A look without the lock (a hint, confirmed under it): ns until the batch is due, writes waiting."""
        due_in_ns = None
        held_since = self._pending_since_ns
        if held_since and self.linger and self.mode == SOCKET:
            due_in_ns = held_since + self.window_ns - monotonic_ns()
        # not ``_out`` itself: it holds the frames of a write in progress while the handler's thread waits in
        # sendmsg, which is exactly when this thread gets the GIL
        return due_in_ns, self._writes_left

    def _due_locked(self) -> tuple[int | None, socket.socket | None]:
        """Send what is due. Returns (ns until the batch is due, or None) and the socket to wait for, if full."""
        delay_ns: int | None = None
        if self._pending_since_ns and self.mode == SOCKET:
            delay_ns = self._pending_since_ns + self.window_ns - monotonic_ns()
            if delay_ns <= 0:
                self._flush_batch_locked()
                delay_ns = None
                if self._write_locked() is None:  # nothing was held after all (written by another path)
                    self._pending_since_ns = 0
        if self._out and self._sock is not None and self._write_locked() is False:
            self._writes_left = True
            return delay_ns, self._sock
        self._writes_left = False
        return delay_ns, None
