"""The lean span: an ``opentelemetry.trace.Span`` that stores what the wire needs and nothing else.

The SDK's span builds a ReadableSpan, BoundedAttributes and locks for every span (~30 us here); this one
keeps plain slots, cleans attribute values as they are set, and builds the wire's 17-field record when it
ends. Behaviour follows the SDK's span where callers can see it (status rules, exception events, ended
spans ignoring writes); differences are noted where they are made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from time import time_ns
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import Span, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from tracer._limits import MAX_INT, MIN_INT, clean_attributes, clean_value
from tracer._safe import log

if TYPE_CHECKING:
    from opentelemetry.util import types

    from tracer._limits import SpanLimits
    from tracer._open_spans import OpenSpans

_ERROR = StatusCode.ERROR
_UNSET = StatusCode.UNSET


class SpanSink(Protocol):
    """Where ended spans go (the hand-off). ``on_end`` must never raise and never block."""

    def on_end(self, span: LeanSpan) -> None: ...


class Scope:
    """What a tracer shares with its spans: instrumentation scope, limits, the sink and its open-span table."""

    __slots__ = ("limits", "name", "open_spans", "sink", "version")

    def __init__(self, name: str, version: str | None, limits: SpanLimits, sink: SpanSink | None) -> None:
        self.name = name
        self.version = version
        self.limits = limits
        self.sink = sink
        self.open_spans: OpenSpans | None = getattr(sink, "open_spans", None)


class LeanSpan(Span):
    __slots__ = (
        "_attributes",
        "_context",
        "_dropped_attributes",
        "_dropped_events",
        "_dropped_links",
        "_end",
        "_events",
        "_flags",
        "_id_bytes",
        "_kind",
        "_links",
        "_name",
        "_open_slot",
        "_parent_id",
        "_record_exception",
        "_scope",
        "_set_status_on_exception",
        "_span_id",
        "_start",
        "_status_code",
        "_status_description",
        "_trace_bytes",
        "_trace_id",
        "_trace_state",
    )

    def __init__(
        self,
        scope: Scope,
        name: str,
        trace_id: int,
        span_id: int,
        parent_id: int | None,
        flags: int,
        trace_state: TraceState | None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, object] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> None:
        self._scope = scope
        self._name = name
        self._trace_id = trace_id
        self._span_id = span_id
        self._parent_id = parent_id
        self._flags = flags
        self._trace_state = trace_state
        self._kind = kind
        self._context: SpanContext | None = None
        self._start = start_time if start_time is not None else time_ns()
        self._end = 0
        self._events: list[list[Any]] | None = None
        self._links: list[list[Any]] | None = None
        self._status_code = 0
        self._status_description: str | None = None
        self._dropped_events = 0
        self._dropped_links = 0
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        if attributes:
            limits = scope.limits
            self._attributes, self._dropped_attributes = clean_attributes(
                attributes, limits.max_span_attributes, limits.max_span_value_length
            )
        else:
            self._attributes = None
            self._dropped_attributes = 0
        if links:
            for link in links:
                self._append_link(link.context, link.attributes)
        # In the open-span table until it ends, so that a crash before then still exports it (tracer._open_spans),
        # which sets the ids' bytes for the record.
        self._id_bytes: bytes | None = None
        self._trace_bytes: bytes | None = None
        open_spans = scope.open_spans
        self._open_slot = open_spans.open(self) if open_spans is not None and flags & 1 else None

    # --- the OpenTelemetry Span API -------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        context = self._context
        if context is None:
            context = self._context = SpanContext(
                self._trace_id, self._span_id, False, TraceFlags(self._flags), self._trace_state
            )
        return context

    def is_recording(self) -> bool:
        return not self._end

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end:
            log.warning("Setting attribute on ended span.")
            return
        limits = self._scope.limits
        if type(key) is not str or not key:
            self._dropped_attributes += 1
            return
        # The common types are cleaned here, as ``clean_value`` would: a call less per attribute (five attributes:
        # 5.6 to 5.2 us per span, hot).
        kind = type(value)
        cleaned: object
        if kind is str:
            longest = limits.max_span_value_length
            cleaned = value if len(value) <= longest else value[:longest]  # type: ignore[arg-type,index]
        elif kind is float or kind is bool or (kind is int and MIN_INT <= value <= MAX_INT):  # type: ignore[operator]
            cleaned = value
        else:
            cleaned = clean_value(value, limits.max_span_value_length)
            if cleaned is None:
                return
        attributes = self._attributes
        if attributes is None:
            attributes = self._attributes = {}
        elif key not in attributes and len(attributes) >= limits.max_span_attributes:
            # The spec's rule (keep what is there, count the rest); the SDK evicts the oldest instead.
            self._dropped_attributes += 1
            return
        attributes[key] = cleaned

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end:
            log.warning("Setting attribute on ended span.")
            return
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self._end:
            log.warning("Tried calling add_event on an ended span.")
            return
        limits = self._scope.limits
        events = self._events
        if events is None:
            events = self._events = []
        elif len(events) >= limits.max_events:
            self._dropped_events += 1
            return
        cleaned, _ = clean_attributes(attributes, limits.max_event_attributes, limits.max_value_length)
        events.append([name, timestamp if timestamp is not None else time_ns(), cleaned])

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self._end:
            log.warning("Tried calling add_link on an ended span.")
            return
        self._append_link(context, attributes)

    def update_name(self, name: str) -> None:
        if self._end:
            log.warning("Tried calling update_name on an ended span.")
            return
        self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end:
            log.warning("Tried calling set_status on an ended span.")
            return
        # As the SDK: OK is final, UNSET never overrides, a description only goes with ERROR.
        if self._status_code == 1:
            return
        if isinstance(status, Status):
            code = status.status_code
            if code is _UNSET:
                return
            if description is not None:
                log.warning("Description %s ignored. Use either `Status` or `(StatusCode, Description)`", description)
            description = status.description
        elif isinstance(status, StatusCode):
            code = status
            if code is _UNSET:
                return
            if code is not _ERROR:
                description = None
        else:
            return
        self._status_code = code.value
        self._status_description = description

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        import traceback  # only on the error path

        exception_type = type(exception)
        module = exception_type.__module__
        qualname = exception_type.__qualname__
        event_attributes: dict[str, object] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(
                traceback.format_exception(exception_type, exception, exception.__traceback__)
            ),
            # A boolean, as the semantic conventions define it (the SDK sends the string "True"/"False").
            "exception.escaped": escaped,
        }
        if attributes:
            event_attributes.update(attributes)
        self.add_event("exception", event_attributes, timestamp)  # type: ignore[arg-type]

    def end(self, end_time: int | None = None) -> None:
        if self._end:
            log.warning("Calling end() on an ended span.")
            return
        self._end = end_time if end_time is not None else time_ns()
        slot = self._open_slot
        if slot is not None:  # out of the open-span table before the frame goes into the ring: never in both
            self._open_slot = None
            self._scope.open_spans.close(slot)  # type: ignore[union-attr]  # a slot comes from it
        sink = self._scope.sink
        if sink is not None and self._flags & 1:
            sink.on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # As the SDK: ``with tracer.start_span(...)`` records what escapes the block, then ends.
        if exc_val is not None and not self._end:
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(_ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()

    def __repr__(self) -> str:
        return f'LeanSpan(name="{self._name}", context={self.get_span_context()})'

    # --- read access, for hooks and tests (the SDK's ReadableSpan names) ------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def kind(self) -> SpanKind:
        return self._kind

    @property
    def parent(self) -> SpanContext | None:
        if self._parent_id is None:
            return None
        return SpanContext(self._trace_id, self._parent_id, False)

    @property
    def start_time(self) -> int:
        return self._start

    @property
    def end_time(self) -> int | None:
        return self._end or None

    @property
    def attributes(self) -> Mapping[str, object]:
        return MappingProxyType(self._attributes or {})

    @property
    def status(self) -> Status:
        return Status(StatusCode(self._status_code), self._status_description)

    @property
    def events(self) -> list[tuple[str, int, Mapping[str, object]]]:
        return [(name, time, MappingProxyType(attrs or {})) for name, time, attrs in self._events or ()]

    @property
    def sampled(self) -> bool:
        return bool(self._flags & 1)

    # --- the wire -------------------------------------------------------------------------------

    def leave_open_spans(self) -> None:
        """Give back this span's slot in the open-span table (as it ends; the invocation span once START stands
        for it)."""
        slot, self._open_slot = self._open_slot, None
        open_spans = self._scope.open_spans
        if slot is not None and open_spans is not None:
            open_spans.close(slot)

    def to_record(self) -> list[Any]:
        """The wire's 17-field span record (``tracer.wire.SPAN_FIELDS``); ``end_ns`` is 0 while open."""
        parent_id = self._parent_id
        trace_state = self._trace_state
        return [
            self._trace_bytes or self._trace_id.to_bytes(16, "big"),
            self._id_bytes or self._span_id.to_bytes(8, "big"),
            None if parent_id is None else parent_id.to_bytes(8, "big"),
            self._name if type(self._name) is str else str(self._name),
            self._kind._value_,  # not .value, a property: ~0.15 us per span
            self._start,
            self._end,
            self._attributes,
            self._events,
            self._links,
            self._status_code,
            self._status_description,
            self._scope.name,
            self._scope.version,
            self._flags,
            (trace_state.to_header() or None) if trace_state else None,
            [self._dropped_attributes, self._dropped_events, self._dropped_links],
        ]

    def _append_link(self, context: SpanContext, attributes: types.Attributes) -> None:
        limits = self._scope.limits
        links = self._links
        if links is None:
            links = self._links = []
        if not isinstance(context, SpanContext) or not context.is_valid or len(links) >= limits.max_links:
            # The wire cannot carry a link without ids; the SDK keeps such a link only when it has attributes.
            if attributes or len(links) >= limits.max_links:
                self._dropped_links += 1
            return
        cleaned, _ = clean_attributes(attributes, limits.max_link_attributes, limits.max_value_length)
        state = context.trace_state
        links.append([
            context.trace_id.to_bytes(16, "big"),
            context.span_id.to_bytes(8, "big"),
            int(context.trace_flags) & 0xFF,
            (state.to_header() or None) if state else None,
            cleaned,
        ])

