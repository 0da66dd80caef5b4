"""What the sandbox hands back to callers: invocations, reports, log lines and shutdown records.

These are plain values, filled in by the sandbox's event-loop thread and read from the caller's threads;
``Recorder`` is the one thread-safe place where they meet.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class LogLine(NamedTuple):
    """One line of output, as CloudWatch would store it.

    ``source`` is ``"function"`` (the runtime's stdout/stderr), ``"extension"`` (an extension's), or
    ``"platform"`` (START / END / REPORT and the sandbox's own notices). ``name`` is the function name,
    the extension's file name, or ``"platform"``. ``time`` is epoch seconds.
    """

    source: str
    name: str
    text: str
    time: float


class Shutdown(NamedTuple):
    """One end of an execution environment: why, who got the SHUTDOWN event, and its deadline."""

    reason: str  # "spindown" | "timeout" | "failure"
    extensions: tuple[str, ...]  # extensions sent the SHUTDOWN event, in order
    deadline_ms: int  # the absolute deadlineMs in the event
    time: float


@dataclass(frozen=True)
class ProcessCost:
    """What one process of the environment used during one invoke phase (thaw to freeze)."""

    name: str  # "runtime", or the extension's file name
    cpu_ms: float  # user + system
    user_ms: float | None  # None where the sandbox can only see the total (no cgroup)
    system_ms: float | None
    peak_rss_mb: float  # the process's peak resident memory so far (VmHWM)


@dataclass(frozen=True)
class Cost:
    """What the function's owner pays for one invocation: every process's CPU, and the billed time."""

    processes: tuple[ProcessCost, ...]  # the runtime first, then the extensions by name
    billed_duration_ms: int
    post_runtime_extensions_ms: float | None
    frozen: bool  # measured from thaw to freeze (False: the environment was never frozen)

    @property
    def cpu_ms(self) -> float:
        """CPU of the whole environment (runtime and extensions)."""
        return sum(process.cpu_ms for process in self.processes)

    def process(self, name: str) -> ProcessCost | None:
        return next((process for process in self.processes if process.name == name), None)


@dataclass(frozen=True)
class Report:
    """The platform's report of one invoke phase (what ``platform.report`` and the REPORT line say)."""

    request_id: str
    status: str  # "success" | "error" | "timeout" | "failure"
    error_type: str | None
    duration_ms: float  # platform.start -> the runtime and every INVOKE extension called next
    billed_duration_ms: int
    init_duration_ms: float | None  # None when warm
    post_runtime_extensions_ms: float | None  # runtime's next -> last extension's next; None if never reached
    runtime_duration_ms: float | None  # platform.start -> runtime's next (platform.runtimeDone metrics)
    max_memory_used_mb: int
    memory_size_mb: int
    cost: Cost | None = None  # None for an invocation whose environment never started


MAX_KEPT = 200_000  # log lines kept for inspection: a long-running sandbox must not grow without bound


class Recorder:
    """Thread-safe store of log lines, reports and shutdowns; optional live callback for front doors."""

    def __init__(self, on_log: Callable[[LogLine], None] | None = None,
                 on_report: Callable[[Report], None] | None = None) -> None:
        self._lock = threading.Condition()
        self._logs: deque[LogLine] = deque(maxlen=MAX_KEPT)
        self._reports: dict[str, Report] = {}
        self._shutdowns: list[Shutdown] = []
        self._on_log = on_log
        self._on_report = on_report

    def log(self, line: LogLine) -> None:
        with self._lock:
            self._logs.append(line)
        if self._on_log is not None:
            with contextlib.suppress(Exception):  # a front door's printing problem must not stop the platform
                self._on_log(line)

    def report(self, report: Report) -> None:
        with self._lock:
            self._reports[report.request_id] = report
            self._lock.notify_all()
        if self._on_report is not None:
            with contextlib.suppress(Exception):
                self._on_report(report)

    def shutdown(self, record: Shutdown) -> None:
        with self._lock:
            self._shutdowns.append(record)
            self._lock.notify_all()

    @property
    def logs(self) -> list[LogLine]:
        with self._lock:
            return list(self._logs)

    @property
    def shutdowns(self) -> list[Shutdown]:
        with self._lock:
            return list(self._shutdowns)

    def wait_report(self, request_id: str, timeout: float) -> Report:
        with self._lock:
            if not self._lock.wait_for(lambda: request_id in self._reports, timeout):
                raise TimeoutError(f"no report for request {request_id} within {timeout} s")
            return self._reports[request_id]

    def wait_shutdowns(self, count: int, timeout: float) -> list[Shutdown]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._shutdowns) >= count, timeout):
                raise TimeoutError(f"fewer than {count} shutdowns within {timeout} s")
            return list(self._shutdowns)


@dataclass(frozen=True)
class Invocation:
    """What the caller of one invoke saw, plus a handle on the platform's report of it."""

    status: int  # HTTP status (200 even for handler errors, as Lambda's Invoke API)
    body: bytes
    headers: Mapping[str, str]
    function_error: str | None  # None or "Unhandled" (X-Amz-Function-Error)
    request_id: str
    latency_ms: float  # request sent -> response received, as the caller saw it
    _recorder: Recorder = field(repr=False, compare=False)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def log_tail(self) -> str | None:
        """The log's last 4 KB that Lambda returns to a caller that asked for it (X-Amz-Log-Type: Tail)."""
        encoded = self.headers.get("X-Amz-Log-Result")
        return None if encoded is None else base64.b64decode(encoded).decode("utf-8", errors="replace")

    def report(self, timeout: float = 10.0) -> Report:
        """Block until the invoke phase is over (extensions done) and return its report."""
        return self._recorder.wait_report(self.request_id, timeout)

    def cost(self, timeout: float = 10.0) -> Cost | None:
        """What every process of the environment used for this invocation (waits for the report)."""
        return self.report(timeout).cost
