"""The embedded default: each finished trace printed as a waterfall, for when no OTLP endpoint is configured.

    trace 5b8efff798038103d269b633813fc60c · service hello · 3 spans · 41.20 ms
      handler               SERVER  ████████████████████████████████   41.20 ms  OK     faas.trigger=http
      ├─ fetch-user         CLIENT  ██████████████                     18.05 ms         http.request.method=GET
      └─ render             INTERNAL              ████████████          14.90 ms  ERROR  boom
      log  +2.10 ms  INFO   fetching user 42
      log  +40.90 ms ERROR  [ERROR] ValueError: boom (+9 lines)

The log lines of the trace's invocation come from the extension's log pipeline: ``add_logs`` keeps them
until their trace is printed; lines that arrive after it was printed get a short block of their own.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Iterable

from tracer import wire
from tracer.export.buffer import Batch

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, TextIO

BAR_WIDTH = 32
NAME_WIDTH = 44
KIND_NAMES = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_NAMES = ("", "OK", "ERROR")
KEY_ATTRIBUTES = (
    "faas.error", "faas.trigger", "faas.coldstart", "http.request.method", "http.route", "url.full", "url.path",
    "http.response.status_code", "rpc.service", "rpc.method", "aws.request_id", "db.system", "db.operation.name",
    "messaging.system", "messaging.destination.name", "messaging.operation.type", "error.type",
    "afterglow.incomplete", "afterglow.span.unended",
)
MAX_ATTRIBUTES = 3
MAX_LOG_LINES = 20  # per trace; the rest are counted
LOG_WIDTH = 100
_KEEP_LOGS = 2000  # log lines waiting for their trace to print
_KEEP_PRINTED = 256  # traces printed, to recognise late lines


def format_duration(nanoseconds: int) -> str:
    milliseconds = nanoseconds / 1e6
    return f"{milliseconds / 1000:.2f} s" if milliseconds >= 1000 else f"{milliseconds:.2f} ms"


def _short(value: Any, limit: int = 40) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key_attributes(span: list[Any]) -> str:
    attributes = span[wire.ATTRIBUTES] or {}
    chosen = [name for name in KEY_ATTRIBUTES if name in attributes][:MAX_ATTRIBUTES]
    if not chosen:
        chosen = list(attributes)[:MAX_ATTRIBUTES]
    return " ".join(f"{name}={_short(attributes[name])}" for name in chosen)


def _status(span: list[Any]) -> str:
    code = span[wire.STATUS_CODE]
    name = STATUS_NAMES[code]
    if code == 2:
        detail = span[wire.STATUS_DESCRIPTION]
        for event_name, _time, attributes in span[wire.EVENTS] or ():
            if event_name == "exception" and attributes:
                detail = f"{attributes.get('exception.type', '')}: {attributes.get('exception.message', '')}"
                break
        if detail:
            return f"{name} {_short(detail, 60)}"
    return name


def _bar(start: int, end: int, t0: int, total: int) -> str:
    left = int((start - t0) / total * BAR_WIDTH) if total else 0
    width = max(1, round((end - start) / total * BAR_WIDTH)) if total else BAR_WIDTH
    left = min(left, BAR_WIDTH - 1)
    width = min(width, BAR_WIDTH - left)
    return " " * left + "█" * width + " " * (BAR_WIDTH - left - width)


def render_logs(entries: list[Any], t0: int) -> list[str]:
    """Log lines (``function_logs.LogEntry``) under a trace: offset from its start, severity, first line.
    In the order Lambda delivered them, which is the order they were written: their times have millisecond precision."""
    lines = []
    for entry in entries[:MAX_LOG_LINES]:
        body = entry.body if isinstance(entry.body, str) else str(entry.body)
        first, *rest = body.strip("\n").split("\n") or [""]
        text = _short(first, LOG_WIDTH) + (f" (+{len(rest)} lines)" if rest else "")
        delta = entry.time_ns - t0  # a line's time has millisecond precision: it may seem to precede the trace
        offset = ("+" if delta >= 0 else "-") + format_duration(abs(delta))
        lines.append(f"  log  {offset:<10} {entry.severity_text or '':<6} {text}".rstrip())
    if len(entries) > MAX_LOG_LINES:
        lines.append(f"  log  … {len(entries) - MAX_LOG_LINES} more lines")
    return lines


def render_trace(spans: list[list[Any]], resource: dict[str, Any], logs: list[Any] | None = None) -> str:
    """One trace (spans sharing a trace id) as an indented tree with time bars, then its log lines."""
    by_id = {span[wire.SPAN_ID]: span for span in spans}
    children: dict[bytes | None, list[list[Any]]] = {}
    for span in spans:
        parent = span[wire.PARENT_SPAN_ID]
        children.setdefault(parent if parent in by_id else None, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda span: (span[wire.START_NS], span[wire.END_NS]))
    t0 = min(span[wire.START_NS] for span in spans)
    t1 = max(span[wire.END_NS] for span in spans)
    total = t1 - t0
    service = resource.get("service.name") or resource.get("faas.name") or "unknown service"
    count = len(spans)
    lines = [f"trace {spans[0][wire.TRACE_ID].hex()} · service {service} · {count} span{'s' * (count != 1)}"
             f" · {format_duration(total)}"]
    rows: list[tuple[str, list[Any]]] = []

    def walk(span: list[Any], prefix: str, branch: str) -> None:
        rows.append((prefix + branch + span[wire.NAME], span))
        kids = children.get(span[wire.SPAN_ID], [])
        inner = prefix + ("   " if branch == "└─ " else "│  " if branch else "")
        for index, child in enumerate(kids):
            walk(child, inner, "└─ " if index == len(kids) - 1 else "├─ ")

    for root in children.get(None, []):
        walk(root, "", "")
    width = min(NAME_WIDTH, max(len(label) for label, _ in rows))
    for label, span in rows:
        if len(label) > width:
            label = label[: width - 1] + "…"
        start, end = span[wire.START_NS], span[wire.END_NS]
        lines.append(
            f"  {label:<{width}}  {KIND_NAMES[span[wire.KIND]]:<8} {_bar(start, end, t0, total)} "
            f"{format_duration(end - start):>10}  {_status(span):<6} {_key_attributes(span)}".rstrip()
        )
    if logs:
        lines += render_logs(logs, t0)
    return "\n".join(lines)


def _traces(batches: Iterable[Batch]) -> dict[bytes, tuple[list[list[Any]], dict[str, Any]]]:
    traces: dict[bytes, tuple[list[list[Any]], dict[str, Any]]] = {}
    for batch in batches:
        for span in batch.spans:
            traces.setdefault(span[wire.TRACE_ID], ([], batch.resource))[0].append(span)
    return traces


def render(batches: Iterable[Batch], logs: dict[bytes, list[Any]] | None = None) -> str:
    """Every trace found in ``batches``, in order of first appearance, with its log lines from ``logs``."""
    return "\n".join(render_trace(spans, resource, (logs or {}).get(trace_id))
                     for trace_id, (spans, resource) in _traces(batches).items())


class WaterfallPrinter:
    """A sink that prints instead of exporting; printing always succeeds.

    ``write`` prints traces (span batches); ``add_logs`` takes log batches, whose lines wait for their trace.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._logs: OrderedDict[bytes, list[Any]] = OrderedDict()
        self._waiting = 0
        self._printed: OrderedDict[bytes, int] = OrderedDict()  # trace id -> its start, for late lines

    def _print(self, text: str) -> None:
        if text:
            stream = self._stream or sys.stdout
            stream.write(text + "\n")
            stream.flush()

    def write(self, batches: Iterable[Batch]) -> None:
        traces = _traces(batches)
        logs = {trace_id: self._take(trace_id) for trace_id in traces if trace_id in self._logs}
        for trace_id, (spans, _resource) in traces.items():
            self._printed[trace_id] = min(span[wire.START_NS] for span in spans)
            self._printed.move_to_end(trace_id)
        while len(self._printed) > _KEEP_PRINTED:
            self._printed.popitem(last=False)
        self._print("\n".join(render_trace(spans, resource, logs.get(trace_id))
                              for trace_id, (spans, resource) in traces.items()))

    def add_logs(self, batches: Iterable[Batch]) -> None:
        """Keep log lines for their trace's waterfall; print those whose trace was printed already."""
        late: dict[bytes, list[Any]] = {}
        for batch in batches:
            for entry in batch.spans:
                trace_id = entry.trace_id
                if trace_id is None:
                    continue  # printing waterfalls: lines of untraced invocations are in the function's log already
                if trace_id in self._printed:
                    late.setdefault(trace_id, []).append(entry)
                else:
                    self._logs.setdefault(trace_id, []).append(entry)
                    self._waiting += 1
        while self._waiting > _KEEP_LOGS and self._logs:
            self._waiting -= len(self._logs.popitem(last=False)[1])
        blocks = []
        for trace_id, entries in late.items():
            blocks.append(f"trace {trace_id.hex()} · {len(entries)} more log line{'s' * (len(entries) != 1)}")
            blocks += render_logs(entries, self._printed[trace_id])
        self._print("\n".join(blocks))

    def _take(self, trace_id: bytes) -> list[Any]:
        entries = self._logs.pop(trace_id, [])
        self._waiting -= len(entries)
        return entries
