"""The printed waterfall: a tree in start order, durations, status, key attributes."""

from __future__ import annotations

import io
import os

from tracer.export.buffer import Batch
from tracer.export.waterfall import WaterfallPrinter, format_duration, render

MS = 1_000_000


def span(
    name: str,
    trace_id: bytes,
    span_id: bytes,
    parent: bytes | None,
    start: int,
    end: int,
    kind: int = 0,
    status: int = 0,
    description: str | None = None,
    attributes: dict | None = None,
) -> list:
    return [
        trace_id,
        span_id,
        parent,
        name,
        kind,
        start,
        end,
        attributes,
        None,
        None,
        status,
        description,
        "tests",
        None,
        1,
        None,
        [0, 0, 0],
    ]


def test_a_trace_prints_as_an_indented_tree_in_start_order() -> None:
    trace_id = os.urandom(16)
    root, fetch, parse, render_id = os.urandom(8), os.urandom(8), os.urandom(8), os.urandom(8)
    t0 = 1_700_000_000 * 10**9
    spans = [
        span("render", trace_id, render_id, root, t0 + 30 * MS, t0 + 40 * MS, status=2, description="boom"),
        span("parse", trace_id, parse, fetch, t0 + 20 * MS, t0 + 25 * MS),
        span(
            "fetch",
            trace_id,
            fetch,
            root,
            t0 + 5 * MS,
            t0 + 25 * MS,
            kind=2,
            attributes={"http.request.method": "GET", "noise": 1},
        ),
        span(
            "handler",
            trace_id,
            root,
            os.urandom(8),
            t0,
            t0 + 41.2 * MS,
            kind=1,
            attributes={"faas.trigger": "http", "faas.coldstart": True},
        ),
    ]
    text = render([Batch({"service.name": "hello"}, "r1", spans, [1] * 4)])
    lines = text.splitlines()
    assert lines[0] == f"trace {trace_id.hex()} · service hello · 4 spans · 41.20 ms"
    assert [line.split()[0:2] for line in lines[1:]] == [
        ["handler", "SERVER"],
        ["├─", "fetch"],
        ["│", "└─"],
        ["└─", "render"],
    ]
    assert "parse" in lines[3]
    assert "faas.trigger=http faas.coldstart=true" in lines[1] and "OK" not in lines[1]
    assert "http.request.method=GET" in lines[2] and "noise" not in lines[2]
    assert "ERROR boom" in lines[4] and "10.00 ms" in lines[4]
    bar_start = lines[1].index("█")
    assert lines[2].index("█") > bar_start  # fetch starts later than the handler


def test_each_trace_is_printed_once_and_spans_of_other_traces_apart() -> None:
    first, second = os.urandom(16), os.urandom(16)
    spans = [span("a", first, os.urandom(8), None, 0, MS), span("b", second, os.urandom(8), None, 0, 2 * MS)]
    stream = io.StringIO()
    WaterfallPrinter(stream).write([Batch({}, None, spans, [1, 1])])
    output = stream.getvalue()
    assert output.count("trace ") == 2 and "unknown service" in output


def test_durations_read_well() -> None:
    assert format_duration(420_000) == "0.42 ms"
    assert format_duration(1_234_000_000) == "1.23 s"
