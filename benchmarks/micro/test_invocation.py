"""What tracing adds to one warm invocation with 10 spans (1 invocation span + 9 children, 5 attributes each).

The target (README, "Benchmarks"): at most 0.2 ms added (afterglow minus the untraced handler), at least 15x below the
standard OpenTelemetry path (SDK + BatchSpanProcessor + OTLP/HTTP + force_flush) measured in the same run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind

from benchmarks.micro.conftest import ATTRIBUTES, lambda_context

GROUP = "invocation: 10 spans"
CHILDREN = 9


def work(tracer: trace_api.Tracer) -> None:
    for _ in range(CHILDREN):
        with tracer.start_as_current_span("child", attributes=ATTRIBUTES):
            pass


def untraced_work() -> None:
    for _ in range(CHILDREN):
        pass


@pytest.mark.benchmark(group=GROUP)
def test_baseline_untraced_handler(benchmark: Any) -> None:
    def handler(event: Any, context: Any) -> dict[str, int]:
        untraced_work()
        return {"statusCode": 200}

    context = lambda_context()
    benchmark(handler, {}, context)


def _afterglow_handler() -> Any:
    from tracer import trace_handler

    tracer = trace_api.get_tracer("bench")

    @trace_handler
    def handler(event: Any, context: Any) -> dict[str, int]:
        work(tracer)
        return {"statusCode": 200}

    return handler


@pytest.fixture
def afterglow_handler(lambda_environment: str) -> Iterator[Any]:
    handler = _afterglow_handler()
    handler({}, lambda_context("warm-up"))  # the cold start (connect, HELLO, trigger import) is not measured here
    yield handler


@pytest.mark.benchmark(group=GROUP)
def test_afterglow_trace_handler_and_hand_off(benchmark: Any, afterglow_handler: Any) -> None:
    from tracer import _runtime

    context = lambda_context()
    handoff = _runtime.current().handoff  # type: ignore[union-attr]
    writes_before = handoff.writes
    benchmark(afterglow_handler, {}, context)
    benchmark.extra_info["writes_per_invocation"] = round((handoff.writes - writes_before) / _calls(benchmark), 2)


@pytest.mark.benchmark(group=GROUP)
def test_afterglow_unsampled_invocation(benchmark: Any, afterglow_handler: Any) -> None:
    event = {
        "requestContext": {"http": {"method": "GET", "path": "/"}},
        "rawPath": "/",
        "headers": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
    }
    benchmark(afterglow_handler, event, lambda_context())


@pytest.mark.benchmark(group=GROUP)
def test_afterglow_lean_spans_without_hand_off(benchmark: Any) -> None:
    from tracer._provider import LeanTracerProvider

    tracer = LeanTracerProvider().get_tracer("bench")

    def handler() -> None:
        with tracer.start_as_current_span("invocation", kind=SpanKind.SERVER, attributes=ATTRIBUTES):
            work(tracer)

    benchmark(handler)


@pytest.mark.benchmark(group=GROUP)
def test_sdk_spans_only(benchmark: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    tracer = provider.get_tracer("bench")

    def handler() -> None:
        with tracer.start_as_current_span("invocation", kind=SpanKind.SERVER, attributes=ATTRIBUTES):
            work(tracer)

    benchmark(handler)
    provider.shutdown()


@pytest.mark.benchmark(group=GROUP)
def test_standard_otel_batch_otlp_http_force_flush(benchmark: Any, otlp_collector: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_collector}/v1/traces")))
    tracer = provider.get_tracer("bench")

    def handler() -> None:
        with tracer.start_as_current_span("invocation", kind=SpanKind.SERVER, attributes=ATTRIBUTES):
            work(tracer)
        provider.force_flush()  # what the contrib Lambda instrumentation does at the end of each invocation

    handler()
    benchmark.pedantic(handler, rounds=300, warmup_rounds=20)
    provider.shutdown()


def _calls(benchmark: Any) -> int:
    stats = benchmark.stats.stats
    return max(1, stats.rounds * getattr(stats, "iterations", 1))
