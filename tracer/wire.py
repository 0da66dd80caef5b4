"""The wire format between the function (``tracer``) and the afterglow extension.

Two transports carry the same frames. One Unix stream socket connection per function process, which only
the function writes to; and, from version 2, a ring of bytes in memory shared by both processes (a memfd
the function passes with HELLO), which the function writes and the extension reads (layout below).

Frame: an 8-byte header, then a msgpack payload::

    magic  b"AG"   2 bytes
    version        1 byte    (VERSION, or PREVIOUS_VERSION from an older tracer; others are refused by name)
    kind           1 byte    (HELLO, START, SPANS, END, DRAIN)
    length         4 bytes   big-endian payload length, at most MAX_PAYLOAD

Payloads (msgpack, binary ids as ``bin``):

- HELLO  ``{"tracer": str, "pid": int, "resource": {str: attr}, "ring": int}`` once per connection, first;
  in version 2 ``ring`` is the ring's capacity in bytes (0: no ring) and the ring's descriptor travels with
  HELLO's bytes as SCM_RIGHTS ancillary data.
- START  ``[request_id, span]``: the invocation span as it opens (``end_ns`` 0), so the extension can
  still emit it, marked failed, if the function dies before END.
- SPANS  ``[span, ...]``: finished spans, the invocation span last in its invocation.
- END    ``[request_id, sampled, {reason: dropped_count}, ring_position]``: the invocation's spans are
  complete up to ``ring_position`` (bytes ever written to the ring); sent for every invocation, sampled or
  not, so the extension never waits for a timer. Version 1: the first three elements.
- DRAIN  ``[ring_position]`` (version 2): the ring is filling up; read it up to there.

Version 2 puts START and SPANS in the ring (one span per SPANS frame) and keeps the socket for HELLO, END and
DRAIN; version 1 (an older tracer) sends everything over the socket, and the extension still accepts it.

A span is a 17-element array, see ``SPAN_FIELDS``. Decoding is strict: any field of the wrong type
rejects the whole frame (counted by the caller); a bad header poisons the connection, because a
stream cannot be resynchronised. Nothing here allocates more than ``MAX_PAYLOAD`` per frame.

The ring (version 2): a shared file of ``RING_DATA_OFFSET + capacity`` bytes, capacity a power of two. Its
first page holds native 64-bit words (``RING_WORDS``): the magic, the capacity, the position written so far
(stored by the function after each whole frame) and the position read so far (stored by the extension).
Positions only grow; a frame starts at data offset ``position % capacity`` and may wrap around the end. When
everything written has been read, the function may skip ahead to the next multiple of the capacity (so that
each invocation starts at the ring's first page): it stores the skip's start and end before the position
written, and a reader whose position is the skip's start continues from its end. The extension may store a hold
bound (``RING_HOLD_MS_WORD``): the function then waits, after its response, while more than a sixteenth of the
ring is unread; words an older side does not know stay zero, so both sides of a mismatch keep working.

The rest of the header page (from ``RING_OPEN_OFFSET``) is the function's open-span table, ``RING_OPEN_SLOTS``
slots of ``RING_OPEN_SLOT``: a slot per span that has started and not ended, and the count of those that found no
slot. The extension reads it only once the function's process is gone (its connection closed, or at SHUTDOWN with
an invocation open) and exports those spans as never ended. It changes no frame and no word an older side reads: an
older extension never looks at it, an older tracer leaves ``RING_OPEN_SLOTS_WORD`` zero (no table), so the wire
version stays 2.
"""

from __future__ import annotations

import os
import struct

import msgpack

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the extension imports this module at start-up
if TYPE_CHECKING:
    from typing import Any

MAGIC = b"AG"
VERSION = 2
PREVIOUS_VERSION = 1  # still accepted by the extension: a function may bundle an older tracer than the layer's
VERSIONS = (PREVIOUS_VERSION, VERSION)
HEADER = struct.Struct("!2sBBI")
MAX_PAYLOAD = 4 * 1024 * 1024

HELLO, START, SPANS, END, DRAIN = 1, 2, 3, 4, 5
KINDS = {HELLO: "HELLO", START: "START", SPANS: "SPANS", END: "END", DRAIN: "DRAIN"}
RING_KINDS = (START, SPANS, END)  # what the ring may hold (END only when the extension polls); the rest: the socket

# The ring's first page: native 64-bit words (both processes run on the one machine). Each side stores only its
# own position; the two live on separate cache lines.
RING_MAGIC = int.from_bytes(b"AGRING02", "little")
RING_WORDS = 512  # the header page, as 8-byte words
RING_MAGIC_WORD, RING_CAPACITY_WORD, RING_WRITTEN_WORD, RING_READ_WORD = 0, 1, 8, 16
RING_SKIP_FROM_WORD, RING_SKIP_TO_WORD = 9, 10  # the last skip, stored by the function with the position written
# Stored by the extension (nonzero) when it reads the ring on its own schedule (background export): END then goes
# into the ring too, and a short invocation makes no system call and wakes nothing at all.
RING_POLLED_WORD = 24
# Stored by the extension: how long (ms) the function may wait, after posting a response, for the extension to read
# its ring below the function's hold mark (back-pressure instead of drops: the extension is behind but exporting). Zero
# (an older extension, a failing collector, a policy that holds the environment itself): never wait.
RING_HOLD_MS_WORD = 25
RING_DATA_OFFSET = RING_WORDS * 8
# The open-span table (``tracer._open_spans``), in the header page's rest, which wire version 2 left zero: a slot per
# span that has started and not ended, read by the extension only once the function's process is gone, so that the
# spans open at a crash (the handler's stack) are exported too. Stored by the function: how many slots its table
# has (0: no table, an older tracer) and how many open spans found no slot (lost with the process if it dies).
# An older extension never reads them; an older tracer leaves them zero: both sides of a mismatch keep working.
RING_OPEN_SLOTS_WORD, RING_OPEN_UNTRACKED_WORD = 11, 12
RING_OPEN_OFFSET = 256  # bytes: the table starts on the cache line after the extension's words
# A slot: the span id and the trace id (bytes, as on the wire), the parent span id (a native word, 0: none), the start
# (epoch ns), kind, trace flags, the name (UTF-8, at most 78 bytes, zero-padded), and last a word that is 1 while the
# slot holds an open span.
# The function packs a slot whole, in that order, as the span starts and stores 0 in its last word as the span ends:
# a slot being written when the process died still has 0 there, and is not read.
RING_OPEN_SLOT = struct.Struct("=8s16sQqBB78sQ")
RING_OPEN_SLOT_WORDS = RING_OPEN_SLOT.size // 8
RING_OPEN_TAKEN = 1  # the last word of a slot that holds an open span
RING_OPEN_SLOTS = (RING_DATA_OFFSET - RING_OPEN_OFFSET) // RING_OPEN_SLOT.size
RING_OPEN_NAME_BYTES = 78
# Whether a memory barrier must sit between a frame's bytes and the position that publishes them (and between
# reading a position and the bytes below it): x86 keeps stores and loads in order, arm64 does not.
RING_NEEDS_FENCE = os.uname().machine.lower() not in ("x86_64", "amd64", "i386", "i686")

SPAN_FIELDS = (
    "trace_id",  # 0 bytes[16]
    "span_id",  # 1 bytes[8]
    "parent_span_id",  # 2 bytes[8] | None
    "name",  # 3 str
    "kind",  # 4 int, opentelemetry.trace.SpanKind value (0 INTERNAL .. 4 CONSUMER)
    "start_ns",  # 5 int, epoch nanoseconds
    "end_ns",  # 6 int, epoch nanoseconds, 0 while open (START)
    "attributes",  # 7 {str: attr} | None
    "events",  # 8 [[name, time_ns, attributes | None], ...] | None
    "links",  # 9 [[trace_id, span_id, trace_flags, trace_state | None, attributes | None], ...] | None
    "status_code",  # 10 int, 0 UNSET, 1 OK, 2 ERROR
    "status_description",  # 11 str | None
    "scope_name",  # 12 str
    "scope_version",  # 13 str | None
    "trace_flags",  # 14 int
    "trace_state",  # 15 str | None, W3C tracestate header form
    "dropped",  # 16 [attributes, events, links] counts dropped by limits
)
SPAN_LEN = len(SPAN_FIELDS)
(TRACE_ID, SPAN_ID, PARENT_SPAN_ID, NAME, KIND, START_NS, END_NS, ATTRIBUTES, EVENTS, LINKS, STATUS_CODE,
 STATUS_DESCRIPTION, SCOPE_NAME, SCOPE_VERSION, TRACE_FLAGS, TRACE_STATE, DROPPED) = range(SPAN_LEN)

_MAX_INT = 2**63 - 1
_MIN_INT = -(2**63)


def ring_bytes(data: memoryview, start: int, end: int) -> bytes:
    """A copy of the ring's bytes from position ``start`` to ``end`` (at most the capacity, ``len(data)``)."""
    capacity = len(data)
    first, last = start % capacity, end % capacity
    if end == start:
        return b""
    if first < last:
        return bytes(data[first:last])
    return bytes(data[first:]) + bytes(data[:last])


class SpanList(list):  # type: ignore[type-arg]  # of span records
    """A SPANS payload decoded from one-span frames (the ring's): each span's payload length on the wire as well,
    which stands in for its encoded size at no cost (``tracer.export.frames``)."""

    __slots__ = ("wire_sizes",)

    def __init__(self, spans: list[Any], wire_sizes: list[int]) -> None:
        super().__init__(spans)
        self.wire_sizes = wire_sizes


_SPANS_PEEK = struct.Struct("!HxBIB")  # a frame's magic, kind and length, and its payload's first byte
_MAGIC_NUMBER = int.from_bytes(MAGIC, "big")


def count_spans(data: bytes | bytearray) -> int:
    """How many spans the SPANS frames in ``data`` hold, read off their headers without decoding them (the extension
    counts what it has no time left to read at SHUTDOWN). Every SPANS frame in a ring holds one span (a fixarray);
    a version 1 socket's frames hold more (array 16 or 32). A frame cut short counts if its array header is there;
    counting stops at a header that makes no sense (what follows cannot be framed). About 0.65 us a frame (AMD
    EPYC, loaded): an 8 MiB ring of small spans (60,000) in 40 ms."""
    count, offset, last = 0, 0, len(data) - _SPANS_PEEK.size
    unpack = _SPANS_PEEK.unpack_from
    while offset <= last:
        magic, kind, length, first = unpack(data, offset)
        if magic != _MAGIC_NUMBER:
            break
        if kind == SPANS:
            if 0x90 <= first <= 0x9F:
                count += first & 0x0F
            elif first in (0xDC, 0xDD):
                width = 2 if first == 0xDC else 4
                if offset + _SPANS_PEEK.size + width <= len(data):
                    count += int.from_bytes(data[offset + 9 : offset + 9 + width], "big")
        offset += HEADER.size + length
    return count


class WireError(ValueError):
    """A frame that cannot be accepted. ``fatal`` means the connection cannot go on."""

    def __init__(self, reason: str, detail: str, fatal: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.fatal = fatal


_packer = msgpack.Packer(use_bin_type=True)
_ONE_ELEMENT_ARRAY = b"\x91"


def frame(kind: int, payload: Any, version: int = VERSION) -> bytes:
    """Encode one frame. Raises ValueError if the payload exceeds MAX_PAYLOAD or cannot be packed."""
    body: bytes = _packer.pack(payload)
    if len(body) > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {len(body)} bytes exceeds {MAX_PAYLOAD}")
    return HEADER.pack(MAGIC, version, kind, len(body)) + body


def frame_packed(kind: int, body: bytes) -> bytes:
    """Frame an already msgpack-encoded payload (for callers that build bodies incrementally)."""
    if len(body) > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {len(body)} bytes exceeds {MAX_PAYLOAD}")
    return HEADER.pack(MAGIC, VERSION, kind, len(body)) + body


# --- decoding ---------------------------------------------------------------------------------


class FrameReader:
    """Splits a byte stream into validated frames. Feed bytes, get ``(kind, payload)`` tuples.

    A malformed payload raises ``WireError`` for that frame only; the reader skips it and the next
    ``feed`` goes on. A bad header raises a fatal ``WireError``: the caller must drop the connection.
    The first frame's version (one of ``VERSIONS``) is the stream's; a frame of another version poisons it.
    """

    def __init__(self, version: int | None = None) -> None:
        self._buffer = bytearray()
        self._poisoned = False
        self.version = version  # None until the first frame says

    @property
    def pending(self) -> int:
        return len(self._buffer)

    @property
    def partial(self) -> bytes:
        """The start of a frame not complete yet (kept for the next ``frames``)."""
        return bytes(self._buffer)

    def feed(self, data: bytes) -> list[tuple[int, Any]]:
        """Append ``data`` and return every complete valid frame.

        When a frame is malformed, frames decoded before it are lost to the caller only if it does
        not catch: use ``frames()`` to get errors interleaved instead.
        """
        return [item for item in self.frames(data) if not isinstance(item, WireError)]

    def frames(self, data: bytes, merge_spans: bool = False) -> list[tuple[int, Any] | WireError]:
        """Append ``data``; return complete frames and, in order, a WireError for each rejected one.

        ``merge_spans``: consecutive SPANS frames of one span each (as the ring holds them) come out as one
        SPANS frame, decoded in one go (a third of the cost of one by one), its payload a ``SpanList``; should one
        of them be malformed, they are decoded one by one, so that only that one is rejected.
        """
        if self._poisoned:
            return [WireError("poisoned", "connection already rejected", fatal=True)]
        buffer: bytes | bytearray
        if self._buffer:
            self._buffer += data
            buffer = self._buffer
        else:  # the usual case, whole frames: read them where they are, keep only a partial one
            buffer = data
        out: list[tuple[int, Any] | WireError] = []
        singles: list[bytes] = []  # bodies of one-span SPANS frames waiting to be decoded together
        offset = 0
        while len(buffer) - offset >= HEADER.size:
            magic, version, kind, length = HEADER.unpack_from(buffer, offset)
            if magic != MAGIC:
                self._poison(out, "bad_magic", f"expected {MAGIC!r}, got {bytes(magic)!r}")
                return out
            if version != self.version:
                if self.version is not None or version not in VERSIONS:
                    expected = self.version if self.version is not None else " or ".join(map(str, VERSIONS))
                    self._poison(out, "version_mismatch", f"tracer speaks wire version {version}, extension {expected}")
                    return out
                self.version = version
            if kind not in KINDS:
                self._poison(out, "bad_kind", f"unknown frame kind {kind}")
                return out
            if length > MAX_PAYLOAD:
                self._poison(out, "oversized", f"declared payload {length} > {MAX_PAYLOAD}")
                return out
            if len(buffer) - offset - HEADER.size < length:
                break
            start = offset + HEADER.size
            body = bytes(buffer[start : start + length])  # from ``data``: a slice of bytes is the one copy
            offset = start + length
            if merge_spans and kind == SPANS and body[:1] == _ONE_ELEMENT_ARRAY:
                singles.append(body)
                continue
            if singles:
                self._decode_singles(singles, out)
            try:
                out.append((kind, decode_payload(kind, body, version)))
            except WireError as error:
                out.append(error)
        if singles:
            self._decode_singles(singles, out)
        if buffer is self._buffer:
            del buffer[:offset]
        elif offset < len(buffer):
            self._buffer = bytearray(buffer[offset:])
        return out

    def _decode_singles(self, bodies: list[bytes], out: list[tuple[int, Any] | WireError]) -> None:
        version = self.version if self.version is not None else VERSION
        if len(bodies) > 1:
            merged = _packer.pack_array_header(len(bodies)) + b"".join(body[1:] for body in bodies)
            try:
                out.append((SPANS, SpanList(decode_payload(SPANS, merged, version), [len(body) for body in bodies])))
                bodies.clear()
                return
            except WireError:
                pass  # one of them is bad: find which
        for body in bodies:
            try:
                out.append((SPANS, SpanList(decode_payload(SPANS, body, version), [len(body)])))
            except WireError as error:
                out.append(error)
        bodies.clear()

    def _poison(self, out: list[tuple[int, Any] | WireError], reason: str, detail: str) -> None:
        self._poisoned = True
        self._buffer.clear()
        out.append(WireError(reason, detail, fatal=True))


def _refuse_ext(code: int, data: bytes) -> Any:
    raise WireError("malformed", f"msgpack extension type {code} is not allowed")


def decode_payload(kind: int, body: bytes, version: int = VERSION) -> Any:
    """Decode and validate one payload of the given wire version. Raises WireError("malformed", ...)."""
    try:
        payload = msgpack.unpackb(body, raw=False, strict_map_key=True, ext_hook=_refuse_ext, timestamp=0)
    except WireError:
        raise
    except Exception as error:  # msgpack raises several unrelated types on bad input
        raise WireError("malformed", f"undecodable payload: {type(error).__name__}") from None
    if isinstance(payload, msgpack.Timestamp):
        raise WireError("malformed", "timestamp payload")
    if kind == HELLO:
        _check_hello(payload)
    elif kind == START:
        _check(isinstance(payload, list) and len(payload) == 2, "START is [request_id, span]")
        _check(isinstance(payload[0], str) and 0 < len(payload[0]) <= 256, "START request_id")
        check_span(payload[1], open_span=True)
    elif kind == SPANS:
        _check(isinstance(payload, list), "SPANS is a list")
        for span in payload:
            check_span(span)
    elif kind == END:
        if version == PREVIOUS_VERSION:
            _check(isinstance(payload, list) and len(payload) == 3, "END is [request_id, sampled, dropped]")
        else:
            _check(isinstance(payload, list) and len(payload) == 4 and _is_count(payload[3]),
                   "END is [request_id, sampled, dropped, ring_position]")
        request_id, sampled, dropped = payload[:3]
        _check(isinstance(request_id, str) and 0 < len(request_id) <= 256, "END request_id")
        _check(isinstance(sampled, bool), "END sampled")
        _check(isinstance(dropped, dict), "END dropped")
        for reason, count in dropped.items():
            _check(isinstance(reason, str) and _is_count(count), "END dropped counts")
    else:  # DRAIN
        _check(version != PREVIOUS_VERSION, "DRAIN is not part of wire version 1")
        _check(isinstance(payload, list) and len(payload) == 1 and _is_count(payload[0]), "DRAIN is [ring_position]")
    return payload


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise WireError("malformed", what)


def _is_int(value: object) -> bool:
    return type(value) is int and _MIN_INT <= value <= _MAX_INT  # type: ignore[operator]


def _is_count(value: object) -> bool:
    return type(value) is int and 0 <= value <= _MAX_INT  # type: ignore[operator]


def _is_opt_str(value: object) -> bool:
    return value is None or isinstance(value, str)


def _check_hello(payload: object) -> None:
    _check(isinstance(payload, dict), "HELLO is a map")
    assert isinstance(payload, dict)
    _check(isinstance(payload.get("tracer"), str), "HELLO tracer")
    _check(_is_count(payload.get("pid")), "HELLO pid")
    _check_attributes(payload.get("resource"), "HELLO resource")
    _check(payload.get("ring") is None or _is_count(payload.get("ring")), "HELLO ring")


def _is_attr_value(value: object) -> bool:
    kind = type(value)
    if kind is str or kind is bool or kind is float:
        return True
    if kind is int:
        return _is_int(value)
    if kind is list:
        return all(_is_attr_value(item) and type(item) is not list for item in value)  # type: ignore[attr-defined]
    return False


def _check_attributes(attributes: object, what: str) -> None:
    if attributes is None:
        return
    _check(isinstance(attributes, dict), what)
    assert isinstance(attributes, dict)
    for key, value in attributes.items():
        _check(isinstance(key, str) and _is_attr_value(value), what)


def _is_id(value: object, size: int) -> bool:
    return type(value) is bytes and len(value) == size and value != bytes(size)


_NO_TRACE_ID, _NO_SPAN_ID = bytes(16), bytes(8)
NO_DROPS = [0, 0, 0]  # a span's drop counts when nothing was dropped


def _plain_attributes(attributes: object) -> bool:
    """Attributes of scalar values only (the common case), valid: ``check_span``'s fast path."""
    if attributes is None:
        return True
    if type(attributes) is not dict:
        return False
    for key, value in attributes.items():
        kind = type(value)
        if type(key) is not str or not (
            kind is str or kind is float or kind is bool or (kind is int and _MIN_INT <= value <= _MAX_INT)
        ):
            return False
    return True


def _plain_links(links: list[Any]) -> bool:
    """Links whose fields are valid and whose attributes are scalars (the invocation span's X-Ray link):
    ``check_span``'s fast path."""
    for link in links:
        if not (type(link) is list and len(link) == 5):
            return False
        trace_id, span_id, flags, state, attributes = link
        if not (_is_id(trace_id, 16) and _is_id(span_id, 8)
                and type(flags) is int and 0 <= flags <= 255 and (state is None or type(state) is str)
                and _plain_attributes(attributes)):
            return False
    return True


def check_span(span: object, open_span: bool = False) -> None:
    """Validate one span record in place (raises WireError naming the first field that is wrong).

    The common span (scalar attributes, no events, links with scalar attributes or none) is accepted by one
    expression, about a third of what the field-by-field checks below cost per span; anything else takes them. The
    expression accepts nothing they would reject."""
    if type(span) is list and len(span) == SPAN_LEN:
        (trace_id, span_id, parent, name, kind, start, end, attributes, events, links, code, description, scope,
         version, flags, state, dropped) = span
        if (
            type(trace_id) is bytes and len(trace_id) == 16 and trace_id != _NO_TRACE_ID
            and type(span_id) is bytes and len(span_id) == 8 and span_id != _NO_SPAN_ID
            and (parent is None or (type(parent) is bytes and len(parent) == 8 and parent != _NO_SPAN_ID))
            and type(name) is str and type(kind) is int and 0 <= kind <= 4
            and type(start) is int and type(end) is int and 0 < start <= _MAX_INT and 0 <= end <= _MAX_INT
            and (open_span or end >= start)
            and events is None
            and type(code) is int and 0 <= code <= 2 and (description is None or type(description) is str)
            and type(scope) is str and (version is None or type(version) is str)
            and type(flags) is int and 0 <= flags <= 255 and (state is None or type(state) is str)
            and ((dropped == NO_DROPS and type(dropped[0]) is type(dropped[1]) is type(dropped[2]) is int) or (
                type(dropped) is list and len(dropped) == 3
                and all(type(count) is int and 0 <= count <= _MAX_INT for count in dropped)))
            and _plain_attributes(attributes)
            and (links is None or (type(links) is list and _plain_links(links)))
        ):
            return
    _check_span_fields(span, open_span)


def _check_span_fields(span: object, open_span: bool) -> None:
    _check(type(span) is list and len(span) == SPAN_LEN, f"span is a {SPAN_LEN}-element array")
    assert isinstance(span, list)
    _check(_is_id(span[TRACE_ID], 16), "span trace_id")
    _check(_is_id(span[SPAN_ID], 8), "span span_id")
    _check(span[PARENT_SPAN_ID] is None or _is_id(span[PARENT_SPAN_ID], 8), "span parent_span_id")
    _check(isinstance(span[NAME], str), "span name")
    _check(type(span[KIND]) is int and 0 <= span[KIND] <= 4, "span kind")
    _check(_is_count(span[START_NS]) and _is_count(span[END_NS]), "span times")
    if not open_span:
        _check(span[END_NS] >= span[START_NS] > 0, "span end before start")
    _check_attributes(span[ATTRIBUTES], "span attributes")
    events = span[EVENTS]
    if events is not None:
        _check(type(events) is list, "span events")
        for event in events:
            _check(type(event) is list and len(event) == 3, "span event")
            _check(isinstance(event[0], str) and _is_count(event[1]), "span event name/time")
            _check_attributes(event[2], "span event attributes")
    links = span[LINKS]
    if links is not None:
        _check(type(links) is list, "span links")
        for link in links:
            _check(type(link) is list and len(link) == 5, "span link")
            _check(_is_id(link[0], 16) and _is_id(link[1], 8), "span link ids")
            _check(type(link[2]) is int and 0 <= link[2] <= 255 and _is_opt_str(link[3]), "span link flags/state")
            _check_attributes(link[4], "span link attributes")
    _check(type(span[STATUS_CODE]) is int and 0 <= span[STATUS_CODE] <= 2, "span status_code")
    _check(_is_opt_str(span[STATUS_DESCRIPTION]), "span status_description")
    _check(isinstance(span[SCOPE_NAME], str) and _is_opt_str(span[SCOPE_VERSION]), "span scope")
    _check(type(span[TRACE_FLAGS]) is int and 0 <= span[TRACE_FLAGS] <= 255, "span trace_flags")
    _check(_is_opt_str(span[TRACE_STATE]), "span trace_state")
    dropped = span[DROPPED]
    _check(type(dropped) is list and len(dropped) == 3 and all(_is_count(n) for n in dropped), "span dropped")
