"""Exporting one chunk of spans: OTLP with retries, backoff and a circuit breaker, or the waterfall printer.

Results are values (``ExportResult``), never exceptions. Retries happen only on retryable answers (HTTP 429,
502, 503, 504, connection errors; the gRPC equivalents), honour ``Retry-After``, back off exponentially with
jitter, and only while the next attempt still fits the flush budget; a shutdown cuts the wait short. An answer that
says the endpoint does not exist (``UNSUPPORTED``) is never retried: the flusher decides what it means.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Sequence

from tracer.export.buffer import Batch
from tracer.export.diagnostics import log
from tracer.export.otlp_config import OtlpSettings

TYPE_CHECKING = False  # typing and http.client cost start-up time; the transport loads after the first INVOKE
if TYPE_CHECKING:
    from typing import Protocol

    from tracer.export.breaker import CircuitBreaker
    from tracer.export.transport import Attempt, Transport

    class Sink(Protocol):
        def export(self, batches: Sequence[Batch], soft_deadline: float, hard_deadline: float,
                   force: bool = False) -> ExportOutcome: ...

        def close(self) -> None: ...



class MissingExtra(RuntimeError):
    """An optional dependency the configured export needs is not installed; the message names the install."""


class ExportResult(enum.Enum):
    SUCCESS = "success"  # the collector accepted the chunk
    REJECTED = "rejected"  # the collector refused it for good (non-retryable answer): drop it
    UNCONFIRMED = "unconfirmed"  # sent whole, never answered: the collector may have it; never sent again
    UNSUPPORTED = "unsupported"  # the collector has no endpoint for this signal (HTTP 404/405/415/501, UNIMPLEMENTED)
    RETRY_LATER = "retry_later"  # retryable failure and no time left to retry now: keep it buffered
    BREAKER_OPEN = "breaker_open"  # not attempted: the collector is known down or asked us to wait
    NOT_READY = "not_ready"  # the exporter was still loading when the flush ran out of time
    NOT_EXPORTED = "not_exported"  # the signal's settings cannot work (said once at start): drop and count


class ExportOutcome:
    __slots__ = ("attempts", "detail", "rejected_spans", "result")

    def __init__(self, result: ExportResult, attempts: int = 0, detail: str = "", rejected_spans: int = 0) -> None:
        self.result = result
        self.attempts = attempts
        self.detail = detail
        self.rejected_spans = rejected_spans

    def __repr__(self) -> str:
        return f"ExportOutcome({self.result.value}, attempts={self.attempts}, detail={self.detail!r})"


class PrintSink:
    """The embedded default: print the waterfall. Always succeeds."""

    def __init__(self, write: Callable[[Sequence[Batch]], None]) -> None:
        self._write = write

    def export(self, batches: Sequence[Batch], soft_deadline: float, hard_deadline: float,
               force: bool = False) -> ExportOutcome:
        self._write(batches)
        return ExportOutcome(ExportResult.SUCCESS, attempts=1)

    def close(self) -> None:
        pass


class UnusableSettingsSink:
    """A signal whose OTLP settings cannot work (``OtlpSettings.problems``, one line each at start): its chunks are
    dropped and counted at once, without a connection, a DNS lookup or the exporter's imports."""

    def __init__(self, settings: OtlpSettings) -> None:
        self.settings = settings

    def export(self, batches: Sequence[Batch], soft_deadline: float, hard_deadline: float,
               force: bool = False) -> ExportOutcome:
        return ExportOutcome(ExportResult.NOT_EXPORTED, detail="; ".join(self.settings.problems))

    def close(self) -> None:
        pass


class OtlpSink:
    """Encodes a chunk into an OTLP request's bytes (``encode``) and sends it through ``transport`` with retries and
    the breaker.

    Deadlines are ``time.monotonic()`` values: no attempt *starts* after ``soft_deadline`` (the flush budget);
    a request in flight may run until ``min(hard_deadline, now + OTLP timeout)``.
    """

    def __init__(self, settings: OtlpSettings, transport: Transport, encode: Callable[[Sequence[Batch]], bytes],
                 breaker: CircuitBreaker | None = None, cancel: threading.Event | None = None,
                 base_backoff_s: float = 0.05, max_backoff_s: float = 2.0) -> None:
        from tracer.export.breaker import BreakerState, CircuitBreaker  # with the sink: off the extension's start

        self.settings = settings
        self.transport = transport
        self.breaker = breaker or CircuitBreaker()
        self._closed = BreakerState.CLOSED
        self._encode = encode
        self._cancel = cancel or threading.Event()
        self._never = threading.Event()  # what a forced (SHUTDOWN) export waits on: only its deadline stops it
        self._base_backoff_s = base_backoff_s
        self._max_backoff_s = max_backoff_s
        self._last_failure = ""

    def backoff_s(self, retry: int) -> float:
        """Exponential backoff with +-20% jitter: base, 2*base, 4*base, ... capped."""
        import random  # only ever after a failure: not worth its start-up cost

        return float(min(self._max_backoff_s, self._base_backoff_s * 2**retry) * random.uniform(0.8, 1.2))

    def export(self, batches: Sequence[Batch], soft_deadline: float, hard_deadline: float,
               force: bool = False) -> ExportOutcome:
        if not self.breaker.allow(force):
            return ExportOutcome(ExportResult.BREAKER_OPEN, detail=f"collector held back for "
                                 f"{self.breaker.wait_s():.1f}s more")
        request = self._encode(batches)
        attempts = 0
        while True:
            timeout = min(self.settings.timeout_s, hard_deadline - time.monotonic())
            if timeout <= 0:
                return ExportOutcome(ExportResult.RETRY_LATER, attempts, "no time left")
            attempt: Attempt = self.transport.send(request, timeout)
            attempts += 1
            if attempt.ok:
                self.breaker.success()
                if self._last_failure:
                    log.warning("collector reachable again (%s)", self.settings.describe())
                    self._last_failure = ""
                return ExportOutcome(ExportResult.SUCCESS, attempts, rejected_spans=attempt.rejected_spans)
            self.breaker.failure()
            if attempt.unsupported:  # the flusher says what it means, once
                return ExportOutcome(ExportResult.UNSUPPORTED, attempts, attempt.detail)
            self._note_failure(attempt.detail)
            if attempt.unconfirmed:
                return ExportOutcome(ExportResult.UNCONFIRMED, attempts, attempt.detail)
            if not attempt.retryable:
                return ExportOutcome(ExportResult.REJECTED, attempts, attempt.detail)
            delay = attempt.retry_after_s if attempt.retry_after_s is not None else self.backoff_s(attempts - 1)
            if attempt.retry_after_s is not None:
                self.breaker.hold(attempt.retry_after_s)
            cancel = self._never if force else self._cancel
            held_back = self.breaker.state is not self._closed and not force
            if held_back or cancel.is_set() or time.monotonic() + delay >= soft_deadline:
                return ExportOutcome(ExportResult.RETRY_LATER, attempts, attempt.detail)
            if cancel.wait(delay):
                return ExportOutcome(ExportResult.RETRY_LATER, attempts, attempt.detail)

    def _note_failure(self, detail: str) -> None:
        if detail != self._last_failure:  # one line per kind of failure, not one per attempt
            log.warning("export to the collector failed: %s (%s)", detail, self.settings.describe())
            self._last_failure = detail

    def close(self) -> None:
        self.transport.close()


def build_otlp_sink(settings: OtlpSettings, cancel: threading.Event | None = None) -> Sink:
    """The span encoder and the transport (``http11`` over a socket; ``grpc`` when that protocol is chosen)."""
    if settings.problems:
        return UnusableSettingsSink(settings)
    from tracer.export.span_encoder import SpanEncoder
    from tracer.export.transport import make_transport

    return OtlpSink(settings, make_transport(settings), SpanEncoder().request, cancel=cancel)


def build_otlp_log_sink(settings: OtlpSettings, cancel: threading.Event | None = None) -> Sink:
    """The same for log records: the log encoder, its own connection and circuit breaker."""
    if settings.problems:
        return UnusableSettingsSink(settings)
    from tracer.export.log_encoder import LogEncoder
    from tracer.export.transport import make_transport

    return OtlpSink(settings, make_transport(settings, "logs"), LogEncoder().request, cancel=cancel)


class SinkLoader:
    """Loads the sink in a background thread (``begin``) so the import never delays ``event/next``."""

    def __init__(self, factory: Callable[[], Sink]) -> None:
        self._factory = factory
        self._sink: Sink | None = None
        self._failed: BaseException | None = None
        self._ready = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    @property
    def failed(self) -> BaseException | None:
        return self._failed

    def begin(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="afterglow-exporter-import", daemon=True).start()

    def _load(self) -> None:
        try:
            self._sink = self._factory()
        except Exception as error:  # reported once; flushes then keep spans until shutdown counts them
            self._failed = error
            explained = isinstance(error, MissingExtra)  # its message says what to install: no class name
            log.error("cannot load the OTLP exporter: %s%s", "" if explained else f"{type(error).__name__}: ", error)
        finally:
            self._ready.set()

    def get(self, until: float | None) -> Sink | None:
        """The sink, waiting at most until ``until`` (monotonic; None: as long as it takes)."""
        self.begin()
        timeout = None if until is None else max(0.0, until - time.monotonic())
        self._ready.wait(timeout)
        return self._sink

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
