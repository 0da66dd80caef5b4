"""Function log lines and platform reports -> log records stamped with their invocation, into a bounded buffer.

The telemetry listener hands over events in the order Lambda delivered them: ``platform.start``, the function's
lines, ``platform.runtimeDone`` (after the runtime asked for its next event), and ``platform.report`` after the
invoke phase, so with the next invocation's flush (or at SHUTDOWN). A line belongs to the invocation its text
names (``[LEVEL]\\t<time>\\t<request id>\\t``, ``requestId`` in the JSON format) or, for ``print`` output and
tracebacks, to the invocation between whose ``platform.start`` and ``platform.runtimeDone`` it came.

Lines of the invocation in progress, and lines outside any invocation, wait here until the main thread
``seal``s the invocation: by then its START frame has been read, so every record gets the invocation's trace
and span ids and the resource of the function process that said HELLO. A line that arrives after its
invocation was sealed is stamped at once and joins the buffer: it leaves with the next flush, never lost,
never sent twice. The buffer is a ``SpanBuffer`` of ``LogEntry`` records with its own bound and counters.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from extension.log_parse import parse_line, parse_time_ns
from tracer.export.buffer import SpanBuffer
from tracer.export.stats import Stats

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any

    from tracer.export.assembler import Correlation
    from tracer.export.buffer import Resource

FUNCTION_SCOPE = "afterglow.lambda.function"  # the function's own lines
PLATFORM_SCOPE = "afterglow.lambda.platform"  # what Lambda reports about each invocation
REPORT_EVENT = "aws.lambda.report"
_KEEP_RUNTIME_DONE = 256  # runtimeDone records waiting for their report


class LogEntry:
    """One log record as it waits for export (``log_encoder`` writes its OTLP form when it is exported)."""

    __slots__ = ("attributes", "body", "event_name", "nbytes", "observed_ns", "request_id", "scope",
                 "severity_number", "severity_text", "span_id", "time_ns", "trace_flags", "trace_id")

    def __init__(self, body: Any, time_ns: int, observed_ns: int, scope: str = FUNCTION_SCOPE,
                 attributes: dict[str, Any] | None = None) -> None:
        self.body = body
        self.time_ns = time_ns
        self.observed_ns = observed_ns
        self.scope = scope
        self.severity_text = ""
        self.severity_number = 0
        self.attributes: dict[str, Any] = {} if attributes is None else attributes
        self.request_id: str | None = None
        self.trace_id: bytes | None = None
        self.span_id: bytes | None = None
        self.trace_flags = 0
        self.event_name: str | None = None
        self.nbytes = 0  # ``size()`` once the record is complete (its attributes set), else 0

    def size(self) -> int:
        """About the encoded size, to keep export requests under the collector's limits."""
        body = self.body
        size = 120 + (len(body) if isinstance(body, str) else 64 * len(body) if isinstance(body, dict) else 16)
        for key, value in self.attributes.items():
            size += len(key) + (len(value) if isinstance(value, str) else 16)
        return size

    def __repr__(self) -> str:
        return f"LogEntry({self.severity_text or '-'} {self.request_id} {str(self.body)[:60]!r})"


def platform_resource(function_name: str | None, function_version: str | None, function_arn: str | None,
                      service_name: str | None, extra: str | None) -> dict[str, Any]:
    """The resource of a function that never said HELLO (not traced): what the Extensions API tells, plus
    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``."""
    from urllib.parse import unquote

    name = function_name or "unknown_service"
    resource: dict[str, Any] = {"service.name": name, "cloud.provider": "aws", "cloud.platform": "aws_lambda",
                                "faas.name": name}
    if function_version:
        resource["faas.version"] = function_version
    parts = (function_arn or "").split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "lambda":
        resource["cloud.region"], resource["cloud.account.id"] = parts[3], parts[4]
    for item in (extra or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            resource[unquote(key.strip())] = unquote(value.strip())
    if service_name:
        resource["service.name"] = service_name
    return resource


def _number(value: object) -> int | float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class LogCollector:
    """``on_event`` from the telemetry listener; ``begin`` and ``seal`` from the main thread."""

    def __init__(self, buffer: SpanBuffer, stats: Stats, correlate: Callable[[str | None], Correlation | None],
                 resource: Callable[[], Resource], keep_untraced: bool = True, reports: bool = True,
                 clock_ns: Callable[[], int] = time.time_ns, seal_at_runtime_done: bool = False) -> None:
        self.buffer = buffer
        self._stats = stats
        self._correlate = correlate
        self._resource = resource
        self._keep_untraced = keep_untraced  # False when printing waterfalls: only lines of a trace are shown
        self._reports = reports
        self._clock_ns = clock_ns
        # Nobody follows the invocations (background export): ``platform.runtimeDone`` seals what waits. By then
        # the invocation's START has long been read (the tracer writes it before the runtime asks for more).
        self._seal_at_runtime_done = seal_at_runtime_done
        self._lock = threading.Lock()
        self._pending: list[LogEntry] = []
        self._pending_bytes = 0  # about the encoded size of ``_pending``: bounded like the buffer, in both
        self._open: str | None = None  # the invocation the main thread is in (INVOKE to seal)
        self._current: str | None = None  # the invocation between platform.start and platform.runtimeDone
        self._runtime_done: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # --- the telemetry listener's side ---------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        record = event.get("record")
        if kind == "function":
            self._line(record, event.get("time"))
        elif not isinstance(record, dict):
            return
        elif kind == "platform.start":
            request_id = record.get("requestId")
            self._current = request_id if isinstance(request_id, str) else None
        elif kind == "platform.runtimeDone":
            request_id = record.get("requestId")
            if isinstance(request_id, str):
                with self._lock:
                    if self._current == request_id:
                        self._current = None
                    if self._reports:
                        self._runtime_done[request_id] = record
                        while len(self._runtime_done) > _KEEP_RUNTIME_DONE:
                            self._runtime_done.popitem(last=False)
            if self._seal_at_runtime_done:
                self.seal()
        elif kind == "platform.report" and self._reports:
            self._report(record, event.get("time"))
        elif kind == "platform.logsDropped":
            dropped = _number(record.get("droppedRecords"))
            if dropped:
                self._stats.drop("lambda_dropped", int(dropped))  # the platform's own count of lines we missed

    def _line(self, record: Any, when: object) -> None:
        parsed = parse_line(record)
        observed = self._clock_ns()
        entry = LogEntry(parsed.body, parsed.time_ns or parse_time_ns(when) or observed, observed,
                         attributes=parsed.attributes)
        entry.severity_text, entry.severity_number = parsed.severity_text, parsed.severity_number
        entry.request_id = parsed.request_id or self._current
        if entry.request_id is not None:
            entry.attributes["faas.invocation_id"] = entry.request_id
        if parsed.trace_id is not None:
            entry.trace_id, entry.span_id, entry.trace_flags = parsed.trace_id, parsed.span_id, parsed.trace_flags
        self._add(entry)

    def _report(self, record: dict[str, Any], when: object) -> None:
        request_id = record.get("requestId")
        if not isinstance(request_id, str):
            return
        with self._lock:
            done = self._runtime_done.pop(request_id, None)
        observed = self._clock_ns()
        entry = report_entry(request_id, record, done, parse_time_ns(when) or observed, observed)
        self._add(entry)

    def _add(self, entry: LogEntry) -> None:
        self._stats.add("received")
        if not entry.nbytes:  # complete from here on: its size is counted twice, computed once
            entry.nbytes = entry.size()
        with self._lock:
            request_id = entry.request_id
            if request_id is None or request_id == self._open or request_id == self._current:
                self._pending.append(entry)  # its invocation is not over: stamped at its seal
                self._pending_bytes += entry.nbytes
                self._bound_pending()
                return
        self._store([entry])

    def _bound_pending(self) -> None:
        """The buffer's bounds (count and bytes) apply to what waits for its seal too: the oldest go first."""
        pending = self._pending
        if len(pending) <= self.buffer.max_spans and self._pending_bytes <= self.buffer.max_bytes:
            return  # the usual case: within both
        cut = max(0, len(pending) - self.buffer.max_spans)
        dropped_bytes = sum(entry.nbytes for entry in pending[:cut])
        while cut < len(pending) and self._pending_bytes - dropped_bytes > self.buffer.max_bytes:
            dropped_bytes += pending[cut].nbytes
            cut += 1
        if cut:
            del pending[:cut]
            self._pending_bytes -= dropped_bytes
            self._stats.drop("buffer_full", cut)

    # --- the main thread's side --------------------------------------------------------------------------

    def begin(self, request_id: str) -> None:
        """INVOKE: lines of this invocation wait for its seal."""
        with self._lock:
            self._open = request_id

    def seal(self) -> int:
        """The invocation is over (its lines are in, or the wait for them ended): stamp what waits and buffer it.
        Returns how many records went to the buffer."""
        with self._lock:
            self._open = None
            pending, self._pending = self._pending, []
            self._pending_bytes = 0
        return self._store(pending)

    def seal_all(self) -> int:
        """SHUTDOWN: everything waiting, then a record for each runtimeDone whose report never came (in that order:
        when the buffer is full, the oldest go first)."""
        stored = self.seal()
        with self._lock:
            orphans, self._runtime_done = self._runtime_done, OrderedDict()
        now = self._clock_ns()
        for request_id, done in orphans.items():
            self._add(report_entry(request_id, None, done, now, now))
        return stored + self.seal()

    def _store(self, entries: list[LogEntry]) -> int:
        stored = 0
        cache: dict[str | None, Correlation | None] = {}
        for entry in entries:
            request_id = entry.request_id
            if request_id not in cache:
                cache[request_id] = self._correlate(request_id)
            correlation = cache[request_id]
            if entry.trace_id is None and correlation is not None and correlation.trace_id is not None:
                entry.trace_id, entry.span_id = correlation.trace_id, correlation.span_id
                entry.trace_flags = correlation.trace_flags
            if entry.trace_id is None and not self._keep_untraced:
                continue
            resource = correlation.resource if correlation is not None and correlation.resource else self._resource()
            self.buffer.add(resource, request_id, [entry], [entry.nbytes or entry.size()])
            stored += 1
        return stored

    @property
    def pending(self) -> int:
        return len(self._pending)


# platform.report metrics -> attribute, its share of the size estimate (``LogEntry.size``), and how CloudWatch's REPORT
# line says it: the label, then the unit. Whole and fractional values are written as the REPORT line writes them.
_REPORT_METRICS = tuple((key, name, len(name) + 16, f"\t{label}: ", f" {unit}") for key, name, label, unit in (
    ("durationMs", "aws.lambda.duration_ms", "Duration", "ms"),
    ("billedDurationMs", "aws.lambda.billed_duration_ms", "Billed Duration", "ms"),
    ("memorySizeMB", "aws.lambda.memory_size_mb", "Memory Size", "MB"),
    ("maxMemoryUsedMB", "aws.lambda.max_memory_used_mb", "Max Memory Used", "MB"),
    ("initDurationMs", "aws.lambda.init_duration_ms", "Init Duration", "ms"),
    ("restoreDurationMs", "aws.lambda.restore_duration_ms", "Restore Duration", "ms"),
))
_RUNTIME_METRICS = (("durationMs", "aws.lambda.runtime.duration_ms"),
                    ("producedBytes", "aws.lambda.runtime.produced_bytes"))
_ID_SIZE = 120 + len("faas.invocation_id")  # a record's base estimate and its invocation id attribute's key


def report_entry(request_id: str, report: dict[str, Any] | None, runtime_done: dict[str, Any] | None,
                 time_ns: int, observed_ns: int) -> LogEntry:
    """The record of one invocation's ``platform.report`` (None when it never came) and ``platform.runtimeDone``.

    One of these is made for every invocation, so it is made in one pass, its size estimate (``LogEntry.size``,
    the same figure) counted as its attributes are set."""
    attributes: dict[str, Any] = {"faas.invocation_id": request_id}
    body = "REPORT RequestId: " + request_id
    size = _ID_SIZE + len(request_id)
    status = None
    if report is not None:
        metrics = report.get("metrics")
        if isinstance(metrics, dict) and metrics:
            for key, name, name_size, label, unit in _REPORT_METRICS:
                value = _number(metrics.get(key))
                if value is not None:
                    attributes[name] = value
                    size += name_size
                    body += f"{label}{value:.2f}{unit}" if isinstance(value, float) else f"{label}{value}{unit}"
        status = report.get("status")
        error_type = report.get("errorType")
        if isinstance(error_type, str):
            attributes["aws.lambda.error_type"] = error_type
            size += 21 + len(error_type)
    if runtime_done is not None:
        runtime_status = runtime_done.get("status")
        if isinstance(runtime_status, str):
            attributes["aws.lambda.runtime.status"] = runtime_status
            size += 25 + len(runtime_status)
            status = status or runtime_status
        error_type = runtime_done.get("errorType")
        if isinstance(error_type, str) and "aws.lambda.error_type" not in attributes:
            attributes["aws.lambda.error_type"] = error_type
            size += 21 + len(error_type)
        metrics = runtime_done.get("metrics")
        if isinstance(metrics, dict) and metrics:
            for key, name in _RUNTIME_METRICS:
                value = _number(metrics.get(key))
                if value is not None:
                    attributes[name] = value
                    size += len(name) + 16
        for span in runtime_done.get("spans") or ():
            if isinstance(span, dict) and span.get("name") == "responseLatency":
                latency = _number(span.get("durationMs"))
                if latency is not None:
                    if "aws.lambda.response_latency_ms" not in attributes:
                        size += 46  # its key's length, and 16
                    attributes["aws.lambda.response_latency_ms"] = latency
    if isinstance(status, str):
        attributes["aws.lambda.status"] = status
        size += 17 + len(status)
        if status != "success":
            body += "\tStatus: " + status
    entry = LogEntry(body, time_ns, observed_ns, PLATFORM_SCOPE, attributes)
    entry.request_id = request_id
    entry.severity_text, entry.severity_number = ("INFO", 9) if status in (None, "success") else ("ERROR", 17)
    entry.event_name = REPORT_EVENT
    entry.nbytes = size + len(body)
    return entry
