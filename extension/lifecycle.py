"""The Lambda lifecycle as a loop that tells its listeners what happens; the listeners do the work.

The loop registers with the Extensions API, subscribes to the Telemetry API for what its listeners ask, then
serves ``event/next``: at INVOKE it tells every listener the invocation began, waits (through the
``InvocationTracker``) until the invocation is over (END, ``platform.runtimeDone``, the deadline, a crash), tells
them it is over (with its outcome and the flush deadline), then that the extension is going idle; at SHUTDOWN it
tells them the environment is shutting down, then to export what is left and exit. Spans, logs and the profile are
listeners (``extension.signals``), and so is each flush policy (``extension.policies``): a new signal or policy is
a new listener, never a branch here. Listeners hear each event in the order they were given, which is the order
the work must happen in (``extension.main`` composes them). ``InvocationTracker``, below, is what the loop waits on
and a listener too, as opentelemetry-lambda's lifecycle manager waits on its Telemetry API listener.

Nothing here may cost start-up time: only the stdlib pieces needed to reach ``event/next``.
"""

from __future__ import annotations

import contextlib
import os
import time

from extension.lambda_api import ExtensionsApi, LambdaApiError
from extension.receiver import Receiver, SocketSetupError, bind_socket
from extension.telemetry import TelemetryListener
from tracer.export.assembler import Assembler, Outcome
from tracer.export.diagnostics import log

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from extension.backpressure import BackPressure
    from tracer.export.stats import Stats

START_WAIT_WITHOUT_TELEMETRY_S = 0.1  # no START/END this long after INVOKE, and no telemetry: assume untraced
SHUTDOWN_OUTCOMES = {"timeout": Outcome.TIMED_OUT, "failure": Outcome.CRASHED}  # else INCOMPLETE
API_LOST_GRACE_S = 0.5  # the Extensions API went away: this long to export what is left
# Leave this much of SHUTDOWN's deadline to count, write the self-report and exit: Lambda SIGKILLs at the deadline,
# and an export retrying against a dead collector runs until the margin (0.1 s was not always enough on a loaded
# machine, and the report line is what says what was lost).
SHUTDOWN_MARGIN_S = 0.3
# Of SHUTDOWN's time (to the margin): reading what the functions handed over, and exporting it in turns under
# back-pressure. The rest exports what was read; what was not is counted, unread. At 128 MB's CPU share (7% of a core)
# reading on to the deadline left spans read and never exported, or the self-report unwritten at the SIGKILL.
SHUTDOWN_READ_SHARE = 0.6
DEFAULT_TELEMETRY_BUFFER_MS = 25  # how soon Lambda delivers telemetry when no listener says otherwise


class Invocation:
    """One INVOKE, as the listeners see it: filled in as it goes (``outcome``, ``over``, ``until``)."""

    __slots__ = ("_lifecycle", "deadline_ms", "event", "outcome", "over", "request_id", "until")

    def __init__(self, lifecycle: Lifecycle, event: dict[str, Any]) -> None:
        self._lifecycle = lifecycle
        self.event = event
        self.request_id = str(event.get("requestId") or "")
        deadline_ms = event.get("deadlineMs")
        self.deadline_ms = int(deadline_ms) if isinstance(deadline_ms, (int, float)) else 0
        self.outcome: Outcome | None = None  # once over: how it ended
        self.over = 0.0  # once over: when (monotonic)
        self.until = 0.0  # once over: the flush deadline (monotonic), ``over`` plus the flush budget

    @property
    def telemetry_active(self) -> bool:
        """Is the Telemetry API delivering now? (Its listener can fail for good at any moment.)"""
        return self._lifecycle.telemetry_active


class Shutdown:
    """The end of the environment: Lambda's SHUTDOWN, or the Extensions API lost."""

    __slots__ = ("deadline", "drop_reason", "reason")

    def __init__(self, reason: str, deadline: float, drop_reason: str) -> None:
        self.reason = reason  # Lambda's shutdownReason (spindown, timeout, failure); "" when the API was lost
        self.deadline = deadline  # monotonic: everything must be exported by then
        self.drop_reason = drop_reason  # what is left at the end is counted as "<drop_reason>_in_flight"


class Listener:
    """What the loop tells. Every method does nothing by default: a listener overrides what it reacts to."""

    follows_invocations = False  # a flush policy that acts per invocation: the extension then registers for INVOKE
    prepares_for_telemetry = False  # wants ``before_telemetry`` ahead of each Telemetry API delivery
    telemetry_types: tuple[str, ...] = ()  # Telemetry API streams this listener needs
    telemetry_buffer_ms: int | None = None  # how long Lambda may hold telemetry back for this listener

    def start(self, registration: dict[str, Any]) -> None:
        """Registered (``registration``: the Extensions API's answer): start threads. May raise SocketSetupError."""

    def ready(self, telemetry_active: bool) -> None:
        """Started, and subscribed to the Telemetry API (or not): the last step before the first ``event/next``."""

    def before_telemetry(self) -> None:
        """A Telemetry API delivery is about to be handed on (on the listener's thread; ``prepares_for_telemetry``)."""

    def on_telemetry(self, event: dict[str, Any]) -> None:
        """A Telemetry API event (on the listener's thread)."""

    def invoked(self, invocation: Invocation) -> None:
        """INVOKE: the function is running ``invocation``."""

    def invocation_over(self, invocation: Invocation) -> None:
        """``invocation`` is over (``outcome``): the response has gone; flush by ``invocation.until``."""

    def idle(self, invocation: Invocation) -> None:
        """Done with ``invocation``: the extension asks for its next event right after."""

    def shutting_down(self, shutdown: Shutdown) -> None:
        """SHUTDOWN: no invocation is coming any more (not told when the Extensions API was lost)."""

    def exiting(self, shutdown: Shutdown) -> None:
        """Export what is left by ``shutdown.deadline`` and say what could not be."""

    def stop(self) -> None:
        """Release threads and sockets (told in reverse order, once, whatever happened)."""


class Lifecycle:
    def __init__(self, api: ExtensionsApi, tracker: InvocationTracker, listeners: Sequence[Listener],
                 budget_s: float, use_telemetry: bool = True) -> None:
        self.api = api
        self.tracker = tracker  # says when an invocation is over
        self.budget_s = budget_s  # after an invocation, to flush in
        self.listeners = list(listeners)
        self.use_telemetry = use_telemetry
        self.telemetry_active = False
        self.telemetry: TelemetryListener | None = None
        self.post_response_s: list[float] = []  # per invocation: from "invocation over" to the next event/next
        self._started: list[Listener] = []
        self._hearing: list[Listener] = []  # the listeners that react to Telemetry API events

    def run(self) -> int:
        """Register (unless ``api`` is already), set up, then serve events until SHUTDOWN. Returns the process exit
        code."""
        follows = any(listener.follows_invocations for listener in self.listeners)
        events = ("INVOKE", "SHUTDOWN") if follows else ("SHUTDOWN",)
        if self.api.registered_for is None:
            try:
                self.api.register(events)
            except LambdaApiError as error:
                log.error("cannot register with the Extensions API: %s", error)
                return 1
        elif self.api.registered_for != events:  # registered before the listeners existed (extension.main), wrongly
            log.error("registered for %s, but the listeners need %s", self.api.registered_for, events)
            return 1
        try:
            self._set_up(self.api.registration)
        except SocketSetupError as error:
            log.error("%s", error)
            self.api.report_error("init", "Extension.SocketUnavailable", str(error))
            self._tear_down()
            return 1
        try:
            while True:
                event = self.api.next_event()
                kind = event.get("eventType", "").upper()
                if kind == "INVOKE":
                    self.on_invoke(event)
                elif kind == "SHUTDOWN":
                    self.on_shutdown(event)
                    return 0
                else:
                    log.warning("ignoring an unknown event type %r", kind)
        except LambdaApiError as error:
            log.error("lost the Extensions API: %s", error)
            self._exit(Shutdown("", time.monotonic() + API_LOST_GRACE_S, "api_lost"))
            return 1
        finally:
            self._tear_down()

    def _set_up(self, registration: dict[str, Any]) -> None:
        for listener in self.listeners:
            self._started.append(listener)
            listener.start(registration)
        types = tuple(dict.fromkeys(kind for listener in self.listeners for kind in listener.telemetry_types))
        # Only those that react to events hear them: a delivery holds hundreds, each told to each listener.
        self._hearing = [listener for listener in self.listeners
                         if type(listener).on_telemetry is not Listener.on_telemetry]
        if self.use_telemetry and types:
            wishes = [listener.telemetry_buffer_ms for listener in self.listeners
                      if listener.telemetry_buffer_ms is not None]
            try:
                preparing = [listener for listener in self.listeners if listener.prepares_for_telemetry]
                self.telemetry = TelemetryListener(self._on_telemetry, on_failure=self._telemetry_failed,
                                                   before_batch=self._before_telemetry if preparing else None,
                                                   host=self.tracker.receiver)  # one thread fewer to freeze
                self.telemetry.start()
                self.telemetry_active = self.api.subscribe_telemetry(
                    self.telemetry.uri, types, min(wishes) if wishes else DEFAULT_TELEMETRY_BUFFER_MS)
            except OSError as error:
                log.info("no telemetry listener (%s): falling back to bounded waits", error)
        if not self.telemetry_active and self.telemetry is not None:
            self.telemetry.stop()
            self.telemetry = None
        for listener in self.listeners:
            listener.ready(self.telemetry_active)

    def _before_telemetry(self) -> None:
        for listener in self.listeners:
            if listener.prepares_for_telemetry:
                listener.before_telemetry()

    def _on_telemetry(self, event: dict[str, Any]) -> None:
        for listener in self._hearing:
            listener.on_telemetry(event)

    def _telemetry_failed(self) -> None:
        """The listener stopped for good: follow invocations with bounded waits, as without the Telemetry API."""
        self.telemetry_active = False

    def on_invoke(self, event: dict[str, Any]) -> Invocation:
        invocation = Invocation(self, event)
        for listener in self.listeners:
            listener.invoked(invocation)
        invocation.outcome = self.tracker.wait(invocation)
        invocation.over = time.monotonic()
        invocation.until = invocation.over + self.budget_s
        for listener in self.listeners:
            listener.invocation_over(invocation)
        for listener in self.listeners:
            listener.idle(invocation)
        self.post_response_s.append(time.monotonic() - invocation.over)
        if len(self.post_response_s) > 10000:
            del self.post_response_s[:5000]
        return invocation

    def on_shutdown(self, event: dict[str, Any]) -> None:
        reason = str(event.get("shutdownReason") or "").lower()
        deadline_ms = event.get("deadlineMs")
        remaining = (deadline_ms / 1000 - time.time()) if isinstance(deadline_ms, (int, float)) else 1.0
        deadline = time.monotonic() + max(0.0, min(remaining, 30.0) - SHUTDOWN_MARGIN_S)
        shutdown = Shutdown(reason, deadline, "shutdown")
        for listener in self.listeners:
            listener.shutting_down(shutdown)
        self._exit(shutdown)

    def _exit(self, shutdown: Shutdown) -> None:
        for listener in self.listeners:
            listener.exiting(shutdown)

    def _tear_down(self) -> None:
        if self.telemetry is not None:
            self.telemetry.stop()
        for listener in reversed(self._started):
            listener.stop()
        self.api.close()


class InvocationTracker(Listener):
    """Which invocation is running and when it is over: the span socket's receiver and the assembler.

    The loop asks ``wait`` after every INVOKE. The verdict comes from the assembler: END on the socket (the
    function's ring read up to it first), the connection closing, ``platform.runtimeDone`` from the Telemetry API,
    the deadline, or, without telemetry, no sign of life for a short while. As a listener it binds the socket,
    registers each INVOKE (finalising those a new INVOKE shows were over) and, at SHUTDOWN, finalises what is open.
    """

    def __init__(self, socket_path: str, assembler: Assembler, stats: Stats, poll_rings: bool = False,
                 back_pressure: BackPressure | None = None) -> None:
        """``poll_rings`` (background export): the rings are read at ``sync`` (the export's passes, and before each
        Telemetry API delivery, so that its lines find their invocation's START), not when END comes over the
        socket: functions put END into the ring and no invocation wakes the receiver. ``back_pressure``: the
        receiver's (``extension.backpressure``)."""
        self.back_pressure = back_pressure
        self.socket_path = socket_path
        self.assembler = assembler
        self.stats = stats
        self.poll_rings = poll_rings
        self.prepares_for_telemetry = poll_rings
        self.receiver: Receiver | None = None

    def start(self, registration: dict[str, Any]) -> None:
        listener = bind_socket(self.socket_path)
        self.receiver = Receiver(listener, self.assembler, self.stats, poll_rings=self.poll_rings,
                                 back_pressure=self.back_pressure)
        if self.back_pressure is not None:
            self.back_pressure.on_change = self.receiver.refresh_holds
        self.receiver.start()

    def sync(self) -> None:
        """Read what every function process has written so far (rings included)."""
        if self.receiver is not None:
            self.receiver.sync()

    def sync_for_export(self) -> None:
        """Read what the function processes have written, as far as the span buffer has room (back-pressure)."""
        if self.receiver is not None:
            self.receiver.sync(complete=False)

    def before_telemetry(self) -> None:
        # Polled rings: read them before the batch, its lines then find their invocation's START (as far as the
        # buffer has room: read whole, a burst the export is behind on would overflow it).
        self.sync_for_export()

    def on_telemetry(self, event: dict[str, Any]) -> None:
        if event.get("type") == "platform.runtimeDone":
            record = event.get("record")
            if isinstance(record, dict) and isinstance(record.get("requestId"), str):
                self.assembler.runtime_done(record["requestId"], str(record.get("status", "")),
                                            record.get("errorType") if isinstance(record.get("errorType"), str)
                                            else None)

    def invoked(self, invocation: Invocation) -> None:
        stale = self.assembler.open_invocations(exclude=invocation.request_id)
        if stale:  # a new INVOKE means the runtime is done with those: their END was lost
            self.sync()
            for old in stale:
                self.assembler.finalize(old, Outcome.INCOMPLETE)
        self.assembler.invoke(invocation.request_id, invocation.deadline_ms)

    def wait(self, invocation: Invocation) -> Outcome:
        """Block until ``invocation`` is over; its outcome."""
        return self.assembler.wait(invocation.request_id,
                                   None if invocation.telemetry_active else START_WAIT_WITHOUT_TELEMETRY_S, self.sync)

    def shutting_down(self, shutdown: Shutdown) -> None:
        # A burst the frozen extension had not read yet (up to a ring's worth) is read before anything is counted or
        # exported, as far as there is time: what back-pressure left in the rings goes out a buffer's worth at a time
        # (read, export, read on), then the rest is read; at SHUTDOWN_READ_SHARE of the deadline reading stops, and
        # whatever is still unread is counted off the frames' headers (far cheaper than decoding spans there would be
        # no time to export) and dropped as "<drop_reason>_unread". The rest of the deadline exports what was read.
        now = time.monotonic()
        read_until = now + max(0.0, shutdown.deadline - now) * SHUTDOWN_READ_SHARE
        if self.receiver is not None:
            self.receiver.shutting_down()
        self._catch_up(read_until, shutdown.deadline)
        receiver = self.receiver
        if receiver is not None:
            if (left := read_until - time.monotonic()) > 0:
                receiver.sync(left)
            if receiver.halt(f"{shutdown.drop_reason}_unread", shutdown.deadline - time.monotonic()) is None:
                log.warning("SHUTDOWN: the span receiver did not stop reading before the deadline; what it still "
                            "reads is counted with the buffer, what it does not is not in the self-report")
        self.assembler.finalize_open(SHUTDOWN_OUTCOMES.get(shutdown.reason, Outcome.INCOMPLETE))

    def _catch_up(self, until: float, answered_by: float) -> None:
        """Read what back-pressure held in the rings and export it, in turns, until nothing is held or ``until``. A
        request sent by then may wait for its answer until ``answered_by`` (cut short, it would count as lost), on
        the flusher's thread: this one stops reading at ``until`` whatever the collector does, so that what is left
        unread is counted in time for the self-report."""
        back_pressure, receiver = self.back_pressure, self.receiver
        if back_pressure is None or receiver is None:
            return
        back_pressure.behind()  # from here on
        while time.monotonic() < until:
            receiver.sync(max(0.05, until - time.monotonic()), complete=False)
            if not back_pressure.behind() or not back_pressure.make_room(until, answered_by):
                return

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
