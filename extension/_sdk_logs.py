"""The SDK log record the official OTLP logs encoder takes, on every opentelemetry-sdk that setup.cfg allows.

The SDK's logs API is still private (``opentelemetry.sdk._logs``) and has changed shape: newer SDKs encode
``ReadableLogRecord(api_record, resource, scope)``, older ones (the 1.27 floor among them) an SDK ``LogRecord``
holding the resource, wrapped in ``LogData`` with the scope. ``readable_log_record`` builds whichever this SDK has.
Where the SDK's record has no ``event_name`` (and its OTLP has no such field), the name travels as the
``event.name`` attribute, as the semantic conventions had it before the field existed.
"""

from __future__ import annotations

import inspect
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk import _logs as sdk_logs
from opentelemetry.trace import TraceFlags

_READABLE: Any = getattr(sdk_logs, "ReadableLogRecord", None)
_LOG_DATA: Any = getattr(sdk_logs, "LogData", None)
_RECORD: Any  # typed loosely: the API's overloads keep trace ids and event_name apart, its code takes both
if _READABLE is not None:
    from opentelemetry import _logs as api_logs

    _RECORD = api_logs.LogRecord
elif _LOG_DATA is not None:
    _RECORD = getattr(sdk_logs, "LogRecord")  # noqa: B009 - absent from the newer SDKs mypy sees
else:  # pragma: no cover - an SDK neither shape fits: the log sink fails to load, with this message, and counts
    raise ImportError("opentelemetry-sdk has neither ReadableLogRecord nor LogData: afterglow cannot encode logs "
                      "with this version")

HAS_EVENT_NAME = "event_name" in inspect.signature(_RECORD.__init__).parameters
EVENT_NAME_ATTRIBUTE = "event.name"


def readable_log_record(*, timestamp: int, observed_timestamp: int, trace_id: int, span_id: int, trace_flags: int,
                        severity_text: str | None, severity_number: SeverityNumber, body: Any,
                        attributes: dict[str, Any] | None, event_name: str | None, resource: Any, scope: Any) -> Any:
    """What ``encode_logs`` takes for one record, on this SDK."""
    fields: dict[str, Any] = {
        "timestamp": timestamp, "observed_timestamp": observed_timestamp, "trace_id": trace_id, "span_id": span_id,
        "trace_flags": TraceFlags(trace_flags), "severity_text": severity_text, "severity_number": severity_number,
        "body": body, "attributes": attributes,
    }
    if event_name:
        if HAS_EVENT_NAME:
            fields["event_name"] = event_name
        else:
            fields["attributes"] = {**(attributes or {}), EVENT_NAME_ATTRIBUTE: event_name}
    if _READABLE is not None:
        return _READABLE(_RECORD(**fields), resource, scope)
    return _LOG_DATA(_RECORD(resource=resource, **fields), scope)
