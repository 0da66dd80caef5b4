"""Decoded wire frames into the assembler: shared by the extension's receiver and the in-process fallback."""

from __future__ import annotations

from tracer import wire

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any

    from tracer.export.assembler import Assembler


def approx_span_size(span: list[Any]) -> int:
    """A cheap estimate of a span's encoded size, to keep export requests under the collector's limits."""
    size = 120 + len(span[wire.NAME])
    for key, value in (span[wire.ATTRIBUTES] or {}).items():
        if isinstance(value, str):
            size += len(key) + len(value)
        else:
            size += len(key) + 16 * (len(value) if isinstance(value, list) else 1)
    if span[wire.EVENTS]:
        for event in span[wire.EVENTS]:
            size += 40 + len(event[0]) + sum(len(k) + (len(v) if isinstance(v, str) else 16)
                                             for k, v in (event[2] or {}).items())
    if span[wire.LINKS]:
        size += 60 * len(span[wire.LINKS])
    return size


def size_from_wire(nbytes: int) -> int:
    """A span's encoded size from its msgpack length: within a few tenths for the usual attributes (a quarter more
    covers text and small numbers; negative numbers and long arrays grow more, well within ``CHUNK_BYTES``'s margin
    under a collector's limit). The ring's spans come with that length, which costs nothing, where the estimate
    above walks every attribute: 4.9 us per span in the extension between freezes, a fifth of what its receiver
    spent on each span (10 spans and a log line per invocation, 20 invocations per second)."""
    return nbytes + (nbytes >> 2) + 16


def dispatch(assembler: Assembler, conn: int, kind: int, payload: Any) -> None:
    """Hand one decoded frame of connection ``conn`` to the assembler."""
    if kind == wire.SPANS:
        if payload:
            sizes = getattr(payload, "wire_sizes", None)
            assembler.spans(conn, payload, [approx_span_size(span) for span in payload] if sizes is None
                            else [size_from_wire(nbytes) for nbytes in sizes])
    elif kind == wire.START:
        assembler.start(conn, payload[0], payload[1])
    elif kind == wire.END:
        assembler.end(conn, payload[0], payload[1], payload[2])
    elif kind == wire.HELLO:
        assembler.hello(conn, payload)
