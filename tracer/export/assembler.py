"""Groups the spans of each invocation and decides when an invocation is over.

The receiver thread reports frames per connection (one connection per function process); the telemetry
listener reports ``platform.runtimeDone``; the main thread registers each INVOKE and waits here until the
invocation is over. Finished spans go straight to the buffer; the invocation span's START record is kept aside
so that, when the function dies before END, the invocation span can still be emitted with status ERROR and a
``faas.error`` marker (``timeout`` or ``crash``), next to the children that had already arrived.

It also remembers, per invocation, what the log pipeline needs (the trace and invocation span ids, the resource
and the runtime's pid), and hands the invocation span to the ``RuntimeWatch`` for its profile attributes.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from tracer import wire
from tracer.export.buffer import SpanBuffer
from tracer.export.diagnostics import log
from tracer.export.stats import Stats

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, Protocol

    from tracer.export.buffer import Resource

    class RuntimeWatch(Protocol):
        """What the assembler asks of the extension's ``extension.profile.RuntimeWatch`` (none in-process)."""

        def begin(self, request_id: str, pid: int) -> None: ...
        def attributes(self, request_id: str, pid: int) -> dict[str, Any]: ...


_KEEP_FINISHED = 256  # finished invocation records kept to recognise late frames and telemetry


class Outcome(enum.Enum):
    ENDED = "ended"  # END arrived: every span of the invocation is in the buffer
    UNTRACED = "untraced"  # the platform says the runtime is done and neither START nor END came
    CRASHED = "crashed"  # START without END, and the runtime exited or failed
    TIMED_OUT = "timed_out"  # START without END past the deadline
    INCOMPLETE = "incomplete"  # START without END, the runtime reported success: the END was lost
    PENDING = "pending"  # nothing came within the wait without telemetry; handled if it arrives later


MARKERS = {
    Outcome.CRASHED: "crash",
    Outcome.TIMED_OUT: "timeout",
}


class _Connection:
    __slots__ = ("current", "pid", "resource")

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.pid: int | None = None  # the function process, from HELLO
        self.current: str | None = None  # request id of the invocation this process is in (START to END)


class Correlation:
    """What a log line of an invocation is stamped with."""

    __slots__ = ("resource", "span_id", "trace_flags", "trace_id")

    def __init__(self, trace_id: bytes | None, span_id: bytes | None, trace_flags: int, resource: Resource) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.trace_flags = trace_flags
        self.resource = resource


class _Invocation:
    __slots__ = ("connection", "deadline_ns", "failed", "lost_connection", "outcome", "pid", "request_id", "resource",
                 "runtime_done", "runtime_error", "span_id", "start", "trace_flags", "trace_id", "unended")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.deadline_ns = 0
        self.start: list[Any] | None = None
        self.resource: Resource = {}
        self.connection: int | None = None
        self.runtime_done: str | None = None  # status from platform.runtimeDone
        self.runtime_error: str | None = None
        self.lost_connection = False
        self.outcome: Outcome | None = None
        self.trace_id: bytes | None = None  # kept after END, for log lines that arrive later
        self.span_id: bytes | None = None
        self.trace_flags = 0
        self.pid: int | None = None
        self.failed = False  # the invocation span ended with status ERROR
        self.unended: list[list[Any]] = []  # spans open in it when its process died, ended with the invocation span


class Assembler:
    def __init__(self, buffer: SpanBuffer, stats: Stats, clock_ns: Callable[[], int] = time.time_ns,
                 watch: RuntimeWatch | None = None) -> None:
        self.buffer = buffer
        self._stats = stats
        self._clock_ns = clock_ns
        self._watch = watch
        self.latest_pid: int | None = None  # the function process that said HELLO last
        self.latest_resource: Resource | None = None
        # Held as ``with self._lock``, the Condition's own lock: a Condition's ``with`` is one Python call more (0.2 us
        # of 0.5 here), at every frame and event; waits and notifications still go through ``_cond``.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._connections: dict[int, _Connection] = {}
        self._invocations: OrderedDict[str, _Invocation] = OrderedDict()
        self._no_resource: Resource = {}
        self._synthesized: OrderedDict[bytes, None] = OrderedDict()  # span ids we emitted for dead invocations

    # --- what the receiver reports (one call per frame) ------------------------------------------

    def connected(self, conn: int) -> None:
        with self._lock:
            self._connections[conn] = _Connection(self._no_resource)

    def hello(self, conn: int, payload: dict[str, Any]) -> None:
        with self._lock:
            state = self._connections.setdefault(conn, _Connection(self._no_resource))
            state.resource = dict(payload.get("resource") or {})
            state.pid = payload.get("pid") or None
            self.latest_pid, self.latest_resource = state.pid, state.resource
        log.debug("function process %s connected (tracer %s)", payload.get("pid"), payload.get("tracer"))

    def start(self, conn: int, request_id: str, span: list[Any]) -> None:
        with self._lock:
            state = self._connections.setdefault(conn, _Connection(self._no_resource))
            state.current = request_id
            invocation = self._invocation(request_id)
            if invocation.outcome is None:
                invocation.start = span
                invocation.resource = state.resource
                invocation.connection = conn
            invocation.trace_id, invocation.span_id = span[wire.TRACE_ID], span[wire.SPAN_ID]
            invocation.trace_flags = span[wire.TRACE_FLAGS]
            invocation.pid = pid = state.pid
            self._cond.notify_all()
        if self._watch is not None and pid:
            self._guarded(self._watch.begin, request_id, pid)

    def spans(self, conn: int, spans: list[list[Any]], sizes: list[int]) -> None:
        with self._lock:
            state = self._connections.setdefault(conn, _Connection(self._no_resource))
            key, resource = state.current, state.resource
            current = self._invocations.get(key) if key is not None else None
            invocation_span_id = current.start[wire.SPAN_ID] if current is not None and current.start else None
            if self._synthesized:
                kept = [index for index, span in enumerate(spans) if span[wire.SPAN_ID] not in self._synthesized]
                if len(kept) < len(spans):  # the real span of an invocation we already emitted: never twice
                    self._stats.drop("superseded", len(spans) - len(kept))
                    spans, sizes = [spans[i] for i in kept], [sizes[i] for i in kept]
        if invocation_span_id is not None:
            for span in spans:
                if span[wire.SPAN_ID] == invocation_span_id:
                    self._invocation_span_ended(current, span)  # type: ignore[arg-type]
        self._stats.add("received", len(spans))
        self.buffer.add(resource, key, spans, sizes)

    def end(self, conn: int, request_id: str, sampled: bool, dropped: dict[str, int]) -> None:
        for reason, count in dropped.items():
            self._stats.drop(f"function.{reason}", count)
        with self._lock:
            state = self._connections.get(conn)
            if state is not None and state.current == request_id:
                state.current = None
            invocation = self._invocation(request_id)
            if state is not None and invocation.pid is None:
                invocation.pid = state.pid
            if invocation.outcome is None:
                invocation.outcome = Outcome.ENDED
                invocation.start = None
            self._cond.notify_all()

    def unended(self, conn: int, records: list[list[Any]]) -> None:
        """The spans process ``conn`` had started and not ended when it died (its open-span table). Those of an
        open invocation end with it (``_finalize``: when and why the invocation span does); others end now."""
        with self._lock:
            state = self._connections.get(conn)
            key = state.current if state is not None else None
            resource = state.resource if state is not None else self._no_resource
            invocation = self._invocations.get(key) if key is not None else None
            start_id = invocation.start[wire.SPAN_ID] if invocation is not None and invocation.start else None
            # START stands for the invocation span; a span already made here is never made twice
            records = [record for record in records
                       if record[wire.SPAN_ID] != start_id and record[wire.SPAN_ID] not in self._synthesized]
            if invocation is not None and invocation.outcome is None:
                invocation.unended.extend(records)
                return
            if records:
                self._emit_unended(resource, key, records, self._clock_ns(), "The process ended before the span did")

    def in_invocation(self, conn: int) -> bool:
        """Whether process ``conn`` is inside an invocation (START seen, END not yet)."""
        with self._lock:
            state = self._connections.get(conn)
            return state is not None and state.current is not None

    def disconnected(self, conn: int) -> None:
        with self._lock:
            state = self._connections.pop(conn, None)
            if state is not None and state.current is not None:
                invocation = self._invocations.get(state.current)
                if invocation is not None and invocation.outcome is None:
                    invocation.lost_connection = True
            self._cond.notify_all()

    # --- what the platform reports -----------------------------------------------------------------

    def invoke(self, request_id: str, deadline_ms: int) -> None:
        with self._lock:
            for earlier in self._invocations.values():  # a new INVOKE: the earlier untraced ones are over
                if earlier.outcome is None and earlier.start is None and earlier.request_id != request_id:
                    earlier.outcome = Outcome.UNTRACED
            self._invocation(request_id).deadline_ns = max(0, deadline_ms) * 1_000_000

    def runtime_done(self, request_id: str, status: str, error_type: str | None = None) -> None:
        with self._lock:
            invocation = self._invocation(request_id)
            invocation.runtime_done = (status or "unknown").lower()
            invocation.runtime_error = error_type
            self._cond.notify_all()

    # --- what the log pipeline asks -------------------------------------------------------------------

    def correlation(self, request_id: str | None) -> Correlation | None:
        """The trace ids and resource of a traced invocation (START seen); None otherwise."""
        if request_id is None:
            return None
        with self._lock:
            invocation = self._invocations.get(request_id)
            if invocation is None or invocation.trace_id is None:
                return None
            return Correlation(invocation.trace_id, invocation.span_id, invocation.trace_flags, invocation.resource)

    def runtime_done_seen(self, request_id: str) -> bool:
        with self._lock:
            invocation = self._invocations.get(request_id)
            return invocation is not None and invocation.runtime_done is not None

    def wait_runtime_done(self, request_id: str, timeout_s: float) -> bool:
        """Block until ``platform.runtimeDone`` for ``request_id`` has arrived (the runtime's log lines precede
        it), at most ``timeout_s``. True when it has."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                invocation = self._invocations.get(request_id)
                if invocation is not None and invocation.runtime_done is not None:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)

    def process_of(self, request_id: str) -> tuple[int | None, bool]:
        """(pid of the function process that ran the invocation, whether its invocation span ended in error)."""
        with self._lock:
            invocation = self._invocations.get(request_id)
            return (invocation.pid, invocation.failed) if invocation is not None else (None, False)

    # --- what the main thread asks ------------------------------------------------------------------

    def wait(
        self,
        request_id: str,
        start_wait_s: float | None,
        sync: Callable[[], None] | None = None,
    ) -> Outcome:
        """Block until the invocation is over; emit the invocation span of a dead one.

        ``start_wait_s`` (used when telemetry is unavailable): give up when neither START nor END has come within
        that long, so an untraced function never holds the extension until its timeout. ``sync`` drains frames
        already written to the socket, before a verdict that depends on END not having arrived.
        """
        give_up_ns = self._clock_ns() + int(start_wait_s * 1e9) if start_wait_s is not None else None
        synced = False
        while True:
            with self._lock:
                invocation = self._invocation(request_id)
                verdict = self._verdict(invocation, give_up_ns)
                if verdict is None:
                    self._cond.wait(self._wait_s(invocation, give_up_ns))
                    continue
                if verdict is Outcome.ENDED:
                    return verdict
            if not synced and sync is not None:
                sync()  # the END may be in the socket already: read it before declaring the invocation dead
                synced = True
                continue
            with self._lock:
                if invocation.outcome is not None:
                    return invocation.outcome
                if verdict is Outcome.PENDING:
                    return verdict
                self._finalize(invocation, verdict)
                return verdict

    def _verdict(self, invocation: _Invocation, give_up_ns: int | None) -> Outcome | None:
        if invocation.outcome is not None:
            return invocation.outcome
        now = self._clock_ns()
        started = invocation.start is not None
        if invocation.lost_connection:
            return Outcome.TIMED_OUT if invocation.deadline_ns and now >= invocation.deadline_ns else Outcome.CRASHED
        if invocation.runtime_done is not None:
            if not started:
                return Outcome.UNTRACED
            if invocation.runtime_done == "timeout":
                return Outcome.TIMED_OUT
            if invocation.runtime_done == "success":
                return Outcome.INCOMPLETE
            return Outcome.CRASHED
        if invocation.deadline_ns and now >= invocation.deadline_ns:
            return Outcome.TIMED_OUT if started else Outcome.PENDING
        if not started and give_up_ns is not None and now >= give_up_ns:
            return Outcome.PENDING
        return None

    def _wait_s(self, invocation: _Invocation, give_up_ns: int | None) -> float:
        limits = [invocation.deadline_ns] if invocation.deadline_ns else []
        if give_up_ns is not None and invocation.start is None:
            limits.append(give_up_ns)
        if not limits:
            return 1.0
        return max(0.0005, min(1.0, (min(limits) - self._clock_ns()) / 1e9))

    def finalize_open(self, outcome: Outcome) -> int:
        """At SHUTDOWN or at a new INVOKE: emit every invocation still open. Returns how many."""
        with self._lock:
            open_ones = [inv for inv in self._invocations.values() if inv.outcome is None and inv.start is not None]
            for invocation in open_ones:
                self._finalize(invocation, outcome)
            for invocation in self._invocations.values():
                if invocation.outcome is None:
                    invocation.outcome = Outcome.UNTRACED
            return len(open_ones)

    def open_invocations(self, exclude: str | None = None) -> list[str]:
        with self._lock:
            return [
                inv.request_id for inv in self._invocations.values()
                if inv.outcome is None and inv.start is not None and inv.request_id != exclude
            ]

    def finalize(self, request_id: str, outcome: Outcome) -> None:
        with self._lock:
            invocation = self._invocations.get(request_id)
            if invocation is not None and invocation.outcome is None:
                self._finalize(invocation, outcome)

    # --- internals ------------------------------------------------------------------------------------

    def _invocation_span_ended(self, invocation: _Invocation, span: list[Any]) -> None:
        """The invocation span has arrived: note its status, add the profile the extension measures."""
        if span[wire.STATUS_CODE] == 2:
            invocation.failed = True
        if self._watch is not None and invocation.pid:
            added = self._guarded(self._watch.attributes, invocation.request_id, invocation.pid)
            if added:
                span[wire.ATTRIBUTES] = {**(span[wire.ATTRIBUTES] or {}), **added}

    def _guarded(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except Exception:  # the profile is a nicety: never lose a span over it
            log.exception("reading the runtime's profile failed (recovered)")
            return None

    def _invocation(self, request_id: str) -> _Invocation:
        invocation = self._invocations.get(request_id)
        if invocation is None:
            invocation = self._invocations[request_id] = _Invocation(request_id)
            # the oldest finished ones go; an open one at the front stays and rotates to the back (rare: O(1) here)
            for _ in range(len(self._invocations) - _KEEP_FINISHED):
                key, oldest = next(iter(self._invocations.items()))
                if oldest.outcome is None:
                    self._invocations.move_to_end(key)
                else:
                    del self._invocations[key]
        return invocation

    def _finalize(self, invocation: _Invocation, outcome: Outcome) -> None:
        """Mark the invocation over; emit its invocation span from START when it never ended."""
        invocation.outcome = outcome
        start, invocation.start = invocation.start, None
        unended, invocation.unended = invocation.unended, []
        for state in self._connections.values():
            if state.current == invocation.request_id:
                state.current = None
        if start is None:
            if unended:
                self._emit_unended(invocation.resource, invocation.request_id, unended, self._clock_ns(),
                                   _UNENDED_DESCRIPTIONS.get(outcome, _UNENDED_DESCRIPTIONS[Outcome.CRASHED]))
            return
        span = synthesize_invocation_span(start, outcome, self._clock_ns(), invocation.deadline_ns,
                                          invocation.runtime_error)
        self._stats.add("synthesized")
        self._remember_synthesized(span[wire.SPAN_ID])
        self.buffer.add(invocation.resource, invocation.request_id, [span], [_approx_size(span)])
        if unended:  # they end when and as the invocation span does
            self._emit_unended(invocation.resource, invocation.request_id, unended, span[wire.END_NS],
                               _UNENDED_DESCRIPTIONS.get(outcome, _UNENDED_DESCRIPTIONS[Outcome.CRASHED]))
        still_open = f", and the {len(unended)} spans still open in it" if unended else ""
        if outcome is Outcome.INCOMPLETE:  # the runtime did not fail: its END was lost, or never read (SHUTDOWN)
            log.warning("invocation %s: its end never reached the extension; emitting its span from its start, "
                        "marked afterglow.incomplete%s", invocation.request_id, still_open)
        else:
            log.warning("invocation %s %s before it ended: emitting its span with status ERROR%s",
                        invocation.request_id, "timed out" if outcome is Outcome.TIMED_OUT else "died", still_open)

    def _emit_unended(self, resource: Resource, request_id: str | None, records: list[list[Any]], end_ns: int,
                      description: str) -> None:
        """Spans that never ended: status ERROR, ``afterglow.span.unended``, ending at ``end_ns``."""
        spans = [unended_span(record, end_ns, description) for record in records]
        for span in spans:
            self._remember_synthesized(span[wire.SPAN_ID])
        self._stats.add("synthesized", len(spans))
        self.buffer.add(resource, request_id, spans, [_approx_size(span) for span in spans])

    def _remember_synthesized(self, span_id: bytes) -> None:
        self._synthesized[span_id] = None
        if len(self._synthesized) > _KEEP_FINISHED:
            self._synthesized.popitem(last=False)


def synthesize_invocation_span(
    start: list[Any], outcome: Outcome, now_ns: int, deadline_ns: int = 0, error_type: str | None = None
) -> list[Any]:
    """The invocation span as it would have ended: status ERROR plus ``faas.error`` (or UNSET for a lost END)."""
    span = list(start)
    begun = span[wire.START_NS]
    attributes = dict(span[wire.ATTRIBUTES] or {})
    if outcome is Outcome.TIMED_OUT:
        end = deadline_ns if deadline_ns > begun else now_ns
        span[wire.STATUS_CODE] = 2
        span[wire.STATUS_DESCRIPTION] = f"Task timed out after {max(0, end - begun) / 1e9:.2f} seconds"
        attributes["faas.error"] = "timeout"
    elif outcome is Outcome.INCOMPLETE:
        end = now_ns
        attributes["afterglow.incomplete"] = True
    else:
        end = now_ns
        span[wire.STATUS_CODE] = 2
        span[wire.STATUS_DESCRIPTION] = (
            f"The runtime exited before the invocation ended ({error_type})" if error_type
            else "The runtime exited before the invocation ended"
        )
        attributes["faas.error"] = "crash"
    span[wire.END_NS] = max(end, begun)
    span[wire.ATTRIBUTES] = attributes
    return span


UNENDED_ATTRIBUTE = "afterglow.span.unended"  # a span the extension ended: the process died while it was open
_UNENDED_DESCRIPTIONS = {
    Outcome.TIMED_OUT: "The invocation timed out before the span ended",
    Outcome.CRASHED: "The runtime exited before the span ended",
    Outcome.INCOMPLETE: "The span had not ended when the invocation was declared over",
}


def unended_span(record: list[Any], end_ns: int, description: str) -> list[Any]:
    """A span from the function's open-span table, ended by the extension: status ERROR, ``afterglow.span.unended``,
    ``end_ns`` (never before its start)."""
    span = list(record)
    span[wire.END_NS] = max(end_ns, span[wire.START_NS])
    span[wire.STATUS_CODE] = 2
    span[wire.STATUS_DESCRIPTION] = description
    span[wire.ATTRIBUTES] = {**(span[wire.ATTRIBUTES] or {}), UNENDED_ATTRIBUTE: True}
    return span


def _approx_size(span: list[Any]) -> int:
    return 200 + sum(len(str(k)) + len(str(v)) for k, v in (span[wire.ATTRIBUTES] or {}).items())
