"""Which invocation is running and when it is over: the span socket's receiver and the assembler, as a listener.

The lifecycle loop asks ``wait`` after every INVOKE. The verdict comes from the assembler: END on the socket (the
function's ring read up to it first), the connection closing, ``platform.runtimeDone`` from the Telemetry API,
the deadline, or, without telemetry, no sign of life for a short while.
"""

from __future__ import annotations

import contextlib
import os

from extension.lifecycle import Listener
from extension.receiver import Receiver, bind_socket
from tracer.export.assembler import Assembler, Outcome

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any

    from extension.lifecycle import Invocation, Shutdown
    from tracer.export.stats import Stats

START_WAIT_WITHOUT_TELEMETRY_S = 0.1  # no START/END this long after INVOKE, and no telemetry: assume untraced
SHUTDOWN_OUTCOMES = {"timeout": Outcome.TIMED_OUT, "failure": Outcome.CRASHED}  # else INCOMPLETE


class InvocationTracker(Listener):
    def __init__(self, socket_path: str, assembler: Assembler, stats: Stats) -> None:
        self.socket_path = socket_path
        self.assembler = assembler
        self.stats = stats
        self.receiver: Receiver | None = None

    def start(self, registration: dict[str, Any]) -> None:
        listener = bind_socket(self.socket_path)
        self.receiver = Receiver(listener, self.assembler, self.stats)
        self.receiver.start()

    def sync(self) -> None:
        """Read what every function process has written so far (rings included)."""
        if self.receiver is not None:
            self.receiver.sync()

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
        self.sync()
        self.assembler.finalize_open(SHUTDOWN_OUTCOMES.get(shutdown.reason, Outcome.INCOMPLETE))

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
