"""When to export (``AFTERGLOW_FLUSH``), and the flush itself under a time budget (``AFTERGLOW_FLUSH_BUDGET_MS``).

A flush leases chunks from the buffer and hands them to the sink until the buffer is empty, the budget is
spent or the sink says to stop. It runs on its own thread: the main loop waits at most the budget, then goes
back to ``event/next``; a request already in flight may finish in the background (it is never started twice,
and its chunk leaves the buffer only if the collector accepted it), but no new request starts after the budget.
"""

from __future__ import annotations

import threading
import time

from tracer import config
from tracer.export.buffer import SpanBuffer
from tracer.export.diagnostics import log
from tracer.export.exporter import ExportResult, SinkLoader
from tracer.export.stats import Stats
from tracer.export.supervise import supervised

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

# Spans a request carries at most, unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE says otherwise. Not the SDK's 512: a backlog
# leaves at one round trip per request, and with a collector 50 ms away 512 a request capped it at about 10,000 spans
# a second (bursts of 1,000-span invocations lost 14,000 to 38,600 of 91,091 at SHUTDOWN, counted; none with 4,096).
CHUNK_SPANS = 4096
CHUNK_BYTES = 2 * 1024 * 1024  # well under the 4 MiB a gRPC collector accepts by default


def spans_per_request() -> int:
    return config.read_int(config.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, CHUNK_SPANS, minimum=1)


END, PERIODIC, BACKGROUND = "end", "periodic", "background"
# Not the SDK's 5 s (OTEL_BSP_SCHEDULE_DELAY's default): measured side by side at 20 invocations a second, 5 s cut
# the extension's CPU per invocation by about a fifth (0.47 to 0.51 ms against 0.59 to 0.63), but at 128 MB's CPU
# share its larger passes ran the environment out of its CPU quota, and billed time grew (p99 +41 to +90 ms against
# +3 to +43): DESIGN.md, "When spans leave".
DEFAULT_BACKGROUND_INTERVAL_MS = 1000
DEFAULT_POLICY = BACKGROUND


class FlushPolicy:
    """When spans leave, and whether the extension holds the environment for it.

    ``background`` (the default): the extension registers for SHUTDOWN only, so Lambda never waits for it after
    a response and never wakes it per invocation; it exports while invocations run, at most every ``interval_s``
    (and at once when much is buffered), and everything at SHUTDOWN. ``end`` and ``periodic`` register for
    INVOKE and export after the response, before ``event/next``, within the flush budget: fresher, but billed.
    """

    __slots__ = ("interval_s", "mode")

    def __init__(self, mode: str = END, interval_s: float = 0.0) -> None:
        self.mode = mode
        self.interval_s = interval_s

    @property
    def periodic(self) -> bool:
        return self.mode == PERIODIC

    @property
    def background(self) -> bool:
        return self.mode == BACKGROUND

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FlushPolicy) and (self.mode, self.interval_s) == (other.mode, other.interval_s)

    def __hash__(self) -> int:
        return hash((self.mode, self.interval_s))

    def __repr__(self) -> str:
        return f"FlushPolicy({self.describe()})"

    @classmethod
    def parse(cls, text: str, background_ms: int = DEFAULT_BACKGROUND_INTERVAL_MS) -> FlushPolicy:
        """``background[,<ms>]`` (``background``: every ``background_ms``), ``end`` or ``periodic,<ms>``; raises
        ValueError otherwise."""
        mode, _, argument = text.strip().lower().partition(",")
        mode, argument = mode.strip(), argument.strip()
        if mode == END and not argument:
            return cls()
        if mode == BACKGROUND and not argument:
            return cls(BACKGROUND, background_ms / 1000)
        if mode in (PERIODIC, BACKGROUND):
            try:
                interval_ms = int(argument)
            except ValueError:
                raise ValueError(f"{mode} needs an interval in ms, e.g. {mode},60000; got {text!r}") from None
            if interval_ms < 0:
                raise ValueError(f"negative flush interval in {text!r}")
            return cls(mode, interval_ms / 1000)
        raise ValueError(f"expected 'background[,<ms>]', 'end' or 'periodic,<ms>', got {text!r}")

    def due(self, last_flush: float, now: float) -> bool:
        return self.mode == END or now - last_flush >= self.interval_s

    def describe(self) -> str:
        if self.mode == BACKGROUND:
            return f"in the background while invocations run, at most every {self.interval_s * 1000:g} ms"
        return f"periodic every {self.interval_s * 1000:g} ms" if self.periodic else "at the end of each invocation"


def read_flush_policy(printing: bool = False) -> FlushPolicy:
    """``AFTERGLOW_FLUSH``; by default ``background`` when exporting, ``end`` when printing waterfalls (a developer
    running the function locally wants each trace right after its invocation)."""
    default = END if printing else DEFAULT_POLICY
    text = config.read_str(config.AFTERGLOW_FLUSH, default)
    background_ms = config.read_int(config.OTEL_BSP_SCHEDULE_DELAY, DEFAULT_BACKGROUND_INTERVAL_MS)
    try:
        return FlushPolicy.parse(text, background_ms)
    except ValueError as error:
        fallback = FlushPolicy.parse(default, background_ms)
        log.warning("ignoring %s=%r (%s); flushing %s", config.AFTERGLOW_FLUSH, text, error, fallback.describe())
        return fallback


class FlushJob:
    def __init__(self, soft_deadline: float, hard_deadline: float, force: bool, most: int | None = None) -> None:
        """``most``: stop once that many spans (or log records) went, None: when the buffer is empty."""
        self.soft_deadline = soft_deadline
        self.hard_deadline = hard_deadline
        self.force = force
        self.most = most
        self.done = threading.Event()
        self.exported = 0
        self.result: ExportResult | None = None  # the last chunk's result; None if there was nothing to send


NO_ENDPOINT = "no_endpoint"  # drop reason once the collector said it has no endpoint for the signal
FLUSHER_FAILED = "flusher_failed"  # drop reason once the export thread failed for good


class Flusher:
    def __init__(self, buffer: SpanBuffer, loader: SinkLoader, stats: Stats, request_timeout_s: float = 10.0,
                 chunk_spans: int = CHUNK_SPANS, chunk_bytes: int = CHUNK_BYTES, what: str = "spans",
                 when_unsupported: str | None = None) -> None:
        """``when_unsupported``: None, an answer saying there is no endpoint for the signal drops the chunk like
        any refusal; else the one line to log (``{answer}``: the answer) when it comes, after which this flusher stops
        exporting for good and counts what it is given as dropped (the extension's logs: a collector without a
        logs endpoint will not grow one during this environment's life)."""
        self.buffer = buffer
        self.what = what  # "spans" or "log records": the same flush serves both signals, each with its own buffer
        self.when_unsupported = when_unsupported
        self.stopped = False  # the collector has no endpoint for this signal
        # The last export got an answer (accepted or refused): holding spans back for it can help. False while the
        # collector is unreachable, timing out or unconfirmed (``extension.backpressure``: drop the oldest instead).
        self.delivering = True
        # Called when whether holding spans back can help changes: ``delivering`` flips, or the worker fails for good.
        self.on_delivering: Callable[[], None] | None = None
        self.request_timeout_s = request_timeout_s
        self.loader = loader
        self._stats = stats
        self._chunk_spans = chunk_spans
        self._chunk_bytes = chunk_bytes
        self._cond = threading.Condition()
        self._queue: list[FlushJob] = []
        self._stopping = False
        self.failed = False  # the worker thread failed for good
        self._thread: threading.Thread | None = None
        self._running = threading.Lock()  # one flush at a time, on the worker or inline
        self._current: FlushJob | None = None  # the job running now
        self.winding_down = False  # SHUTDOWN: only forced jobs run
        self.last_flush = time.monotonic()

    # --- asynchronous use (the extension) ----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=supervised(f"{self.what} export", self._work, self._give_up,
                                                          lambda: self._stopping),
                                        name=f"afterglow-flush-{self.what.split()[0]}", daemon=True)
        self._thread.start()

    def submit(self, soft_deadline: float, hard_deadline: float, force: bool = False) -> FlushJob:
        """Queue a flush for the worker thread (started now if it was not); jobs run one after the other, never two
        at once."""
        job = FlushJob(soft_deadline, hard_deadline, force)
        if self.failed:  # nobody would run it: what waits is dropped and counted, and nobody waits in vain
            self.buffer.clear(FLUSHER_FAILED)
            job.done.set()
            return job
        if self._thread is None and not self._stopping:
            self.start()
        with self._cond:
            self._queue.append(job)
            self._cond.notify()
        self.last_flush = time.monotonic()
        return job

    def flush(self, budget_s: float) -> FlushJob:
        """Flush now and wait at most ``budget_s``; an attempt in flight may finish after that."""
        now = time.monotonic()
        job = self.submit(now + budget_s, now + budget_s + self.request_timeout_s)
        job.done.wait(budget_s)
        return job

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(1.0)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._queue:
                    return
                job = self._queue.pop(0)
            self.run_here(job)

    def run_here(self, job: FlushJob) -> None:
        """Run ``job`` on the calling thread (the background export's own: a thread less to wake at every thaw), once
        an export in progress is over."""
        try:
            with self._running:
                self._current = job
                try:
                    self.run(job)
                finally:
                    self._current = None
        except Exception:  # never lose the caller; the spans stay buffered
            log.exception("flush failed (recovered)")
        finally:
            job.done.set()

    def wind_down(self) -> None:
        """SHUTDOWN: the export in progress ends after its request in flight, and only forced ones run from now on
        (SHUTDOWN's own): a background pass, which may take a request timeout (10 s), must not hold them up."""
        self.winding_down = True
        job = self._current
        if job is not None and not job.force:
            job.soft_deadline = min(job.soft_deadline, time.monotonic())

    def _delivery_changed(self) -> None:
        if self.on_delivering is not None:
            self.on_delivering()

    def _give_up(self) -> None:
        """The worker failed for good: from now on what is buffered is dropped and counted at each flush."""
        self.failed = True
        self._delivery_changed()
        with self._cond:
            jobs, self._queue = self._queue, []
        dropped = self.buffer.clear(FLUSHER_FAILED)
        log.error("the %s export thread stopped for good: %s are no longer exported in this environment and are "
                  "counted as %s (%d so far)", self.what, self.what, FLUSHER_FAILED, dropped)
        for job in jobs:
            job.done.set()

    # --- the flush itself -----------------------------------------------------------------------------

    def run(self, job: FlushJob) -> None:
        """Export chunks until the buffer is empty (or ``job.most`` went), the budget is spent or the sink says
        stop."""
        if self.stopped:
            self.buffer.clear(NO_ENDPOINT, announce=False)
            return
        if self.winding_down and not job.force:
            return
        sink = self.loader.get(until=job.soft_deadline)
        if sink is None:
            if self.buffer.pending:
                job.result = ExportResult.NOT_READY
            return
        taken = 0
        while time.monotonic() < job.soft_deadline:
            if job.most is not None and taken >= job.most:
                return
            most = self._chunk_spans if job.most is None else min(self._chunk_spans, job.most - taken)
            lease = self.buffer.take(most, self._chunk_bytes)
            if lease is None:
                return
            taken += lease.spans
            outcome = sink.export(lease.batches, job.soft_deadline, job.hard_deadline, job.force)
            job.result = outcome.result
            delivering = outcome.result in (ExportResult.SUCCESS, ExportResult.REJECTED)
            if delivering is not self.delivering:
                self.delivering = delivering
                self._delivery_changed()
            if outcome.result is ExportResult.SUCCESS:
                self.buffer.commit(lease)
                job.exported += lease.spans
                if outcome.rejected_spans:
                    self._stats.drop("collector_rejected", outcome.rejected_spans)
                    self._stats.add("exported", -outcome.rejected_spans)
            elif outcome.result is ExportResult.NOT_EXPORTED:  # said once at start, not at every flush
                self.buffer.discard(lease, "not_exported")
            elif outcome.result is ExportResult.UNCONFIRMED:
                self.buffer.discard(lease, "unconfirmed")
                log.error("no answer from the collector for %d %s it may have accepted (%s): not sent again, "
                          "counted as unconfirmed", lease.spans, self.what, outcome.detail)
            elif outcome.result is ExportResult.UNSUPPORTED and self.when_unsupported is not None:
                self.stopped = True
                log.warning("%s", self.when_unsupported.replace("{answer}", outcome.detail))
                self.buffer.discard(lease, NO_ENDPOINT, announce=False)
                self.buffer.clear(NO_ENDPOINT, announce=False)
                return
            elif outcome.result in (ExportResult.REJECTED, ExportResult.UNSUPPORTED):
                self.buffer.discard(lease, "rejected")
                log.error("could not deliver %d %s, for good (%s); dropped", lease.spans, self.what, outcome.detail)
            else:
                self.buffer.release(lease)
                return
