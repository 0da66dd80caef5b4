"""An OpenTelemetry contrib instrumentation (opentelemetry-instrumentation-requests) next to ours.

It works with afterglow's provider unchanged, and the two never trace one request twice: whichever layer
is outermost sets OpenTelemetry's HTTP suppression key, and the other layers respect it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.trace import SpanKind

import instrumentation


@pytest.fixture
def contrib_requests(tracing: Any) -> Iterator[RequestsInstrumentor]:
    instrumentor = RequestsInstrumentor()
    instrumentor.instrument()  # the global provider: afterglow's lean one, or the SDK's
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def _traced_get(tracing: Any, url: str) -> Any:
    with tracing.tracer().start_as_current_span("handler") as handler:
        assert requests.get(url, timeout=5).status_code == 200
    return handler.get_span_context()


def test_contrib_alone_records_through_our_provider(tracing: Any, contrib_requests: Any, http_server: Any) -> None:
    instrumentation.uninstrument()
    handler = _traced_get(tracing, f"{http_server.url}/contrib")
    (span,) = [span for span in tracing.spans() if span.name != "handler"]
    assert span.kind == SpanKind.CLIENT
    assert span.parent_id == handler.span_id
    # contrib still emits the older HTTP conventions unless OTEL_SEMCONV_STABILITY_OPT_IN says otherwise
    assert span.attributes.get("http.response.status_code", span.attributes.get("http.status_code")) == 200
    (traceparent,) = http_server.requests[0].all("traceparent")
    assert traceparent.startswith(f"00-{span.trace_id:032x}-{span.span_id:016x}-")


@pytest.mark.parametrize("ours", [["urllib3", "http.client"], ["requests", "urllib3", "http.client"]])
def test_contrib_and_ours_together_make_one_span_and_one_header(
    tracing: Any, contrib_requests: Any, http_server: Any, ours: list[str]
) -> None:
    instrumentation.uninstrument()
    instrumentation.instrument(ours)
    _traced_get(tracing, f"{http_server.url}/both")
    spans = [span for span in tracing.spans() if span.name != "handler"]
    assert len(spans) == 1, spans
    assert len(http_server.requests[0].all("traceparent")) == 1
