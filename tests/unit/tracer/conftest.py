"""Fixtures for the function side's unit tests: a provider of lean spans next to an SDK provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracer._limits import SpanLimits
from tracer._provider import LeanTracerProvider
from tracer._span import LeanSpan


class CollectingSink:
    """A sink that keeps ended spans in memory (the hand-off has its own tests with a real socket)."""

    def __init__(self) -> None:
        self.ended: list[LeanSpan] = []

    def on_end(self, span: LeanSpan) -> None:
        self.ended.append(span)

    def poke(self) -> None:
        pass

    def by_name(self) -> dict[str, LeanSpan]:
        return {span.name: span for span in self.ended}


class Pair:
    """Our provider and the SDK's, side by side, so behaviour can be compared call for call."""

    def __init__(self, limits: SpanLimits | None = None, sampler: Any = None) -> None:
        self.sink = CollectingSink()
        self.lean = LeanTracerProvider(self.sink, sampler=sampler, limits=limits)
        self.exporter = InMemorySpanExporter()
        self.sdk = TracerProvider()
        self.sdk.add_span_processor(SimpleSpanProcessor(self.exporter))

    def sdk_spans(self) -> dict[str, Any]:
        return {span.name: span for span in self.exporter.get_finished_spans()}


@pytest.fixture
def pair() -> Iterator[Pair]:
    providers = Pair()
    yield providers
    providers.sdk.shutdown()


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


@pytest.fixture
def provider(sink: CollectingSink) -> LeanTracerProvider:
    return LeanTracerProvider(sink)
