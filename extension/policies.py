"""When the signals leave (``AFTERGLOW_FLUSH``), one listener per policy, and the last export every policy shares.

- ``FlushAtEnd`` (``end``): after each invocation, within the flush budget; spans leave while the log lines are
  awaited. Printed waterfalls go one signal after the other, the lines first, so that they find their trace.
- ``FlushPeriodically`` (``periodic,<ms>``): at an INVOKE, when due, export what earlier invocations left while
  this one runs; wait for it (within the budget) at its end; and at an invocation's end, while the span buffer is
  past a quarter of its bounds (spans come faster than the period exports them), export then, within the budget.
- ``FlushInBackground`` (``background``, ``extension.background``): a thread exports while the environment runs;
  the extension follows no invocation.
- ``FlushAtExit``: at SHUTDOWN (or when the Extensions API is lost), everything left, by the deadline.

The first two register the extension for INVOKE and need ``platform.runtimeDone`` from the Telemetry API.
"""

from __future__ import annotations

import time

from extension.background import BackgroundExporter
from extension.lifecycle import Listener
from tracer.export.diagnostics import log

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Sequence

    from extension.backpressure import BackPressure
    from extension.lifecycle import Invocation, Shutdown
    from extension.signals import Signal
    from tracer.export.flush import Flusher, FlushJob, FlushPolicy

FOLLOWING_TELEMETRY_TYPES = ("platform",)  # runtimeDone says an invocation is over when END does not
TELEMETRY_BUFFER_MS = 25  # following each invocation: its runtimeDone as early as Lambda sends it
# Background export: one delivery per export interval, not one per invocation; within what Lambda accepts.
TELEMETRY_BUFFER_MS_RANGE = (25, 30_000)
HIGH_WATER_SHARE = 0.25  # of a buffer's bound: past it, the background export goes at once
IN_FLIGHT_POLL_S = 0.01  # at SHUTDOWN, after the last export: how often to look whether a request in flight ended


def _exporting(signals: Sequence[Signal]) -> list[Signal]:
    return [signal for signal in signals if signal.flusher is not None]


def _submit(flusher: Flusher, until: float, force: bool = False) -> FlushJob:
    return flusher.submit(until, until if force else until + flusher.request_timeout_s, force)


def _wait(job: FlushJob, until: float) -> None:
    job.done.wait(max(0.0, until - time.monotonic()))


class FlushAtEnd(Listener):
    follows_invocations = True
    telemetry_types = FOLLOWING_TELEMETRY_TYPES
    telemetry_buffer_ms = TELEMETRY_BUFFER_MS

    def __init__(self, signals: Sequence[Signal], one_after_another: bool) -> None:
        """``signals`` in the order they leave; ``one_after_another`` (printing): in reverse, each done first."""
        self.signals = list(signals)
        self.one_after_another = one_after_another

    def invocation_over(self, invocation: Invocation) -> None:
        """Every signal, in parallel, within the budget (``invocation.until``)."""
        signals = _exporting(self.signals)
        if self.one_after_another:
            signals.reverse()  # a waterfall prints its lines: they must be there first
        jobs = []
        for signal in signals:
            signal.prepare(invocation, complete=True)
            assert signal.flusher is not None
            jobs.append(_submit(signal.flusher, invocation.until))
            if self.one_after_another:
                _wait(jobs[-1], invocation.until)
        for job in jobs:
            _wait(job, invocation.until)


class FlushPeriodically(Listener):
    follows_invocations = True
    telemetry_types = FOLLOWING_TELEMETRY_TYPES
    telemetry_buffer_ms = TELEMETRY_BUFFER_MS

    def __init__(self, signals: Sequence[Signal], policy: FlushPolicy, budget_s: float,
                 back_pressure: BackPressure | None = None) -> None:
        """``signals``: the first one's last flush says when the next is due; ``back_pressure``: whether the span
        buffer is past its mark and holding the environment for an export can help."""
        self.signals = list(signals)
        self.policy = policy
        self.budget_s = budget_s
        self.back_pressure = back_pressure
        self._jobs: dict[int, FlushJob | None] = {}  # per signal: the export started at an INVOKE, not yet done

    def invoked(self, invocation: Invocation) -> None:
        signals = _exporting(self.signals)
        now = time.monotonic()
        first = signals[0].flusher if signals else None
        if first is None or self._jobs.get(id(signals[0])) is not None or not self.policy.due(first.last_flush, now):
            return
        # Export what earlier invocations left while this one runs; wait for it (within budget) at its end.
        for signal in signals:
            if self._jobs.get(id(signal)) is None:
                assert signal.flusher is not None
                self._jobs[id(signal)] = signal.flusher.submit(
                    now + self.budget_s, now + self.budget_s + signal.flusher.request_timeout_s)

    def invocation_over(self, invocation: Invocation) -> None:
        signals = _exporting(self.signals)
        for signal in signals:
            signal.prepare(invocation, complete=False)
        for signal in signals:
            job = self._jobs.get(id(signal))
            if job is not None:
                job.done.wait(max(0.0, job.soft_deadline - time.monotonic()))
                self._jobs[id(signal)] = None if job.done.is_set() else job
        self._catch_up(signals)

    def _catch_up(self, signals: Sequence[Signal]) -> None:
        """Spans come faster than the period exports them (big invocations back to back): export now, holding the
        environment (billed, after the response) within the budget, rather than let the buffer drop the oldest.
        Not while the collector fails (holding would not help) nor while an export is still in flight."""
        back_pressure = self.back_pressure
        spans = signals[0] if signals else None
        if back_pressure is None or spans is None or spans.flusher is None or self._jobs.get(id(spans)) is not None:
            return
        if not back_pressure.past_high_water() or not back_pressure.active:
            return
        until = time.monotonic() + self.budget_s
        job = _submit(spans.flusher, until)
        _wait(job, until)
        if not job.done.is_set():
            self._jobs[id(spans)] = job  # waited for at the next invocation's end, never submitted twice


class FlushInBackground(Listener):
    def __init__(self, signals: Sequence[Signal], interval_s: float, before_pass: Callable[[], None],
                 after_pass: Callable[[], None], back_pressure: BackPressure | None = None) -> None:
        """``before_pass`` collects what the functions wrote (their rings are read on this schedule, not per
        invocation); ``after_pass`` reports the pass's drops; ``back_pressure``: a ring whose read stopped for room
        wakes the export, which goes again at once after a pass that made room."""
        self.back_pressure = back_pressure
        self.signals = list(signals)
        self.interval_s = interval_s
        # Log lines come as often as the passes that export them: a delivery read sooner would wait for the pass.
        low, high = TELEMETRY_BUFFER_MS_RANGE
        self.telemetry_buffer_ms = min(high, max(low, round(interval_s * 1000)))
        self.before_pass = before_pass
        self.after_pass = after_pass
        self.background: BackgroundExporter | None = None

    def ready(self, telemetry_active: bool) -> None:
        signals = _exporting(self.signals)
        flushers = [signal.flusher for signal in signals if signal.flusher is not None]
        back_pressure = self.back_pressure
        self.background = BackgroundExporter(flushers, self.interval_s, self.after_pass, before_pass=self.before_pass,
                                             behind=back_pressure.behind if back_pressure is not None else None)
        if back_pressure is not None:
            back_pressure.on_full = self.background.high_water
        for flusher in flushers:
            flusher.buffer.high_water = max(1, int(flusher.buffer.max_spans * HIGH_WATER_SHARE))
            flusher.buffer.high_water_bytes = max(1, int(flusher.buffer.max_bytes * HIGH_WATER_SHARE))
            flusher.buffer.on_high_water = self.background.high_water
        for signal in signals:  # the exporter is light (no SDK): it loads now, not in an invocation's thaw
            if signal.loader is not None:
                signal.loader.begin()
        self.background.start()

    def stop(self) -> None:
        if self.background is not None:
            self.background.stop()


class FlushAtExit(Listener):
    def __init__(self, signals: Sequence[Signal], one_after_another: bool, cancel: threading.Event) -> None:
        """``signals``: the spans first (their count is logged); ``one_after_another``: printing."""
        self.signals = list(signals)
        self.one_after_another = one_after_another
        self.cancel = cancel

    def shutting_down(self, shutdown: Shutdown) -> None:
        spans = self.signals[0].flusher
        log.info("SHUTDOWN (%s): %d spans to export within %.0f ms", shutdown.reason or "unknown",
                 spans.buffer.held if spans is not None else 0,
                 max(0.0, shutdown.deadline - time.monotonic()) * 1000)
        self.cancel.set()  # a backoff sleeping in an earlier flush returns now
        for signal in _exporting(self.signals):
            assert signal.flusher is not None
            signal.flusher.wind_down()  # a background pass in progress stops after its request in flight

    def exiting(self, shutdown: Shutdown) -> None:
        """Export everything left, the signals side by side, by the deadline; count what is not."""
        signals = _exporting(self.signals)
        signals.reverse()  # log lines before the spans: a printed waterfall shows the lines it has
        deadline = shutdown.deadline
        jobs = []
        for signal in signals:
            signal.before_exit()
            assert signal.flusher is not None
            jobs.append(_submit(signal.flusher, deadline, force=True))
            if self.one_after_another:  # printing: one after the other, so that lines find their trace
                _wait(jobs[-1], deadline)
        for job in jobs:
            _wait(job, deadline)
        for signal in signals:
            assert signal.flusher is not None
            buffer = signal.flusher.buffer
            buffer.clear(shutdown.drop_reason)
        # A request still in flight (a background pass's, wound down) may be answered before the deadline: counted
        # as exported then, not as lost.
        while any(signal.flusher is not None and signal.flusher.buffer.held for signal in signals) and (
            time.monotonic() < deadline
        ):
            time.sleep(IN_FLIGHT_POLL_S)
        for signal in signals:
            assert signal.flusher is not None and signal.stats is not None
            buffer = signal.flusher.buffer
            buffer.clear(shutdown.drop_reason)
            in_flight = buffer.held
            if in_flight:
                signal.stats.drop(f"{shutdown.drop_reason}_in_flight", in_flight)
            signal.stats.new_drops()
