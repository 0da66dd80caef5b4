"""Trace context in headers: W3C ``traceparent``/``tracestate`` and AWS X-Ray ``X-Amzn-Trace-Id``.

``inject`` / ``inject_xray`` add the current span's context to an outgoing request's headers (the HTTP and
botocore instrumentations call them); ``extract`` reads an incoming carrier. ``XRayPropagator`` is the
same X-Ray format as an OpenTelemetry ``TextMapPropagator``, registered as the ``xray`` entry point so
that ``OTEL_PROPAGATORS=tracecontext,baggage,xray`` resolves without the contrib package.

Parsing lives in ``tracer._headers`` (hand-written, no regular expressions: it runs on every invocation).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace.span import SpanContext

from tracer._headers import (
    TRACEPARENT,
    TRACESTATE,
    XRAY_HEADER,
    XRAY_KEY,
    extract_traceparent,
    extract_xray,
    format_traceparent,
    format_xray,
)

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "XRAY_HEADER",
    "XRayPropagator",
    "extract",
    "extract_traceparent",
    "extract_xray",
    "format_traceparent",
    "format_xray",
    "inject",
    "inject_xray",
]


def extract(carrier: Mapping[str, str] | None) -> SpanContext | None:
    """The parent in a carrier (header names in any case): W3C first, then X-Ray."""
    if not carrier:
        return None
    lowered = {key.lower(): value for key, value in carrier.items() if isinstance(key, str)}
    found = extract_traceparent(_text(lowered.get(TRACEPARENT)), _text(lowered.get(TRACESTATE)))
    if found is None:
        found = extract_xray(_text(lowered.get(XRAY_KEY)))
    return found


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return ",".join(value)  # multi-value headers
    return None


def _span_context(context: Context | None) -> SpanContext | None:
    span_context = trace_api.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def inject(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """Set ``traceparent`` (and ``tracestate`` when there is one) for the current span, or the one in ``context``."""
    span_context = _span_context(context)
    if span_context is None:
        return
    carrier[TRACEPARENT] = format_traceparent(span_context)
    state = span_context.trace_state
    if state:
        header = state.to_header()
        if header:
            carrier[TRACESTATE] = header


def inject_xray(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """Set ``X-Amzn-Trace-Id`` for the current span, or the one in ``context`` (AWS services propagate it)."""
    span_context = _span_context(context)
    if span_context is not None:
        carrier[XRAY_HEADER] = format_xray(span_context)


class XRayPropagator(TextMapPropagator):
    """The ``X-Amzn-Trace-Id`` header as an OpenTelemetry propagator (entry point ``xray``)."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,  # type: ignore[assignment]  # the API's own default
    ) -> Context:
        if context is None:
            context = Context()
        values = getter.get(carrier, XRAY_HEADER) or getter.get(carrier, XRAY_KEY)
        span_context = extract_xray(values[0] if values else None)
        if span_context is None:
            return context
        return trace_api.set_span_in_context(trace_api.NonRecordingSpan(span_context), context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,  # type: ignore[assignment]  # the API's own default
    ) -> None:
        span_context = _span_context(context)
        if span_context is not None:
            setter.set(carrier, XRAY_HEADER, format_xray(span_context))

    @property
    def fields(self) -> set[str]:
        return {XRAY_HEADER}
