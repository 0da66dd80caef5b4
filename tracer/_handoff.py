"""The hand-off: how the function's spans reach the afterglow extension, one invocation at a time.

``span.end()`` packs the span into a frame in the ring (``tracer._ring``), memory the extension maps too. When
it returns, the span reaches the extension even if the process dies the next instant, and nothing made a system
call or woke the extension. The socket (``tracer._connection``) carries HELLO once (with the ring's
descriptor), END once per invocation (after the response, with the ring position that completes it) and DRAIN
only when an invocation fills the ring past its high-water mark. An extension that reads the ring on its own
schedule (background export) says so in the ring's header; END then goes into the ring as well, so a short
invocation makes no system call at all. The extension reads the ring at END, at DRAIN, at its own passes, when
the connection closes (the process died) and before it declares an invocation dead.

Back-pressure: an extension whose span buffer is full stops reading the ring, so spans wait here instead of being
dropped. When, after the runtime posted the response, more than a sixteenth of the ring is unread, the function waits
for the extension to read below that (DRAIN wakes it), as long as the extension says in the ring's header (its flush
budget; zero while its collector fails, and from an older extension): billed, but never the caller's latency. A wait
in which the extension read nothing at all is not repeated until it reads again (it died, or hangs).

States (``mode``): NEW until the first invocation connects (spans made at init wait in the ring); SOCKET;
DISCONNECTED when the extension went away (one reconnect per invocation, with a fresh ring); FALLBACK when no
extension listened at the first invocation: the ring is then read in-process at END and exported there
(``tracer._fallback``); CLOSED. Nothing here blocks the handler or raises into it: whatever is not handed over
is counted by reason, reported in the next END that gets through and, while the extension is gone, in one
warning line per invocation.
"""

from __future__ import annotations

import errno
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from tracer import __version__, wire
from tracer._connection import Connection, ConnectionLost
from tracer._open_spans import OpenSpans
from tracer._ring import DEFAULT_CAPACITY, NO_ROOM, TOO_BIG, Ring, count_frames
from tracer._safe import log, swallowed, warn_once

if TYPE_CHECKING:
    from collections.abc import Callable

    from tracer._fallback import InProcessFallback
    from tracer._span import LeanSpan

NEW, SOCKET, DISCONNECTED, FALLBACK, CLOSED = "new", "socket", "disconnected", "fallback", "closed"

# Drop reasons, as they appear in END's drop map.
BUFFER_FULL = "buffer_full"  # the ring was full: the extension had not read it yet
ENCODE_ERROR = "encode_error"  # a span that msgpack could not encode
OVERSIZED = "oversized"  # one span larger than a frame may be
DISCONNECTED_DROP = "disconnected"  # lost with the extension, or ended while there was none
NO_MEMORY = "no_memory"  # the ring could not be created

HIGH_WATER_SHARE = 4  # DRAIN once this share of the ring (a quarter) waits unread
HOLD_SHARE = 16  # after a response, wait for the extension while this share of the ring (a sixteenth) waits unread
HOLD_POLL_S = 0.001  # how often a wait for the extension looks at its read position

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
        self, path: str, *, ring_capacity: int = DEFAULT_CAPACITY, fallback: InProcessFallback | None = None
    ) -> None:
        self.path = path
        self.ring_capacity = ring_capacity
        self.resource: dict[str, Any] = {}
        self.mode = NEW
        self.writes = 0  # socket writes made, for tests and benchmarks
        self._fallback = fallback
        self._lock = threading.Lock()
        self._ring: Ring | None = None
        self._connection: Connection | None = None
        self._high_water = ring_capacity // HIGH_WATER_SHARE
        self._hold_mark = ring_capacity // HOLD_SHARE
        self._drain_asked_at = 0  # ring position of the last DRAIN: another only once the extension read past it
        self._forked = False  # a forked child: connects at its first span, never falls back
        self._start: list[Any] | None = None  # the open invocation's START
        self._invocation_at = 0  # ring position where the current invocation's frames begin
        self._carried = b""  # the current invocation's frames from a lost connection's ring, for the next ring
        self._deferred_end: tuple[str, bool] | None = None  # END held until the runtime posted the response
        self._may_reconnect = True  # once per invocation
        self._drops: dict[str, int] = {}
        self._logged_drops: dict[str, int] = {}  # drops already in a log line, not yet in an END
        self._lost_because: str | None = None  # why the connection went, for that log line
        self._time_left_s = 5.0  # of the current invocation, less a margin: a wait after the response stays within
        self._time_left: Callable[[], float] | None = None  # asks for it, when given (``finish``)
        self._stalled_at = -1  # read position at which a wait saw the extension read nothing: no wait until it moves
        self.holds = 0  # waits for the extension after a response (back-pressure), for tests and benchmarks
        self.stalls = 0  # of which the extension read nothing at all until the bound
        # The spans started and not ended, in the ring's header once connected (``LeanSpan`` opens and closes slots).
        self.open_spans = OpenSpans()
        _live.add(self)

    # --- invocation boundaries (called by the decorator) ----------------------------------------

    def begin(self, request_id: str, span: LeanSpan | None) -> None:
        """The invocation starts: connect if needed; a sampled invocation span goes into the ring as START."""
        with self._lock:
            if self._deferred_end is not None:  # the runtime never told us it answered: END goes now
                self._finish_locked(*self._deferred_end)
            self._may_reconnect = True
            self._start = None
            # No look at the connection here (a system call per invocation): an extension that went away is
            # noticed by the next write, and this invocation's frames move into the next extension's ring.
            if self.mode in (NEW, DISCONNECTED):
                self._may_reconnect = self.mode == NEW
                self._connect_locked()
            ring = self._ring
            if ring is not None:
                ring.rewind()  # when the extension has read everything: start on the ring's first page again
            self._invocation_at = ring.written if ring is not None else 0
            if span is not None and self.mode not in (DISCONNECTED, CLOSED):
                # START, inline (once per invocation). Not a span: when it does not fit, nothing is counted (the
                # invocation span itself is, if it does not fit either).
                start = self._start = [request_id, span.to_record()]
                if ring is not None:
                    try:
                        ring.put(wire.START, start)
                    except Exception as error:
                        self._start = None
                        swallowed("encoding the invocation span's START", error)
                    else:
                        if ring.written - ring.seen_read >= self._high_water:
                            self._high_water_locked(ring)
                span.leave_open_spans()  # START stands for it, should the process die

    def finish(
        self, request_id: str, sampled: bool, fallback_timeout_s: float = 5.0, after_response: bool = False,
        time_left: Callable[[], float] | None = None,
    ) -> None:
        """The invocation is over: END. Never waits for the extension.

        ``after_response``: the runtime will call ``response_posted`` once the caller has its answer; END
        waits for that, so the extension's export never competes with posting the response. ``time_left``: what
        is left of the invocation, less a margin, asked only before a wait after the response (asking costs a few
        us); None: ``fallback_timeout_s``.
        """
        with self._lock:
            self._time_left_s = fallback_timeout_s
            self._time_left = time_left
            # An END written to a polled ring wakes nothing, so it need not wait for the response.
            if after_response and self.mode == SOCKET and not (self._ring is not None and self._ring.polled):
                self._deferred_end = (request_id, sampled)
                return
            fallback = self._finish_locked(request_id, sampled)
        if fallback is not None:
            fallback.flush(fallback_timeout_s)  # outside the lock: spans of other threads keep flowing

    def response_posted(self) -> None:
        """The runtime posted the invocation's response: send the END that waited for it; then, when the extension
        is behind (more than a sixteenth of the ring unread), wait for it to catch up, within the bound it gives."""
        # The usual case, without the lock or a look at the reader's position: no END waits (a polled ring took it
        # already), and even the last position seen leaves less than the mark unread (the reader only moves on).
        # An END held back by another thread meanwhile still leaves, at the next ``begin``.
        ring = self._ring
        if self._deferred_end is None and (ring is None or ring.written - ring.seen_read < self._hold_mark):
            return
        with self._lock:
            if self._deferred_end is not None:
                self._finish_locked(*self._deferred_end)
            hold = self._hold_locked()
        if hold is not None:
            self._wait_for_reader(*hold)

    def _hold_locked(self) -> tuple[Ring, float, int] | None:
        """Whether to wait for the extension now: (the ring, for how long, its read position) or None."""
        ring = self._ring
        if self.mode != SOCKET or ring is None or ring.unread < self._hold_mark:
            return None
        hold_ms = ring.hold_ms
        if not hold_ms or ring.seen_read == self._stalled_at:
            return None
        self._drain_locked(ring, everything=True)  # the extension reads and exports
        if self.mode != SOCKET:  # DRAIN found the extension gone
            return None
        self.holds += 1
        left = self._time_left() if self._time_left is not None else self._time_left_s
        return ring, min(hold_ms / 1000, left), ring.seen_read

    def _wait_for_reader(self, ring: Ring, bound_s: float, read_before: int) -> None:
        """Wait (not holding the lock: other threads' spans keep flowing) until the ring is below its mark, the
        bound passed, or the extension withdrew it (its collector failing)."""
        deadline = time.monotonic() + bound_s
        while True:
            with self._lock:
                if self._ring is not ring or self.mode != SOCKET or ring.unread < self._hold_mark or not ring.hold_ms:
                    return
                if time.monotonic() >= deadline:
                    if ring.seen_read == read_before:  # it read nothing at all: dead or hung, do not wait on it again
                        self._stalled_at = read_before
                        self.stalls += 1
                        log.debug("afterglow: the extension read nothing in %.0f ms; not waiting for it again until "
                                  "it does", bound_s * 1000)
                    return
            time.sleep(HOLD_POLL_S)

    # --- the sink (called as spans end) ---------------------------------------------------------

    def on_end(self, span: LeanSpan) -> None:
        # The hot path (~1 us beyond packing the span): no system call, nothing woken.
        try:
            record = span.to_record()
            lock = self._lock
            lock.acquire()  # not ``with``: measurably slower here
            try:
                ring = self._ring
                if ring is None and (ring := self._ring_for_spans_locked()) is None:
                    return
                try:
                    unread = ring.put_span(record)
                except Exception:
                    self._count_locked(ENCODE_ERROR)
                    return
                if unread >= self._high_water:  # past the mark, or NO_ROOM / TOO_BIG
                    self._not_plain_locked(ring, unread)
            finally:
                lock.release()
        except Exception as error:
            swallowed("handing a span over", error)

    # --- state for tests, benchmarks and the operator -------------------------------------------

    @property
    def drops(self) -> dict[str, int]:
        """Drops counted since the last END (they go in the next END)."""
        return dict(self._drops)

    @property
    def unread_bytes(self) -> int:
        """Bytes in the ring the extension has not read yet."""
        ring = self._ring
        return ring.unread if ring is not None else 0

    def after_fork_in_child(self) -> None:
        """A process forked from the function's (multiprocessing, os.fork) gets its own ring and connection.

        The parent's ring is shared memory: a child writing there would corrupt the parent's frames, and reading
        it would send them twice. So the child lets go of the parent's ring, socket, counts and held END, takes
        a fresh lock (a parent thread may have held it at the fork), and connects with a ring of its own at its
        first span. The in-process fallback resets itself (``tracer._fallback``).
        """
        self._lock = threading.Lock()
        if self._ring is not None:
            self._ring.close()  # this process's view and descriptor: the parent's stay
            self._ring = None
        if self._connection is not None:
            self._connection.close()  # our copy of the descriptor: the parent's connection stays open
            self._connection = None
        self._drops, self._logged_drops = {}, {}
        self._deferred_end = self._start = None
        self._drain_asked_at = self._invocation_at = 0
        self._stalled_at = -1
        self._carried = b""
        if self.mode in (NEW, SOCKET, DISCONNECTED):
            self.mode = NEW
            self._forked = True

    def close(self, timeout_s: float = 1.0) -> None:
        """Send a held END, close the socket and let go of the ring (the extension keeps its own mapping)."""
        with self._lock:
            if self._deferred_end is not None:
                self._finish_locked(*self._deferred_end)
            if self._connection is not None:
                self._connection.finish(timeout_s)
                self._connection = None
            fallback, self._fallback = self._fallback, None
            if fallback is not None and self.mode == FALLBACK and self._ring is not None:
                fallback.write(self._ring.take())
            self.open_spans.detach()  # spans open at exit stay in the ring's table: they never ended
            if self._ring is not None:
                self._ring.close()
                self._ring = None
            self.mode = CLOSED
        if fallback is not None:
            fallback.close(timeout_s)

    # --- internals (all under self._lock) -------------------------------------------------------

    def _ring_for_spans_locked(self) -> Ring | None:
        """on_end's slow path: the ring to write into, creating it (or connecting a forked child) first."""
        if self.mode == NEW and self._forked:
            self._connect_locked()
        if self.mode in (DISCONNECTED, CLOSED):
            self._count_locked(DISCONNECTED_DROP)
            return None
        ring = self._open_ring_locked()
        if ring is None:
            self._count_locked(NO_MEMORY)
        return ring

    def _open_ring_locked(self) -> Ring | None:
        if self._ring is None:
            try:
                self._ring = Ring(self.ring_capacity)
            except (OSError, ValueError) as error:
                warn_once("ring", "afterglow: cannot allocate the span ring (%s); spans are counted as lost", error)
                return None
            self._drain_asked_at = 0
            self._stalled_at = -1
        return self._ring

    def _not_plain_locked(self, ring: Ring, unread: int) -> None:
        """on_end's other outcomes: the span did not fit (counted), or the ring is past its high-water mark."""
        if unread == NO_ROOM:
            self._count_locked(BUFFER_FULL)
        elif unread == TOO_BIG:
            self._count_locked(OVERSIZED)
        self._high_water_locked(ring)

    def _high_water_locked(self, ring: Ring) -> None:
        """A long invocation filled the ring past its mark: ask the extension to read it (DRAIN), once until it has
        read up to there. The one moment the extension is woken while the handler runs."""
        if ring.unread >= self._high_water:
            self._drain_locked(ring)

    def _drain_locked(self, ring: Ring, everything: bool = False) -> None:
        """DRAIN: wake the extension to read the ring up to here (not again until it has read past the last one;
        ``everything``: before a wait for it, unless the last one asked for all that is written already)."""
        if self.mode == SOCKET and (ring.seen_read >= self._drain_asked_at
                                    or (everything and self._drain_asked_at < ring.written)):
            self._drain_asked_at = ring.written
            self._send_locked(wire.frame(wire.DRAIN, [ring.written]))

    def _finish_locked(self, request_id: str, sampled: bool) -> InProcessFallback | None:
        self._deferred_end = None
        self._start = None
        if self.mode == FALLBACK:
            drops, self._drops = self._drops, {}
            ring = self._open_ring_locked()
            written = ring.written if ring is not None else 0
            frames = ring.take() if ring is not None else b""
            if self._fallback is not None:
                self._fallback.write(frames + wire.frame(wire.END, [request_id, sampled, drops, written]))
            return self._fallback
        while self.mode == SOCKET and (ring := self._ring) is not None:
            drops, self._drops = self._drops, {}
            end = [request_id, sampled, drops, ring.written]
            # A polled ring takes END with the extension's next pass (no write, no wake-up); else, or when it has no
            # room, the socket, which wakes the extension to make room.
            if (ring.polled and ring.put(wire.END, end)) or self._send_locked(wire.frame(wire.END, end)):
                self._logged_drops = {}
                return None
            for reason, count in drops.items():  # not delivered: the counts wait for the next END
                self._count_locked(reason, count)
        if self.mode in (DISCONNECTED, CLOSED):
            self._log_loss_locked(request_id)
        return None

    def _send_locked(self, frame: bytes) -> bool:
        """Write a frame on the socket. False when the connection was lost (then reconnected, if allowed)."""
        connection = self._connection
        if connection is None:
            return False
        try:
            connection.send(frame)
        except ConnectionLost as error:
            self._lost_locked(error)
            if self._may_reconnect:
                self._may_reconnect = False
                log.debug("afterglow: connection to the extension lost (%s); reconnecting once", error)
                self._connect_locked()
            return False
        self.writes += 1
        return True

    def _connect_locked(self) -> None:
        first = self.mode == NEW and not self._forked
        ring = self._open_ring_locked()
        if ring is None:
            self.mode = FALLBACK if first else DISCONNECTED
            self._lost_because = "no memory for the span ring"
            if first:
                self.open_spans.disable()
            return
        hello = {"tracer": f"afterglow-python {__version__}", "pid": os.getpid(), "resource": self.resource,
                 "ring": ring.capacity if ring.fd is not None else 0}
        try:
            if ring.fd is None:
                raise OSError(errno.ENOSYS, "no shared memory for the span ring")
            self._connection = Connection.open(self.path, wire.frame(wire.HELLO, hello), ring.fd)
        except OSError as error:
            if first:
                self.mode = FALLBACK
                self._fallback_announce(error, hello)
            else:
                self.mode = DISCONNECTED  # without a ring: spans are counted, not kept for nobody
                self._lost_because = f"cannot reconnect: {error.strerror or error}"
                log.debug("afterglow: cannot connect to the extension at %s (%s)", self.path, error)
                self.open_spans.detach()
                ring.close()
                self._ring = None
                carried, self._carried = self._carried, b""
                if carried:
                    self._count_locked(DISCONNECTED_DROP, count_frames(carried, wire.SPANS))
            return
        self.writes += 1
        self.mode = SOCKET
        self._lost_because = None
        self.open_spans.attach(ring.header)
        carried, self._carried = self._carried, b""
        if carried and not ring.put_frames(carried):  # a reconnect within an invocation: its frames move along
            self._count_locked(DISCONNECTED_DROP, count_frames(carried, wire.SPANS))

    def _lost_locked(self, error: OSError) -> None:
        """The extension went away. What it had not read of earlier invocations is lost with it (counted); the
        current invocation's frames are still in our ring, and move to the next connection's."""
        ring = self._ring
        if ring is not None:
            self._carried = ring.unread_since(self._invocation_at)
            earlier = ring.unread_since(0)[: -len(self._carried) or None]
            lost = count_frames(earlier, wire.SPANS)
            if lost:
                self._count_locked(DISCONNECTED_DROP, lost)
            self.open_spans.detach(abandon=True)  # we live on: this ring's table must not be read as our crash
            ring.close()
            self._ring = None
            self._invocation_at = 0
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.mode = DISCONNECTED
        self._lost_because = f"connection lost: {error.strerror or error}"

    def _fallback_announce(self, error: OSError, hello: dict[str, Any]) -> None:
        self.open_spans.disable()  # no extension will read it: spans stop paying for the table
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
        self._fallback.write(wire.frame(wire.HELLO, {**hello, "ring": 0}))

    def _count_locked(self, reason: str, count: int = 1) -> None:
        self._drops[reason] = self._drops.get(reason, 0) + count

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
