"""The embedded default: each finished trace printed as a waterfall, for when no OTLP endpoint is configured.

    trace 5b8efff798038103d269b633813fc60c · service hello · 3 spans · 41.20 ms
      handler               SERVER  ████████████████████████████████   41.20 ms  OK     faas.trigger=http
      ├─ fetch-user         CLIENT  ██████████████                     18.05 ms         http.request.method=GET
      └─ render             INTERNAL              ████████████          14.90 ms  ERROR  boom
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from extension.buffer import Batch
from tracer import wire

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
    "afterglow.incomplete",
)
MAX_ATTRIBUTES = 3


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


def render_trace(spans: list[list[Any]], resource: dict[str, Any]) -> str:
    """One trace (spans sharing a trace id) as an indented tree with time bars."""
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
    return "\n".join(lines)


def render(batches: Iterable[Batch]) -> str:
    """Every trace found in ``batches``, in order of first appearance."""
    traces: dict[bytes, tuple[list[list[Any]], dict[str, Any]]] = {}
    for batch in batches:
        for span in batch.spans:
            traces.setdefault(span[wire.TRACE_ID], ([], batch.resource))[0].append(span)
    return "\n".join(render_trace(spans, resource) for spans, resource in traces.values())


class WaterfallPrinter:
    """A sink that prints instead of exporting; printing always succeeds."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def write(self, batches: Iterable[Batch]) -> None:
        text = render(batches)
        if text:
            stream = self._stream or sys.stdout
            stream.write(text + "\n")
            stream.flush()
