"""Log entries -> OpenTelemetry SDK log records (``_sdk_logs``) -> the official OTLP encoder's ExportLogsServiceRequest.

Like ``convert`` for spans, this imports the SDK's logs module and the exporter's encoder; it loads in the
background after the first INVOKE and is used at the first flush, never before ``event/next``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk.resources import Resource

from extension._sdk_logs import readable_log_record
from extension.buffer import Batch
from extension.convert import Converter
from extension.logs import LogEntry

_SEVERITIES = {member.value: member for member in SeverityNumber}


class LogConverter(Converter):
    """The span converter's Resource and scope caches, for log records: a warm flush builds only the records."""

    def record(self, entry: LogEntry, resource: Resource) -> Any:
        return readable_log_record(
            timestamp=entry.time_ns,
            observed_timestamp=entry.observed_ns,
            trace_id=int.from_bytes(entry.trace_id, "big") if entry.trace_id else 0,
            span_id=int.from_bytes(entry.span_id, "big") if entry.span_id else 0,
            trace_flags=entry.trace_flags,
            severity_text=entry.severity_text or None,
            severity_number=_SEVERITIES.get(entry.severity_number, SeverityNumber.UNSPECIFIED),
            body=entry.body,
            attributes=entry.attributes or None,
            event_name=entry.event_name,
            resource=resource,
            scope=self.scope(entry.scope, None),
        )

    def records(self, batches: Iterable[Batch]) -> list[Any]:
        out: list[Any] = []
        for batch in batches:
            resource = self.resource(batch.resource)
            for entry in batch.spans:
                out.append(self.record(entry, resource))
        return out

    def request(self, batches: Iterable[Batch]) -> ExportLogsServiceRequest:
        """The ExportLogsServiceRequest for ``batches``, grouped by resource and scope by the official encoder."""
        return encode_logs(self.records(batches))
