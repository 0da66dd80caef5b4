"""OpenTelemetry's context keys that afterglow shares with the API and with contrib instrumentations.

The API keeps them private (``opentelemetry.trace.propagation._SPAN_KEY``, ``opentelemetry.context._SUPPRESS_*``),
so nothing here imports them by name. The span key is read off the public ``set_span_in_context``; the suppression
keys are taken from the API when it has them, else made here: then afterglow's own I/O and HTTP layers still
suppress each other, and only contrib instrumentations stop seeing it.
"""

from __future__ import annotations

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context

# The one key set_span_in_context writes into an empty context: the current span's.
SPAN_KEY: str = next(iter(trace_api.set_span_in_context(trace_api.INVALID_SPAN, Context())))


def _api_key(attribute: str, name: str) -> str:
    key = getattr(context_api, attribute, None)
    return key if isinstance(key, str) else context_api.create_key(name)


SUPPRESS_INSTRUMENTATION_KEY = _api_key("_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation")
SUPPRESS_HTTP_INSTRUMENTATION_KEY = _api_key("_SUPPRESS_HTTP_INSTRUMENTATION_KEY", "suppress_http_instrumentation")
