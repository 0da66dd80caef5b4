"""One log record as it waits for export: made by the extension's ``function_logs``, written by ``log_encoder``."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any

FUNCTION_SCOPE = "afterglow.lambda.function"  # the function's own lines


class LogEntry:
    """One log record as it waits for export (``log_encoder`` writes its OTLP form when it is exported)."""

    __slots__ = ("attributes", "body", "event_name", "observed_ns", "request_id", "scope", "severity_number",
                 "severity_text", "span_id", "time_ns", "trace_flags", "trace_id")

    def __init__(self, body: Any, time_ns: int, observed_ns: int, scope: str = FUNCTION_SCOPE) -> None:
        self.body = body
        self.time_ns = time_ns
        self.observed_ns = observed_ns
        self.scope = scope
        self.severity_text = ""
        self.severity_number = 0
        self.attributes: dict[str, Any] = {}
        self.request_id: str | None = None
        self.trace_id: bytes | None = None
        self.span_id: bytes | None = None
        self.trace_flags = 0
        self.event_name: str | None = None

    def size(self) -> int:
        """About the encoded size, to keep export requests under the collector's limits."""
        body = self.body
        size = 120 + (len(body) if isinstance(body, str) else 64 * len(body) if isinstance(body, dict) else 16)
        for key, value in self.attributes.items():
            size += len(key) + (len(value) if isinstance(value, str) else 16)
        return size

    def __repr__(self) -> str:
        return f"LogEntry({self.severity_text or '-'} {self.request_id} {str(self.body)[:60]!r})"
