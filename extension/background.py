"""``AFTERGLOW_FLUSH=background``: export while the environment runs, never holding it after a response.

The extension registers for SHUTDOWN only, so Lambda neither wakes it per invocation nor waits for it before
freezing the environment: nothing it does is billed as post-runtime time, and a collector's latency is never billed
at all. This thread exports what the buffers hold at most every ``interval_s`` of wall time, counted from the start
of the previous pass (so in the first thaw after that long: the clock runs on while the environment is frozen), at
once when a buffer passes its high-water mark, and leaves the rest to SHUTDOWN. A request in flight when Lambda
freezes the environment finishes at the next thaw: the collector's answer waits in the socket meanwhile. The trade:
spans reach the collector within about ``interval_s`` while invocations keep coming; when they stop, with the next
invocation or at SHUTDOWN.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from tracer.export.diagnostics import log
from tracer.export.flush import Flusher, FlushJob
from tracer.export.supervise import supervised


class BackgroundExporter:
    def __init__(self, flushers: Sequence[Flusher], interval_s: float, after_pass: Callable[[], None] | None = None,
                 before_pass: Callable[[], None] | None = None, behind: Callable[[], bool] | None = None) -> None:
        """``before_pass`` collects what the functions wrote (their rings are read on this schedule, not per
        invocation); ``after_pass`` reports the pass's drops; ``behind``: whether a read stopped for room since
        it was last asked (``extension.backpressure``): after a pass that exported something, another at once."""
        self._behind = behind
        self._flushers = list(flushers)
        self._interval_s = interval_s
        self._after_pass = after_pass
        self._before_pass = before_pass
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.failed = False  # the thread failed for good
        self._fallback_jobs: dict[int, FlushJob] = {}  # per flusher, once failed: the export last handed over

    def start(self) -> None:
        target = supervised("background export", self._run, self._give_up, lambda: self._stopping)
        self._thread = threading.Thread(target=target, name="afterglow-background", daemon=True)
        self._thread.start()

    def high_water(self) -> None:
        """A buffer holds enough to export now (called from the thread that filled it)."""
        if self.failed:  # no thread to wake: hand the export to the flushers' own threads, without waiting
            now = time.monotonic()
            for index, flusher in enumerate(self._flushers):
                queued = self._fallback_jobs.get(index)
                if queued is None or queued.done.is_set():  # one at a time: called at every add past the mark
                    self._fallback_jobs[index] = flusher.submit(now + flusher.request_timeout_s,
                                                                now + 2 * flusher.request_timeout_s)
            return
        self._wake.set()

    def _give_up(self) -> None:
        self.failed = True
        log.error("the background export thread stopped for good: spans and log records now leave only when a buffer "
                  "passes its high-water mark, and at SHUTDOWN; past the buffers' bounds the oldest are dropped and "
                  "counted as buffer_full")

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stopping:
            urgent = self._wake.wait(max(0.0, last + self._interval_s - time.monotonic()))
            self._wake.clear()
            if self._stopping:
                return
            if not urgent and time.monotonic() < last + self._interval_s:
                continue
            # The schedule runs from each pass's start, not its end: a pass waits for the collector's answers (one
            # round trip per signal, stretched to the next thaw), and counting the interval after that made every
            # cycle longer by the collector's latency (1.5-1.8 s instead of 1 s at 200 ms, measured): spans waited
            # that much longer. A pass that takes longer than the interval is followed by the next one at once.
            last = time.monotonic()
            if self._behind is not None:
                self._behind()  # from here on: did this pass's read stop for room?
            if self._before_pass is not None:
                self._before_pass()
            if any(flusher.buffer.pending for flusher in self._flushers):
                exported = 0
                try:
                    exported = self._export()
                except Exception:  # never lose the thread: what was not sent stays buffered
                    log.exception("background export failed (recovered)")
                if exported and self._behind is not None and self._behind():
                    self._wake.set()  # a ring waits for the room this pass made: read and export it now

    def _export(self) -> int:
        # On this thread, one signal after the other: the flushers' own threads would be woken at every thaw
        # (each waiting thread costs the environment 10-15 us of CPU per freeze and thaw), for an export a second.
        # A pass sends what was buffered when it began, not what keeps arriving while it waits for the collector:
        # chasing the arrivals, a collector answering in 1 s held one signal's pass for its whole 10-s budget, one
        # request after another, while the other signal waited (freshness p99 12 s, measured).
        exported = 0
        for flusher in self._flushers:
            now = time.monotonic()
            job = FlushJob(now + flusher.request_timeout_s, now + 2 * flusher.request_timeout_s, False,
                           most=flusher.buffer.pending)
            flusher.run_here(job)
            exported += job.exported
        self.passes += 1
        if self._after_pass is not None:
            self._after_pass()
        return exported
