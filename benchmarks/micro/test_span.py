"""One span through the OpenTelemetry API (``start_as_current_span`` + end, 5 attributes), and its encoding."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from opentelemetry import trace as trace_api

from benchmarks.micro.conftest import ATTRIBUTES

GROUP = "one span: start_as_current_span + end, 5 attributes"


def _one(tracer: trace_api.Tracer) -> None:
    with tracer.start_as_current_span("operation", attributes=ATTRIBUTES):
        pass


@pytest.mark.benchmark(group=GROUP)
def test_baseline_api_noop_span(benchmark: Any) -> None:
    benchmark(_one, trace_api.NoOpTracerProvider().get_tracer("bench"))


@pytest.mark.benchmark(group=GROUP)
def test_lean_span(benchmark: Any) -> None:
    from tracer._provider import LeanTracerProvider

    benchmark(_one, LeanTracerProvider().get_tracer("bench"))


@pytest.fixture
def handoff(reader_socket: str) -> Iterator[Any]:
    from tracer._handoff import Handoff

    sink = Handoff(reader_socket)
    sink.begin("bench", None)  # connect: HELLO passes the ring
    sink.finish("bench", False)
    yield sink
    sink.close()


@pytest.mark.benchmark(group=GROUP)
def test_lean_span_handed_off_to_the_ring(benchmark: Any, handoff: Any) -> None:
    """The hand-off as shipped: the span's frame goes into the ring shared with the reader process, which reads
    it when a quarter of the ring waits (DRAIN), as the extension does for a long invocation."""
    from tracer._provider import LeanTracerProvider

    benchmark(_one, LeanTracerProvider(handoff).get_tracer("bench"))
    assert not handoff.drops, handoff.drops


OPEN_SPANS = "one child span handed off to the ring: what the open-span table adds (a slot at start, a word at end)"


@pytest.fixture
def in_a_trace() -> Iterator[None]:
    """The spans measured are children of an open span, as a handler's are of the invocation span."""
    from opentelemetry import context

    from tracer._provider import LeanTracerProvider

    parent = LeanTracerProvider().get_tracer("bench").start_span("invocation")
    token = context.attach(trace_api.set_span_in_context(parent))
    yield
    context.detach(token)


@pytest.mark.benchmark(group=OPEN_SPANS)
def test_baseline_child_span_handed_off_without_the_open_span_table(benchmark: Any, handoff: Any,
                                                                    in_a_trace: None) -> None:
    from tracer._provider import LeanTracerProvider

    tracer = LeanTracerProvider(handoff).get_tracer("bench")
    tracer._scope.open_spans = None  # as before the table: no slot taken, none given back
    benchmark(_one, tracer)


@pytest.mark.benchmark(group=OPEN_SPANS)
def test_child_span_handed_off_with_the_open_span_table(benchmark: Any, handoff: Any, in_a_trace: None) -> None:
    from tracer._provider import LeanTracerProvider

    tracer = LeanTracerProvider(handoff).get_tracer("bench")
    assert tracer._scope.open_spans is handoff.open_spans
    benchmark(_one, tracer)
    assert handoff.open_spans.untracked == 0


class SocketPerSpan:
    """The design measured against the ring: the kernel's socket buffer as the store, one write per span (what
    a span needs to be safe from a crash the instant after ``end()`` without shared memory)."""

    def __init__(self, path: str) -> None:
        import socket

        from tracer import wire

        self._wire = wire
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        self._sock.sendall(wire.frame(wire.HELLO, {"tracer": "bench", "pid": 1, "resource": {}, "ring": 0}))
        self._sock.setblocking(False)
        self._packer = msgpack.Packer(use_bin_type=True)
        self._lock = threading.Lock()
        self.dropped = 0

    def on_end(self, span: Any) -> None:
        record = span.to_record()
        with self._lock:
            body = self._packer.pack((record,))
            try:
                self._sock.send(self._wire.HEADER.pack(self._wire.MAGIC, self._wire.VERSION, self._wire.SPANS,
                                                       len(body)) + body)
            except BlockingIOError:
                self.dropped += 1  # the reader keeps up here: stays 0

    def close(self) -> None:
        self._sock.close()


@pytest.mark.benchmark(group=GROUP)
def test_lean_span_written_to_the_socket(benchmark: Any, reader_socket: str) -> None:
    from tracer._provider import LeanTracerProvider

    sink = SocketPerSpan(reader_socket)
    benchmark(_one, LeanTracerProvider(sink).get_tracer("bench"))  # type: ignore[arg-type]
    sink.close()


@pytest.mark.benchmark(group=GROUP)
def test_sdk_span_without_processor(benchmark: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    benchmark(_one, TracerProvider().get_tracer("bench"))


@pytest.mark.benchmark(group=GROUP)
def test_sdk_span_with_batch_processor(benchmark: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    benchmark(_one, provider.get_tracer("bench"))
    provider.shutdown()


ENCODE = "encode one finished span"


def _finished_lean_span() -> Any:
    from tracer._provider import LeanTracerProvider

    span = LeanTracerProvider().get_tracer("bench").start_span("operation", attributes=ATTRIBUTES)
    span.end()
    return span


@pytest.mark.benchmark(group=ENCODE)
def test_baseline_wire_record(benchmark: Any) -> None:
    benchmark(_finished_lean_span().to_record)


@pytest.mark.benchmark(group=ENCODE)
def test_wire_record_and_msgpack(benchmark: Any) -> None:
    span = _finished_lean_span()
    packer = msgpack.Packer(use_bin_type=True)
    benchmark(lambda: packer.pack(span.to_record()))


@pytest.mark.benchmark(group=ENCODE)
def test_otlp_protobuf_of_an_sdk_span(benchmark: Any) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _one(provider.get_tracer("bench"))
    spans = exporter.get_finished_spans()
    benchmark(lambda: encode_spans(spans).SerializeToString())
