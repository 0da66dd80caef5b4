"""No extension listening: spans are exported in-process at the end of each invocation, with one warning."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import trace as trace_api

from tests.helpers.tracing import lambda_context
from tracer import trace_handler


@pytest.fixture
def handler() -> Any:
    @trace_handler
    def handle(event: Any, context: Any) -> dict[str, Any]:
        tracer = trace_api.get_tracer("app")
        with tracer.start_as_current_span("load"), tracer.start_as_current_span("query") as span:
            span.set_attribute("db.system", "dynamodb")
        if event.get("fail"):
            raise RuntimeError("failed order")
        return {"statusCode": 200}

    return handle


def test_spans_reach_the_collector_before_the_handler_returns(
    lambda_env: str, monkeypatch: pytest.MonkeyPatch, otlp_receiver: Any, handler: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_receiver.endpoint)
    with caplog.at_level(logging.WARNING, logger="afterglow"):
        assert handler({}, lambda_context("req-1")) == {"statusCode": 200}
        received = list(otlp_receiver.spans)  # no waiting: the export happened inside the invocation
        with pytest.raises(RuntimeError):
            handler({"fail": True}, lambda_context("req-2"))
    assert sorted(span.name for span in received) == ["checkout", "load", "query"]
    spans = otlp_receiver.wait_for_spans(6)
    by_id = {span.span_id: span for span in spans}
    query = next(span for span in spans if span.name == "query")
    assert by_id[query.parent_span_id].name == "load"
    assert query.attributes["db.system"] == "dynamodb"
    failed = next(s for s in spans if s.name == "checkout" and s.attributes["faas.invocation_id"] == "req-2")
    assert failed.status_code == 2 and failed.events[0][0] == "exception"
    assert failed.resource["service.name"] == "checkout" and failed.resource["cloud.region"] == "eu-west-1"
    assert caplog.text.count("no extension listening") == 1  # one warning, never an error


def test_without_an_endpoint_the_waterfall_is_printed(
    lambda_env: str, monkeypatch: pytest.MonkeyPatch, handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert handler({}, lambda_context("req-1")) == {"statusCode": 200}
    output = capsys.readouterr()
    printed = output.out + output.err
    assert "checkout" in printed and "query" in printed
