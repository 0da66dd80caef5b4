"""Wire span records (``tracer.wire.SPAN_FIELDS``) -> the bytes of an OTLP ExportTraceServiceRequest.

Spans are grouped by resource, then by scope (name and version), in the order they first appear, as the SDK's
``encode_spans`` groups them; each field is what that encoder writes for the same span:

- ``flags``: SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE, plus CONTEXT_IS_REMOTE when the parent is remote, which the wire
  does not say: a SERVER or CONSUMER span's parent came in a request, any other's is local; a link is remote;
- the status message only with status ERROR; the trace state as the W3C parser reads it (an invalid header is
  no trace state);
- the dropped attribute, event and link counts the function recorded.

One addition: a link's trace state is sent (the SDK's encoder leaves it out). Why by hand, and what was measured:
``otlp_proto``.
"""

from __future__ import annotations

import re
import struct

from tracer import wire
from tracer.export.otlp_proto import (
    Resources,
    count,
    field,
    grouped_request,
    key_values,
    pack_fixed64,
    scope,
    utf8,
    varint,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from tracer.export.buffer import Batch

_KIND = tuple(b"\x30" + bytes((value + 1,)) for value in range(5))  # the API's SpanKind 0..4 -> OTLP's 1..5
_SERVER, _CONSUMER = 1, 4  # the kinds whose parent is remote
_LOCAL_PARENT = b"\x85\x01" + (0x100).to_bytes(4, "little")  # 16 flags: HAS_IS_REMOTE
_REMOTE_PARENT = b"\x85\x01" + (0x300).to_bytes(4, "little")  # 16 flags: HAS_IS_REMOTE | IS_REMOTE
_REMOTE_LINK = b"\x35" + (0x300).to_bytes(4, "little")  # Link 6 flags
_ERROR = 2
_TIMES = struct.Struct("<cQcQ")  # 7 start_time_unix_nano, 8 end_time_unix_nano
_NO_DROPS = wire.NO_DROPS
_MAX_CACHED_NAMES = 1024

# W3C trace-context's tracestate members, as opentelemetry-api's TraceState.from_header reads them.
_MEMBER = re.compile(
    r"([a-z][_0-9a-z\-\*\/]{0,255}|[a-z0-9][_0-9a-z\-\*\/]{0,240}@[a-z][_0-9a-z\-\*\/]{0,13})"
    r"=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)
_MAX_MEMBERS = 32


def normalize_trace_state(header: str) -> str:
    """A tracestate header as ``key=value,...``; empty when any member is invalid or repeated, or past 32 members."""
    pairs: dict[str, str] = {}
    for member in header.split(","):
        member = member.strip(" \t")
        if not member:
            continue
        match = _MEMBER.fullmatch(member)
        if match is None or match.group(1) in pairs:
            return ""
        pairs[match.group(1)] = match.group(2)
    if len(pairs) > _MAX_MEMBERS:
        return ""
    return ",".join(f"{key}={value}" for key, value in pairs.items())


def _scope_key(record: list[Any]) -> tuple[str, str | None]:
    return record[wire.SCOPE_NAME], record[wire.SCOPE_VERSION]


class SpanEncoder:
    """Keeps resource, scope and trace-state encodings between flushes; ``request`` is the whole job."""

    def __init__(self) -> None:
        self._resources = Resources()
        self._scopes: dict[tuple[str, str | None], bytes] = {}
        self._trace_states: dict[str, bytes] = {}
        self._names: dict[tuple[str, int], bytes] = {}  # (name, kind) -> fields 5 and 6: span names repeat

    def request(self, batches: Iterable[Batch]) -> bytes:
        """The serialized ExportTraceServiceRequest for the span records of ``batches``."""
        return grouped_request(batches, self._resources, _scope_key, self._scope, self.span)

    def span(self, record: list[Any]) -> bytes:
        """The body of one Span message."""
        (trace_id, span_id, parent, name, kind, start, end, attributes, events, links, code, _description, _scope,
         _version, _flags, state, dropped) = record
        if not (state or events or code) and dropped == _NO_DROPS and start and end:
            # The usual span, in one join: nothing but ids, name, kind, times, attributes and links (the invocation
            # span's X-Ray link): half the time of the general path below, which writes the same bytes for it.
            named = self._names.get((name, kind))
            if named is None:
                if len(self._names) >= _MAX_CACHED_NAMES:
                    self._names.clear()
                named = self._names[name, kind] = (field(b"\x2a", utf8(name)) if name else b"") + _KIND[kind]
            return b"".join((
                b"\x0a\x10", trace_id, b"\x12\x08", span_id,
                b"\x22\x08" + parent if parent is not None else b"",
                named,
                _TIMES.pack(b"\x39", start, b"\x41", end),
                key_values(b"\x4a", attributes) if attributes else b"",
                self._links(links) if links else b"",
                b"\x7a\x00",  # 15 status, UNSET: present and empty
                _REMOTE_PARENT if parent is not None and kind in (_SERVER, _CONSUMER) else _LOCAL_PARENT,
            ))
        parts = [b"\x0a\x10", record[wire.TRACE_ID], b"\x12\x08", record[wire.SPAN_ID]]  # 1 trace_id, 2 span_id
        state = record[wire.TRACE_STATE]
        if state:
            parts.append(self._trace_state(state))  # 3 trace_state
        parent = record[wire.PARENT_SPAN_ID]
        if parent is not None:
            parts += (b"\x22\x08", parent)  # 4 parent_span_id
        name = record[wire.NAME]
        if name:
            parts.append(field(b"\x2a", utf8(name)))  # 5 name
        kind = record[wire.KIND]
        parts.append(_KIND[kind])  # 6 kind
        if record[wire.START_NS]:
            parts += (b"\x39", pack_fixed64(record[wire.START_NS]))  # 7 start_time_unix_nano
        if record[wire.END_NS]:
            parts += (b"\x41", pack_fixed64(record[wire.END_NS]))  # 8 end_time_unix_nano
        attributes = record[wire.ATTRIBUTES]
        if attributes:
            parts.append(key_values(b"\x4a", attributes))  # 9 attributes
        dropped_attributes, dropped_events, dropped_links = record[wire.DROPPED]
        parts.append(count(b"\x50", dropped_attributes))  # 10
        for event_name, time_ns, event_attributes in record[wire.EVENTS] or ():  # 11 events
            parts.append(field(b"\x5a", (b"\x09" + pack_fixed64(time_ns) if time_ns else b"")
                               + (field(b"\x12", utf8(event_name)) if event_name else b"")
                               + (key_values(b"\x1a", event_attributes) if event_attributes else b"")))
        parts.append(count(b"\x60", dropped_events))  # 12
        if record[wire.LINKS]:
            parts.append(self._links(record[wire.LINKS]))  # 13 links
        parts.append(count(b"\x70", dropped_links))  # 14
        code = record[wire.STATUS_CODE]  # 15 status: 2 message (ERROR only), 3 code; present even when UNSET
        message = record[wire.STATUS_DESCRIPTION] if code == _ERROR else None
        parts.append(field(b"\x7a", (field(b"\x12", utf8(message)) if message else b"")
                           + (b"\x18" + varint(code) if code else b"")))
        parts.append(_REMOTE_PARENT if parent is not None and kind in (_SERVER, _CONSUMER) else _LOCAL_PARENT)  # 16
        return b"".join(parts)

    def _links(self, links: list[list[Any]]) -> bytes:
        """The links field (Span 13), one message per link."""
        return b"".join(field(b"\x6a", b"\x0a\x10" + trace_id + b"\x12\x08" + span_id
                              + (self._trace_state(link_state) if link_state else b"")
                              + (key_values(b"\x22", link_attributes) if link_attributes else b"")
                              + _REMOTE_LINK)
                        for trace_id, span_id, _flags, link_state, link_attributes in links)

    def _trace_state(self, header: str) -> bytes:
        """The trace_state field (Span 3, Link 3: the same tag) for ``header``; b"" when it reads as empty."""
        encoded = self._trace_states.get(header)
        if encoded is None:
            if len(self._trace_states) > 256:
                self._trace_states.clear()
            normalized = normalize_trace_state(header)
            encoded = self._trace_states[header] = field(b"\x1a", normalized.encode()) if normalized else b""
        return encoded

    def _scope(self, key: tuple[str, str | None]) -> bytes:
        encoded = self._scopes.get(key)
        if encoded is None:
            if len(self._scopes) > 256:
                self._scopes.clear()
            encoded = self._scopes[key] = scope(*key)
        return encoded
