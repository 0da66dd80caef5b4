"""Trace context in headers: W3C ``traceparent``/``tracestate`` and AWS X-Ray ``X-Amzn-Trace-Id``.

``inject`` / ``inject_xray`` add the current span's context to an outgoing request's headers (the HTTP and
botocore instrumentations call them); ``extract`` reads an incoming carrier. ``XRayPropagator`` is the
same X-Ray format as an OpenTelemetry ``TextMapPropagator``, registered as the ``xray`` entry point so
that ``OTEL_PROPAGATORS=tracecontext,baggage,xray`` resolves without the contrib package.

Parsing is hand-written (string splits, no regular expressions) because it runs on every invocation.
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
from opentelemetry.trace.span import SpanContext, TraceFlags, TraceState

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

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
XRAY_HEADER = "X-Amzn-Trace-Id"
_XRAY_KEY = "x-amzn-trace-id"
_HEX = "0123456789abcdef"


def _is_lower_hex(text: str) -> bool:
    return not text.strip(_HEX)


def _is_hex(text: str) -> bool:
    return not text.lower().strip(_HEX)


def extract_traceparent(traceparent: str | None, tracestate: str | None = None) -> SpanContext | None:
    """A remote SpanContext from W3C headers, or None when ``traceparent`` is missing or invalid."""
    if not traceparent:
        return None
    header = traceparent.strip(" \t")
    parts = header.split("-")
    if len(parts) < 4:
        return None
    version, trace_hex, span_hex, flags_hex = parts[0], parts[1], parts[2], parts[3]
    if len(version) != 2 or version == "ff" or not _is_lower_hex(version):
        return None
    if version == "00" and len(parts) != 4:
        return None  # version 00 has exactly four fields; later versions may append more
    if len(trace_hex) != 32 or len(span_hex) != 16 or len(flags_hex) != 2:
        return None
    if not (_is_lower_hex(trace_hex) and _is_lower_hex(span_hex) and _is_lower_hex(flags_hex)):
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    state = TraceState.from_header([tracestate]) if tracestate else None
    return SpanContext(trace_id, span_id, True, TraceFlags(int(flags_hex, 16)), state)


def extract_xray(header: str | None, *, require_sampled: bool = False) -> SpanContext | None:
    """A remote SpanContext from ``Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>``, or None.

    With ``require_sampled``, a header without ``Sampled=1`` gives None: Lambda sets ``_X_AMZN_TRACE_ID``
    with ``Sampled=0`` whenever X-Ray active tracing is off, and following it would sample nothing.
    """
    if not header:
        return None
    root = parent = sampled = ""
    for part in header.split(";"):
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key == "root":
            root = value.strip()
        elif key == "parent":
            parent = value.strip()
        elif key == "sampled":
            sampled = value.strip()
    if require_sampled and sampled != "1":
        return None
    if len(root) != 35 or root[:2] != "1-" or root[10] != "-" or len(parent) != 16:
        return None
    trace_hex = root[2:10] + root[11:]
    if not (_is_hex(trace_hex) and _is_hex(parent)):
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(parent, 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, True, TraceFlags(1 if sampled == "1" else 0))


def extract(carrier: Mapping[str, str] | None) -> SpanContext | None:
    """The parent in a carrier (header names in any case): W3C first, then X-Ray."""
    if not carrier:
        return None
    lowered = {key.lower(): value for key, value in carrier.items() if isinstance(key, str)}
    found = extract_traceparent(_text(lowered.get(TRACEPARENT)), _text(lowered.get(TRACESTATE)))
    if found is None:
        found = extract_xray(_text(lowered.get(_XRAY_KEY)))
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


def format_traceparent(span_context: SpanContext) -> str:
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags) & 0xFF:02x}"


def format_xray(span_context: SpanContext) -> str:
    trace_hex = f"{span_context.trace_id:032x}"
    sampled = 1 if span_context.trace_flags & 0x01 else 0
    return f"Root=1-{trace_hex[:8]}-{trace_hex[8:]};Parent={span_context.span_id:016x};Sampled={sampled}"


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
        values = getter.get(carrier, XRAY_HEADER) or getter.get(carrier, _XRAY_KEY)
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
