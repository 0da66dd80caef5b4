"""``TracerProvider`` and ``Tracer`` behind the OpenTelemetry API, making lean spans.

Context handling is the API's own (``opentelemetry.context``), so contextvars propagation across threads'
copied contexts and asyncio tasks works as with the SDK. ``start_as_current_span`` returns a small class
instead of the API's generator-based context manager: same behaviour (context manager, sync and async
decorator), a fraction of the cost.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from random import getrandbits
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace import Tracer as ApiTracer
from opentelemetry.trace import TracerProvider as ApiTracerProvider
from opentelemetry.trace.span import NonRecordingSpan, Span, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from tracer._context_keys import SPAN_KEY
from tracer._limits import SpanLimits
from tracer._span import LeanSpan, Scope, SpanSink

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.util import types

F = TypeVar("F", bound=Callable[..., Any])

_INTERNAL = SpanKind.INTERNAL
_SAMPLED = 0x01
_RANDOM_TRACE_ID = 0x02  # W3C level 2 flag, set by the SDK for random trace ids; we generate them the same way


def _context_var() -> ContextVar[Context] | None:
    """The context variable behind the API's runtime context, when it is the API's default one (contextvars).

    Reading and setting it directly gives the same contexts and tokens as ``context_api.get_current`` /
    ``attach`` / ``detach``, without their two Python calls each: ~1.5 us a span here, three times that with
    the caches cold between invocations. A runtime context of another kind (configured through the API) goes
    through the API.
    """
    runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if type(runtime) is ContextVarsRuntimeContext and isinstance(variable, ContextVar):
        return variable
    return None


_CURRENT = _context_var()
_get_current: Callable[[], Context] = _CURRENT.get if _CURRENT is not None else context_api.get_current
current_context = _get_current  # ``context_api.get_current``, in one call when it can (for hot paths elsewhere)


def _new_trace_id() -> int:
    trace_id = getrandbits(128)
    while not trace_id:
        trace_id = getrandbits(128)
    return trace_id


def _new_span_id() -> int:
    span_id = getrandbits(64)
    while not span_id:
        span_id = getrandbits(64)
    return span_id


class LeanTracer(ApiTracer):
    __slots__ = ("_sampler", "_scope")

    def __init__(self, scope: Scope, sampler: Sampler | None) -> None:
        self._scope = scope
        self._sampler = sampler

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = _INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        parent = (_get_current() if context is None else context).get(SPAN_KEY)
        trace_state: TraceState | None
        if type(parent) is LeanSpan:  # the common case: our own span, read without a SpanContext
            trace_id = parent._trace_id
            parent_id: int | None = parent._span_id
            parent_flags = parent._flags
            trace_state = parent._trace_state
        else:
            # ``parent is not None`` first: Span is an ABC, whose isinstance runs Python code (the invocation span)
            parent_context = parent.get_span_context() if parent is not None and isinstance(parent, Span) else None
            if (
                self._sampler is None
                and type(parent) is NonRecordingSpan
                and isinstance(parent_context, SpanContext)
                and parent_context.is_valid
                and not parent_context.is_remote
                and not parent_context.trace_flags & _SAMPLED
            ):
                return parent  # inside an unsampled local trace: nothing to record, as OpenTelemetry's NoOpTracer
            if isinstance(parent_context, SpanContext) and parent_context.is_valid:
                trace_id = parent_context.trace_id
                parent_id = parent_context.span_id
                parent_flags = int(parent_context.trace_flags)
                trace_state = parent_context.trace_state
            else:
                trace_id = _new_trace_id()
                parent_id = None
                parent_flags = _SAMPLED | _RANDOM_TRACE_ID
                trace_state = None

        sampler = self._sampler
        if sampler is None:  # parentbased_always_on: follow the parent, sample roots
            sampled = bool(parent_flags & _SAMPLED)
            recording = sampled
        else:
            result = sampler.should_sample(context, trace_id, name, kind, attributes, links)
            recording = result.decision.is_recording()  # type: ignore[no-untyped-call]
            sampled = result.decision.is_sampled()  # type: ignore[no-untyped-call]
            trace_state = result.trace_state
            if result.attributes:
                attributes = {**result.attributes, **(attributes or {})}
        flags = (parent_flags & _RANDOM_TRACE_ID) | (_SAMPLED if sampled else 0)

        if not recording:
            return NonRecordingSpan(SpanContext(trace_id, _new_span_id(), False, TraceFlags(flags), trace_state))
        return LeanSpan(
            self._scope,
            name,
            trace_id,
            getrandbits(64) or _new_span_id(),  # the retry (a zero id) as a call: one call fewer per span
            parent_id,
            flags,
            trace_state,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = _INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> CurrentSpan:
        return CurrentSpan(
            self,
            (name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception),
            end_on_exit,
        )


def attach_span(span: Span) -> object:
    """Make ``span`` current; returns the token for ``context_api.detach`` (or ``detach_span``)."""
    if _CURRENT is not None:
        return _CURRENT.set(Context({**_CURRENT.get(), SPAN_KEY: span}))
    return context_api.attach(Context({**context_api.get_current(), SPAN_KEY: span}))


def detach_span(token: Any) -> None:
    """``context_api.detach``: a token that cannot be reset (another context's) goes to the API, which logs it."""
    if _CURRENT is not None:
        try:
            _CURRENT.reset(token)
            return
        except Exception:
            pass
    context_api.detach(token)


class CurrentSpan:
    """What ``start_as_current_span`` returns: a context manager that is also a sync/async decorator."""

    __slots__ = ("_arguments", "_end_on_exit", "_span", "_token", "_tracer")

    def __init__(self, tracer: ApiTracer, arguments: tuple[Any, ...], end_on_exit: bool) -> None:
        self._tracer = tracer
        self._arguments = arguments
        self._end_on_exit = end_on_exit
        self._span: Span | None = None
        self._token: Any = None

    def __enter__(self) -> Span:
        span = self._span = self._tracer.start_span(*self._arguments)
        if _CURRENT is not None:  # attach_span, inline: this runs for every span
            self._token = _CURRENT.set(Context({**_CURRENT.get(), SPAN_KEY: span}))
        else:
            self._token = attach_span(span)
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        span: Span = self._span  # type: ignore[assignment]  # set by __enter__ (not cast(): a call per span)
        if _CURRENT is not None:  # detach_span, inline
            try:
                _CURRENT.reset(self._token)
            except Exception:
                context_api.detach(self._token)  # logs, as the API does
        else:
            context_api.detach(self._token)
        # As ``opentelemetry.trace.use_span``: Exceptions (not other BaseExceptions) mark the span.
        if exc_val is not None and isinstance(exc_val, Exception) and span.is_recording():
            if self._arguments[6]:  # record_exception
                span.record_exception(exc_val)
            if self._arguments[7]:  # set_status_on_exception
                span.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        if self._end_on_exit:
            span.end()

    def _fresh(self) -> CurrentSpan:
        return CurrentSpan(self._tracer, self._arguments, self._end_on_exit)

    def __call__(self, function: F) -> F:
        """Decorate: each call runs in its own span (for coroutines, until the coroutine finishes)."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await function(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return function(*args, **kwargs)

        return cast(F, wrapper)


class LeanTracerProvider(ApiTracerProvider):
    """The global provider afterglow installs: lean spans, handed to ``sink`` as they end."""

    def __init__(
        self,
        sink: SpanSink | None = None,
        sampler: Sampler | None = None,
        limits: SpanLimits | None = None,
    ) -> None:
        self.sink = sink
        self.sampler = sampler
        self.limits = limits if limits is not None else SpanLimits()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> LeanTracer:
        scope = Scope(instrumenting_module_name or "", instrumenting_library_version, self.limits, self.sink)
        return LeanTracer(scope, self.sampler)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing to do: a span is handed over as it ends (kept for code written against the SDK, such as
        contrib instrumentations)."""
        return True

    def shutdown(self) -> None:
        """Kept for code written against the SDK; the hand-off is closed by the process's exit."""
