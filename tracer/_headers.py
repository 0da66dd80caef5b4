"""Parsing and formatting trace headers: W3C ``traceparent``/``tracestate`` and X-Ray ``X-Amzn-Trace-Id``.

Hand-written (string splits, no regular expressions) because it runs on every invocation, and kept apart
from ``tracer.propagation`` so the decorator does not import OpenTelemetry's propagator machinery.
"""

from __future__ import annotations

from opentelemetry.trace.span import SpanContext, TraceFlags, TraceState

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
XRAY_HEADER = "X-Amzn-Trace-Id"
XRAY_KEY = "x-amzn-trace-id"
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
    if require_sampled:  # Lambda's header says Sampled=0 unless active tracing is on: skip the parse then
        at = header.lower().find("sampled")
        if at < 0 or "1" not in header[at:]:
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



def format_traceparent(span_context: SpanContext) -> str:
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags) & 0xFF:02x}"


def format_xray(span_context: SpanContext) -> str:
    trace_hex = f"{span_context.trace_id:032x}"
    sampled = 1 if span_context.trace_flags & 0x01 else 0
    return f"Root=1-{trace_hex[:8]}-{trace_hex[8:]};Parent={span_context.span_id:016x};Sampled={sampled}"
