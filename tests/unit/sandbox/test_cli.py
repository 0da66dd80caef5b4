"""How ``afterglow run`` / ``afterglow sandbox`` print log lines: extension lines named once."""

from __future__ import annotations

import io

from sandbox.cli import LogPrinter
from sandbox.records import LogLine


def printed(*lines: LogLine) -> list[str]:
    stream = io.StringIO()
    printer = LogPrinter(stream)
    for line in lines:
        printer(line)
    return stream.getvalue().splitlines()


def test_an_extensions_lines_carry_its_name_once() -> None:
    assert printed(
        LogLine("extension", "sidecar", "starting", 0.0),
        LogLine("extension", "afterglow", "[afterglow] ERROR cannot load the OTLP exporter", 0.0),
        LogLine("extension", "afterglow", "trace 29fb · service hello · 2 spans", 0.0),
        LogLine("extension", "afterglow", "[afterglowish] not ours", 0.0),
    ) == ["[sidecar] starting", "[afterglow] ERROR cannot load the OTLP exporter",
          "[afterglow] trace 29fb · service hello · 2 spans", "[afterglow] [afterglowish] not ours"]


def test_function_lines_are_printed_as_they_are_with_tracebacks_on_their_own_lines() -> None:
    assert printed(LogLine("function", "hello", "[afterglow] x\rTraceback", 0.0)) == ["[afterglow] x", "Traceback"]
