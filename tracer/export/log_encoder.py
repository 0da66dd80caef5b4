"""Log entries (the extension's ``function_logs.LogEntry``) -> the bytes of an OTLP ExportLogsServiceRequest.

Records are grouped by resource, then scope, in the order they first appear, and each field is what the SDK's
``encode_logs`` writes for the same record: trace and span ids only when set, a severity number outside
SeverityNumber as 0 (unspecified), the body always present (None is the empty AnyValue). Why by hand: ``otlp_proto``.
"""

from __future__ import annotations

from tracer.export.otlp_proto import (
    Resources,
    any_value,
    field,
    grouped_request,
    key_values,
    pack_fixed32,
    pack_fixed64,
    scope,
    utf8,
    varint,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Protocol

    from tracer.export.buffer import Batch

    class LogEntry(Protocol):
        """What the encoder reads of a log record (the extension makes them: ``function_logs.LogEntry``)."""

        body: Any
        time_ns: int
        observed_ns: int
        scope: str
        severity_text: str
        severity_number: int
        attributes: dict[str, Any]
        trace_id: bytes | None
        span_id: bytes | None
        trace_flags: int
        event_name: str | None

_MAX_SEVERITY = 24  # SeverityNumber.FATAL4


def _scope_name(entry: LogEntry) -> str:
    return entry.scope


class LogEncoder:
    """Keeps resource and scope encodings between flushes; ``request`` is the whole job."""

    def __init__(self) -> None:
        self._resources = Resources()
        self._scopes: dict[str, bytes] = {}

    def request(self, batches: Iterable[Batch]) -> bytes:
        """The serialized ExportLogsServiceRequest for the log entries of ``batches``."""
        return grouped_request(batches, self._resources, _scope_name, self._scope, self.record)

    def record(self, entry: LogEntry) -> bytes:
        """The body of one LogRecord message."""
        parts: list[bytes] = []
        if entry.time_ns:
            parts += (b"\x09", pack_fixed64(entry.time_ns))  # 1 time_unix_nano
        severity = entry.severity_number
        if 0 < severity <= _MAX_SEVERITY:
            parts += (b"\x10", varint(severity))  # 2 severity_number
        if entry.severity_text:
            parts.append(field(b"\x1a", utf8(entry.severity_text)))  # 3 severity_text
        parts.append(field(b"\x2a", any_value(entry.body)))  # 5 body
        if entry.attributes:
            parts.append(key_values(b"\x32", entry.attributes))  # 6 attributes
        if entry.trace_flags:
            parts += (b"\x45", pack_fixed32(entry.trace_flags))  # 8 flags
        if entry.trace_id and any(entry.trace_id):
            parts.append(field(b"\x4a", entry.trace_id))  # 9 trace_id
        if entry.span_id and any(entry.span_id):
            parts.append(field(b"\x52", entry.span_id))  # 10 span_id
        if entry.observed_ns:
            parts += (b"\x59", pack_fixed64(entry.observed_ns))  # 11 observed_time_unix_nano
        if entry.event_name:
            parts.append(field(b"\x62", utf8(entry.event_name)))  # 12 event_name
        return b"".join(parts)

    def _scope(self, name: str) -> bytes:
        encoded = self._scopes.get(name)
        if encoded is None:
            if len(self._scopes) > 64:
                self._scopes.clear()
            encoded = self._scopes[name] = scope(name, None)
        return encoded
