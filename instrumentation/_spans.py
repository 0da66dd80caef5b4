"""CLIENT spans for instrumentors, through the OpenTelemetry API only, plus the suppression checks.

Imported by an instrumentor module, which loads only when its library does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from tracer._context_keys import SUPPRESS_HTTP_INSTRUMENTATION_KEY, SUPPRESS_INSTRUMENTATION_KEY
from tracer._safe import swallowed

_VERSION = "0.1.0"
_get_value = otel_context.get_value


def tracer(library: str) -> Tracer:
    return trace.get_tracer(f"afterglow.instrumentation.{library}", _VERSION)


def suppressed() -> bool:
    """Instrumentation is off for this call (OpenTelemetry's suppression key)."""
    return bool(_get_value(SUPPRESS_INSTRUMENTATION_KEY))


def http_suppressed() -> bool:
    """An outer layer (requests, urllib3, botocore, a contrib instrumentation) already traces this request."""
    return bool(_get_value(SUPPRESS_INSTRUMENTATION_KEY) or _get_value(SUPPRESS_HTTP_INSTRUMENTATION_KEY))


def start_client(tracer: Tracer, name: str, attributes: dict[str, Any]) -> tuple[Span, object]:
    """Start a CLIENT span and make it current, with inner HTTP layers suppressed; returns (span, token)."""
    span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    current = trace.set_span_in_context(span)
    current = otel_context.set_value(SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, current)
    return span, otel_context.attach(current)


def abandon(span: Span | None, token: object) -> None:
    """Undo a ``start_client`` whose set-up failed half-way, so the call can go ahead untouched."""
    if token is not None:
        detach(token)
    if span is not None:
        span.end()


def detach(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]


def fail(span: Span, error: BaseException, error_type: str | None = None) -> None:
    """Mark the span as failed by ``error`` (status, ``error.type``, exception event) and end it."""
    span.set_attribute("error.type", error_type or type(error).__qualname__)
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()


def set_http_status(span: Span, status: object) -> None:
    """``http.response.status_code``; 4xx and 5xx are errors on a client span."""
    if isinstance(status, int) and not isinstance(status, bool):
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))


def call_http(span: Span, token: object, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
              status_of: Callable[[Any], object], what: str) -> Any:
    """The library's call, once, inside ``span``: its result and its errors pass through untouched; the
    response's HTTP status (``status_of(response)``) goes on the span, which then ends."""
    try:
        response = call(*args, **kwargs)
    except BaseException as error:
        detach(token)
        fail(span, error)
        raise
    detach(token)
    try:
        set_http_status(span, status_of(response))
        span.end()
    except Exception as error:
        swallowed(what, error)
    return response
