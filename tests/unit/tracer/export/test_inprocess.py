"""The in-process exporter the tracer falls back to: same wire bytes in, same pipeline out."""

from __future__ import annotations

import io
import os

import pytest

from tests.helpers.otlp_receiver import OtlpReceiver
from tracer import wire
from tracer.export.inprocess import InProcessExporter
from tracer.export.otlp_config import HTTP, OtlpSettings


def invocation_bytes(request_id: str, children: int = 3) -> tuple[bytes, list[bytes]]:
    trace_id, root_id = os.urandom(16), os.urandom(8)
    root = [
        trace_id,
        root_id,
        None,
        "handler",
        1,
        1000,
        0,
        {"faas.invocation_id": request_id},
        None,
        None,
        0,
        None,
        "tracer",
        None,
        1,
        None,
        [0, 0, 0],
    ]
    kids = [
        [
            trace_id,
            os.urandom(8),
            root_id,
            f"child-{i}",
            0,
            1100,
            1200,
            None,
            None,
            None,
            0,
            None,
            "t",
            None,
            1,
            None,
            [0, 0, 0],
        ]
        for i in range(children)
    ]
    finished = list(root)
    finished[wire.END_NS] = 5000
    data = (
        wire.frame(wire.HELLO, {"tracer": "t", "pid": 7, "resource": {"service.name": "fallback"}})
        + wire.frame(wire.START, [request_id, root])
        + wire.frame(wire.SPANS, kids)
        + wire.frame(wire.SPANS, [finished])
        + wire.frame(wire.END, [request_id, True, {"queue_full": 2}, 0])
    )
    return data, [span[wire.SPAN_ID] for span in [*kids, finished]]


def test_fed_bytes_split_anywhere_are_exported_on_flush(otlp_receiver: OtlpReceiver) -> None:
    data, span_ids = invocation_bytes("r1")
    exporter = InProcessExporter(OtlpSettings(HTTP, otlp_receiver.traces_url, (), "none", 5.0))
    for start in range(0, len(data), 7):  # the tracer may hand over partial frames
        exporter.feed(data[start : start + 7])
    exporter.flush(5.0)
    assert sorted(otlp_receiver.span_ids()) == sorted(span_id.hex() for span_id in span_ids)
    assert {span.resource["service.name"] for span in otlp_receiver.spans} == {"fallback"}
    assert exporter.stats.dropped == {"function.queue_full": 2}
    exporter.close()


def test_without_an_endpoint_the_waterfall_is_printed() -> None:
    data, _ = invocation_bytes("r1", children=2)
    stream = io.StringIO()
    exporter = InProcessExporter(None, stream=stream)
    exporter.feed(data)
    exporter.flush(2.0)
    output = stream.getvalue()
    assert "service fallback · 3 spans" in output and "└─ child-1" in output


def test_bad_bytes_are_counted_never_raised_and_later_frames_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    stream = io.StringIO()
    exporter = InProcessExporter(stream=stream)
    exporter.feed(wire.HEADER.pack(wire.MAGIC, wire.VERSION, wire.SPANS, 3) + b"\xc1\xc1\xc1")  # bad msgpack
    exporter.feed(b"XX" + bytes(30))  # bad magic: the stream is reset
    data, _ = invocation_bytes("r2", children=1)
    exporter.feed(data)
    exporter.flush(2.0)
    assert exporter.stats.malformed_frames == 1 and exporter.stats.poisoned_connections == 1
    assert "2 spans" in stream.getvalue()


def test_flush_with_nothing_fed_is_a_no_op(otlp_receiver: OtlpReceiver) -> None:
    exporter = InProcessExporter(OtlpSettings(HTTP, otlp_receiver.traces_url, (), "none", 5.0))
    exporter.flush(1.0)
    assert otlp_receiver.requests == []
