"""Back-pressure: while the span buffer is full, spans wait in the function's ring instead of being dropped.

The ring is memory the function already pays for (8 MiB): what this process has not read yet costs it nothing.
So, with background export, the receiver reads a ring a step at a time only while the buffer holds less than its
read limit (an eighth of its bounds: the decoded spans, not the ring's bytes, are what makes this process's memory
grow, and what SHUTDOWN must still send when invocations stop), and the export, once it has made room, reads on.
Behind by more than a sixteenth of the ring, the function waits after its response (``tracer._handoff``, billed,
never the caller's latency) for as long as the bound this side stores in the ring (``wire.RING_HOLD_MS_WORD``): the
extension only gets CPU while the runtime works. ``periodic`` holds the environment itself: at an invocation's end,
past a quarter of the buffer, it exports (``extension.policies``).

Holding helps only while the collector takes what is sent. Once an export fails (unreachable, timing out, no
answer), reading goes on to the buffer's bounds, the oldest are dropped and counted (``buffer_full``) as before, and
the hold bound in every ring is zero, so the function never waits for an export that cannot come.
"""

from __future__ import annotations

import time

from tracer.export.buffer import SpanBuffer

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from tracer.export.flush import Flusher

READ_LIMIT_SHARE = 0.125  # of the buffer's bounds (spans, bytes): reading stops there while the export catches up
HIGH_WATER_SHARE = 0.25  # of the buffer's bounds: past it, a policy that holds the environment exports at once


class BackPressure:
    def __init__(self, buffer: SpanBuffer, flusher: Flusher | None, hold_ms: int) -> None:
        """``hold_ms``: how long the function may wait after a response for its ring to drain below the mark
        (the flush budget with background export; 0 where the policy holds the environment itself)."""
        self.buffer = buffer
        self.flusher = flusher
        self.hold_ms = max(0, int(hold_ms))
        self.read_limit = max(1, int(buffer.max_spans * READ_LIMIT_SHARE))
        self.read_limit_bytes = max(1, int(buffer.max_bytes * READ_LIMIT_SHARE))
        self.on_full: Callable[[], None] | None = None  # a read stopped for room: wake the export
        self.on_change: Callable[[], None] | None = None  # ``active`` changed: store the new bound in the rings
        self.withheld = False  # a read stopped for room since ``behind`` was last asked
        if flusher is not None:
            flusher.on_delivering = self._changed

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    @property
    def active(self) -> bool:
        """Hold spans back rather than drop the oldest: only while the collector takes what is sent."""
        flusher = self.flusher
        return flusher is not None and flusher.delivering and not flusher.failed and not flusher.stopped

    def room(self) -> bool:
        """May the receiver read another step of a ring now? (Called before each step of a capped read.)"""
        buffer = self.buffer
        if (buffer.held < self.read_limit and buffer.held_bytes < self.read_limit_bytes) or not self.active:
            return True
        self.withheld = True
        if self.on_full is not None:
            self.on_full()
        return False

    def past_high_water(self) -> bool:
        buffer = self.buffer
        return (buffer.held >= buffer.max_spans * HIGH_WATER_SHARE
                or buffer.held_bytes >= buffer.max_bytes * HIGH_WATER_SHARE)

    def ring_hold_ms(self) -> int:
        """The bound stored in every ring: how long its function may wait for this side to read."""
        return self.hold_ms if self.active else 0

    def make_room(self, until: float, answered_by: float | None = None) -> bool:
        """Export until ``until`` (SHUTDOWN: no other pass will come), the last request's answer awaited until
        ``answered_by`` (None: ``until``), on the flusher's thread: the caller waits only until ``until``, then goes
        on to count what is left while a request in flight awaits its answer. True once there is room to read on."""
        flusher = self.flusher
        if flusher is None or not self.active:
            return False
        job = flusher.submit(until, max(until, answered_by or until), force=True)  # after a pass in flight
        if not job.done.wait(max(0.0, until - time.monotonic())):
            return False
        buffer = self.buffer
        return self.active and buffer.held < self.read_limit and buffer.held_bytes < self.read_limit_bytes

    def behind(self) -> bool:
        """Did a read stop for room since the last ask? (The export then goes again once it made room.)"""
        withheld, self.withheld = self.withheld, False
        return withheld
