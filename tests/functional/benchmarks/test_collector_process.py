"""The benchmark's collectors run in their own processes and count distinct spans and duplicate deliveries."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks.services import Collector

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def otlp() -> Iterator[Collector]:
    collector = Collector("otlp")
    try:
        yield collector
    finally:
        collector.stop()


def _finished_spans(count: int) -> list[object]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench-test")
    for index in range(count):
        with tracer.start_as_current_span(f"span-{index}"):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_otlp_collector_counts_distinct_spans_and_duplicates(otlp: Collector) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{otlp.address}/v1/traces", timeout=10)
    spans = _finished_spans(5)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert otlp.snapshot() == (5, 0)
        assert exporter.export(spans[:2]) is SpanExportResult.SUCCESS  # delivered again: duplicates, not new spans
        assert otlp.snapshot() == (5, 2)
    finally:
        exporter.shutdown()
    assert otlp.rejected == 0


def test_xray_sink_counts_segments_and_their_nested_subsegments() -> None:
    collector = Collector("xray")
    try:
        host, _, port = collector.address.partition(":")
        document = {"id": "a" * 16, "name": "outer", "subsegments": [{"id": "b" * 16, "name": "inner"}]}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            header = b'{"format": "json", "version": 1}\n'
            sender.sendto(header + json.dumps(document).encode(), (host, int(port)))
            sender.sendto(header + b"not json", (host, int(port)))
            for _ in range(500):  # UDP: wait until the sink has read both datagrams
                if collector.snapshot()[0] == 2 and collector.rejected == 1:
                    break
                time.sleep(0.01)
        assert collector.snapshot() == (2, 0)
        assert collector.rejected == 1
    finally:
        collector.stop()


def test_otlp_collector_reports_each_span_s_freshness(otlp: Collector) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{otlp.address}/v1/traces", timeout=10)
    spans = _finished_spans(3)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert exporter.export(spans[:1]) is SpanExportResult.SUCCESS  # a duplicate keeps its first arrival
    finally:
        exporter.shutdown()
    stats = otlp.settled_stats(quiet_s=0.1)
    assert (stats["distinct"], stats["received"], stats["log_records"]) == (3, 4, 0)
    freshness = stats["freshness_ms"]
    assert freshness["n"] == 3
    # ended before they were sent, so each arrived after its end, and within the test's own lifetime
    assert 0 <= freshness["p50"] <= freshness["p99"] <= freshness["max"] < 60_000


def test_otlp_collector_reports_the_spans_that_ended_before_a_time_apart(otlp: Collector) -> None:
    earlier = _finished_spans(3)
    since = time.time()
    later = _finished_spans(2)
    exporter = OTLPSpanExporter(endpoint=f"{otlp.address}/v1/traces", timeout=10)
    try:
        assert exporter.export(earlier + later) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    stats = otlp.settled_stats(quiet_s=0.1, since=since)
    assert stats["distinct"] == 5
    assert (stats["freshness_ms"]["n"], stats["freshness_before_ms"]["n"]) == (2, 3)
    # the earlier spans waited longer for the same request
    assert stats["freshness_before_ms"]["max"] >= stats["freshness_ms"]["max"] >= 0
    everything = otlp.stats()
    assert (everything["freshness_ms"]["n"], everything["freshness_before_ms"]) == (5, None)
