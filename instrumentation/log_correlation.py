"""Log correlation: every ``logging`` record carries the current trace and span ids.

A record factory (installed on top of whatever factory is there) adds ``otelTraceID``, ``otelSpanID`` and
``otelTraceSampled``, the names OpenTelemetry's own logging instrumentation uses, so ``%(otelTraceID)s``
works in a format string. Powertools' Logger writes a record's non-standard attributes into its JSON
output, so the ids appear there with no configuration. Outside a span the ids are ``"0"``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from opentelemetry.trace import get_current_span

from tracer._context_keys import SPAN_KEY
from tracer._provider import current_context
from tracer._span import LeanSpan

from ._base import Instrumentor


class LogCorrelationInstrumentor(Instrumentor):
    name = "logging"
    module = "logging"
    _factory: Callable[..., logging.LogRecord] | None = None

    def _patch(self, module: ModuleType) -> None:
        current = logging.getLogRecordFactory()
        if getattr(current, "_afterglow", False):
            return
        # An older factory of ours may survive inside someone else's chain; setting the ids twice is harmless.
        self._factory = _correlating(current, self)
        logging.setLogRecordFactory(self._factory)

    def _unpatch(self) -> None:
        factory = getattr(self, "_factory", None)
        if factory is not None and logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(factory._previous)  # type: ignore[attr-defined]
            self._factory = None
        # Otherwise someone installed a factory over ours: ours stays in their chain, switched off.


def _correlating(previous: Callable[..., logging.LogRecord], owner: Instrumentor) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not owner.enabled:
            return record
        try:
            # The current context read as our spans' own start does (``tracer._provider``): one call, not the API's
            # four; ``get_current_span`` when none is set (the API's invalid span).
            span: Any = current_context().get(SPAN_KEY) or get_current_span()
            if type(span) is LeanSpan:  # afterglow's own span: its ids without building a SpanContext
                record.otelTraceID = format(span._trace_id, "032x")
                record.otelSpanID = format(span._span_id, "016x")
                record.otelTraceSampled = span.sampled
                return record
            span_context = span.get_span_context()
            if span_context.is_valid:
                record.otelTraceID = format(span_context.trace_id, "032x")
                record.otelSpanID = format(span_context.span_id, "016x")
                record.otelTraceSampled = span_context.trace_flags.sampled
            else:
                record.otelTraceID = record.otelSpanID = "0"
                record.otelTraceSampled = False
        except Exception:  # never lose a log line over its ids (and reporting it would log, re-entering here)
            pass
        return record

    factory._afterglow = True  # type: ignore[attr-defined]
    factory._previous = previous  # type: ignore[attr-defined]
    return factory
