"""Log lines under their trace's waterfall, and lines that come after it was printed."""

from __future__ import annotations

import io
import os

from extension.function_logs import LogEntry
from tests.unit.tracer.export.test_waterfall import MS, span
from tracer.export.buffer import Batch
from tracer.export.waterfall import MAX_LOG_LINES, WaterfallPrinter

T0 = 1_700_000_000 * 10**9


def line(body: str, trace_id: bytes | None, at_ms: float, severity: str = "") -> LogEntry:
    entry = LogEntry(body, T0 + int(at_ms * MS), T0)
    entry.severity_text = severity
    entry.trace_id = trace_id
    return entry


def trace(trace_id: bytes) -> Batch:
    root, child = os.urandom(8), os.urandom(8)
    return Batch({"service.name": "shop"}, "r1", [span("handler", trace_id, root, None, T0, T0 + 40 * MS, kind=1),
                                                  span("fetch", trace_id, child, root, T0 + 5 * MS, T0 + 25 * MS)],
                 [1, 1])


def test_lines_print_under_their_trace_in_the_order_they_were_written() -> None:
    out = io.StringIO()
    printer = WaterfallPrinter(out)
    trace_id, other = os.urandom(16), os.urandom(16)
    printer.add_logs([Batch({}, "r1", [line("first", trace_id, 2.5),
                                       line("someone else's", other, 1),
                                       line("second", trace_id, 30, "INFO"),
                                       line("untraced", None, 1)], [1] * 4)])
    printer.add_logs([Batch({}, "r1", [line("[ERROR] ValueError: boom\nTraceback (most recent call last):\n  x",
                                            trace_id, 29, "ERROR")], [1])])  # a coarser clock: order still holds
    assert out.getvalue() == ""  # nothing printed before its trace
    printer.write([trace(trace_id)])
    text = out.getvalue()
    rows = text.splitlines()
    assert rows[0].startswith(f"trace {trace_id.hex()} · service shop · 2 spans")
    logs = [row for row in rows if row.startswith("  log  ")]
    assert logs == [
        "  log  +2.50 ms          first",
        "  log  +30.00 ms  INFO   second",
        "  log  +29.00 ms  ERROR  [ERROR] ValueError: boom (+2 lines)",
    ]
    assert "someone else's" not in text and "untraced" not in text


def test_lines_that_come_after_their_waterfall_get_a_block_of_their_own() -> None:
    out = io.StringIO()
    printer = WaterfallPrinter(out)
    trace_id = os.urandom(16)
    printer.write([trace(trace_id)])
    printer.add_logs([Batch({}, "r1", [line("late one", trace_id, 45, "WARNING")], [1])])
    late = out.getvalue().splitlines()[-2:]
    assert late == [f"trace {trace_id.hex()} · 1 more log line", "  log  +45.00 ms  WARNING late one"]


def test_a_chatty_trace_shows_the_first_lines_and_counts_the_rest() -> None:
    out = io.StringIO()
    printer = WaterfallPrinter(out)
    trace_id = os.urandom(16)
    printer.add_logs([Batch({}, "r1", [line(f"line {n}", trace_id, n) for n in range(MAX_LOG_LINES + 5)],
                            [1] * (MAX_LOG_LINES + 5))])
    printer.write([trace(trace_id)])
    rows = [row for row in out.getvalue().splitlines() if row.startswith("  log")]
    assert len(rows) == MAX_LOG_LINES + 1 and rows[-1] == "  log  … 5 more lines"
