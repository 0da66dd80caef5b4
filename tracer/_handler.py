"""``trace_handler``: the invocation span around a Lambda handler.

Three zones (CONTRIBUTING.md). The user's handler is called exactly once; its result is returned untouched and
its exception re-raised with a bare ``raise``. Everything of ours around it runs under ``safe()``, outside
the ``try`` that holds the user call, so a tracer failure becomes a log line. Configuration problems warn
once and fall back to defaults (``tracer.config``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, TypeVar, overload

from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind
from opentelemetry.trace.span import Span, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from tracer import _profile, _response_hook, config
from tracer._context_keys import SPAN_KEY
from tracer._handoff import FALLBACK
from tracer._headers import extract_traceparent, extract_xray
from tracer._provider import attach_span, detach_span
from tracer._resource import parse_arn
from tracer._runtime import Runtime, install
from tracer._safe import safe, swallowed
from tracer._span import LeanSpan

F = TypeVar("F", bound=Callable[..., Any])

_MARKER = "__afterglow_traced__"
# AFTERGLOW_CAPTURE_PAYLOAD: the event and the response, as masked JSON text, on the invocation span
EVENT_ATTRIBUTE = "faas.invocation.event"
RESPONSE_ATTRIBUTE = "faas.invocation.response"
_NO_RESULT = object()
XRAY_LINK_ATTRIBUTE = "aws.xray.lambda_segment"  # marks the link to Lambda's X-Ray segment among message links

# The invocation open in this context: a handler traced twice (the zero-code wrapper around a handler
# the user decorated too) gets one invocation span, from the outer application.
_open: ContextVar[Invocation | None] = ContextVar("afterglow_invocation", default=None)
_cold_start = True
_triggers: Any = None  # tracer.triggers, imported at the first invocation


def is_traced(function: object) -> bool:
    """True when ``function`` was made by ``trace_handler`` (for wrappers that should not apply it again)."""
    return bool(getattr(function, _MARKER, False))


@overload
def trace_handler(handler: F) -> F: ...


@overload
def trace_handler(
    handler: None = None, *, name: str | None = None, attributes: Mapping[str, Any] | None = None
) -> Callable[[F], F]: ...


def trace_handler(
    handler: F | None = None, *, name: str | None = None, attributes: Mapping[str, Any] | None = None
) -> F | Callable[[F], F]:
    """Trace a Lambda handler: ``@trace_handler`` or ``@trace_handler(name="checkout", attributes={...})``.

    ``name`` replaces the span name (by default the HTTP route for HTTP triggers, else the function name);
    ``attributes`` are added to every invocation span. Works on ``def`` and ``async def`` handlers.
    """
    if name is not None and not isinstance(name, str):
        raise ValueError(f"trace_handler(name=...) must be a string, got {type(name).__name__}")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise ValueError(f"trace_handler(attributes=...) must be a mapping, got {type(attributes).__name__}")
    if handler is None:
        return lambda function: _wrap(function, name, attributes)
    return _wrap(handler, name, attributes)


def _wrap(handler: F, name: str | None, attributes: Mapping[str, Any] | None) -> F:
    if not callable(handler):
        raise TypeError(f"trace_handler expects a function, got {type(handler).__name__}")
    if config.read_bool("OTEL_SDK_DISABLED", False):
        return handler
    options = _Options(name, dict(attributes) if attributes else None, getattr(handler, "__name__", None))
    with safe("setting up tracing"):
        install()
    with safe("turning on the library patches"):
        instrument_libraries()

    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            if _open.get() is not None:
                return await handler(*args, **kwargs)
            invocation = None
            with safe("opening the invocation span"):
                invocation = _begin(options, args, kwargs)
            try:
                result = await handler(*args, **kwargs)
            except BaseException as error:
                if invocation is not None:
                    with safe("closing the invocation span"):
                        invocation.close(_NO_RESULT, error)
                raise
            if invocation is not None:
                with safe("closing the invocation span"):
                    invocation.close(result, None)
            return result

        setattr(traced_async, _MARKER, True)
        return traced_async  # type: ignore[return-value]

    @functools.wraps(handler)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if _open.get() is not None:
            return handler(*args, **kwargs)
        # ``except Exception`` written out rather than ``with safe(...)``: the same guard, without its three calls.
        try:
            invocation = _begin(options, args, kwargs)
        except Exception as failure:
            swallowed("opening the invocation span", failure)
            invocation = None
        try:
            result = handler(*args, **kwargs)
        except BaseException as error:
            if invocation is not None:
                with safe("closing the invocation span"):
                    invocation.close(_NO_RESULT, error)
            raise
        if invocation is not None:
            try:
                invocation.close(result, None)
            except Exception as failure:
                swallowed("closing the invocation span", failure)
        return result

    setattr(traced, _MARKER, True)
    return traced  # type: ignore[return-value]


def instrument_libraries() -> None:
    """The library patches a traced handler comes with, as users of the field expect (Powertools' Tracer patches
    boto3 and requests by default): an import hook per library ``AFTERGLOW_INSTRUMENT`` selects (all by default,
    minus ``AFTERGLOW_DISABLE``), so a library is patched when the function imports it and costs nothing before.
    Only ``logging``, which the OpenTelemetry API has already imported, is patched at once (no wrapt): decorating
    took 1.1-1.3 ms instead of 0.14-0.17 ms (median of 15 fresh interpreters, 2 shared cores, load 4), once, at
    init. ``AFTERGLOW_INSTRUMENT=none`` leaves them off and ``instrumentation`` unimported. Calling again is
    harmless."""
    if config.read_list(config.AFTERGLOW_INSTRUMENT, ("all",)) == ("none",):
        return
    import instrumentation  # at decoration, never at import: tracer's own import stays light

    instrumentation.instrument()


class _Options:
    __slots__ = ("attributes", "function_name", "name")

    def __init__(self, name: str | None, attributes: dict[str, Any] | None, function_name: str | None) -> None:
        self.name = name
        self.attributes = attributes
        self.function_name = function_name


class Invocation:
    """One open invocation: its span, the context tokens to restore, and what END needs."""

    __slots__ = ("context", "context_token", "cpu_started", "open_token", "request_id", "runtime", "span", "trigger")

    def __init__(self, runtime: Runtime, span: Span, request_id: str, trigger: Any, context: object) -> None:
        self.runtime = runtime
        self.span = span
        self.request_id = request_id
        self.trigger = trigger
        self.context = context
        self.context_token: Token[Context] | None = None
        self.open_token: Token[Invocation | None] | None = None
        self.cpu_started: tuple[float, float] | None = None  # tracer._profile's start

    def close(self, result: object, error: BaseException | None) -> None:
        span = self.span
        try:
            if self.open_token is not None:
                _open.reset(self.open_token)
            if self.context_token is not None:
                detach_span(self.context_token)
            if error is not None:
                span.record_exception(error, escaped=True)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            else:
                if self.trigger is not None and self.trigger.is_http:
                    self._response(result)
                capture = self.runtime.capture
                if capture is not None and span.is_recording():
                    span.set_attribute(RESPONSE_ATTRIBUTE, capture.text(result))
        finally:
            _profile.finish(span, self.cpu_started)
            span.end()
            handoff = self.runtime.handoff
            if handoff is not None:
                sampled = span.sampled if type(span) is LeanSpan else span.get_span_context().trace_flags.sampled
                # Under awslambdaric, END leaves once the runtime has posted the response (_response_hook).
                after_response = _response_hook.HOOK.in_runtime_invocation
                # The time left is asked now only for an in-process export (asking the runtime costs a few us);
                # otherwise only if the function is to wait for an extension that is behind, after the response.
                context = self.context
                timeout = _fallback_timeout(context) if handoff.mode == FALLBACK else 5.0
                handoff.finish(self.request_id, sampled, timeout, after_response,
                               time_left=lambda: _fallback_timeout(context))

    def _response(self, result: object) -> None:
        try:
            attributes, server_error = _triggers.response_attributes(self.trigger, result)
        except Exception as error:  # our trigger code; the span still ends below
            swallowed("reading the HTTP response", error)
            return
        if attributes:
            self.span.set_attributes(attributes)
        if server_error:
            self.span.set_status(StatusCode.ERROR)


def _begin(options: _Options, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Invocation:
    global _cold_start
    runtime = install()
    event = args[0] if args else kwargs.get("event")
    context = args[1] if len(args) > 1 else kwargs.get("context")
    trigger = _describe(event, context)
    request_id = getattr(context, "aws_request_id", None)
    if not isinstance(request_id, str) or not request_id:
        request_id = "unknown"

    attributes: dict[str, Any] = dict(trigger.attributes) if trigger is not None else {}
    attributes.setdefault("faas.trigger", trigger.faas_trigger if trigger is not None else "other")
    attributes["faas.invocation_id"] = request_id
    attributes["faas.coldstart"] = _cold_start
    attributes.update(_arn_attributes(getattr(context, "invoked_function_arn", None), context))
    if options.attributes:
        attributes.update(options.attributes)

    name = options.name or (trigger.span_name if trigger is not None else None)
    if not name:
        function_name = getattr(context, "function_name", None)
        name = function_name if isinstance(function_name, str) and function_name else options.function_name
    links = _links(trigger) if trigger is not None and trigger.links else None
    if "xray" not in runtime.parent_sources:
        links = _with_xray_link(links)
    sources = runtime.parent_sources
    # A trigger without a carrier, and no X-Ray among the sources: no parent to look for (and no call to look).
    parent = _parent(sources, trigger, event) if trigger is None or trigger.carrier or "xray" in sources else None
    span = runtime.tracer.start_span(
        name or "handler",
        context=Context({SPAN_KEY: NonRecordingSpan(parent)}) if parent is not None else None,
        kind=SpanKind.SERVER,
        attributes=attributes,
        links=links,
    )
    if runtime.capture is not None and span.is_recording():  # before START, so a crash still shows the event
        span.set_attribute(EVENT_ATTRIBUTE, runtime.capture.text(event))
    handoff = runtime.handoff
    if handoff is not None:
        if _cold_start:
            from tracer._resource import lambda_resource

            handoff.resource = lambda_resource(context, options.function_name)
        own = span if isinstance(span, LeanSpan) and span.sampled else None
        handoff.begin(request_id, own)
    _cold_start = False

    invocation = Invocation(runtime, span, request_id, trigger, context)
    invocation.context_token = attach_span(span)  # type: ignore[assignment]
    invocation.open_token = _open.set(invocation)
    invocation.cpu_started = _profile.start(span)
    return invocation


def _describe(event: object, context: object) -> Any:
    global _triggers
    if _triggers is None:
        try:
            from tracer import triggers
        except ImportError:  # a trimmed install: plain spans named after the function
            _triggers = False
        else:
            _triggers = triggers
    if not _triggers:
        return None
    return _triggers.describe(event, context)


def _links(trigger: Any) -> list[Any] | None:
    if trigger is None or not trigger.links:
        return None
    links = []
    for link in trigger.links:
        state = TraceState.from_header([link.trace_state]) if link.trace_state else None
        span_context = SpanContext(link.trace_id, link.span_id, True, TraceFlags(link.trace_flags), state)
        links.append(Link(span_context, link.attributes or None))
    return links


def _with_xray_link(links: list[Any] | None) -> list[Any] | None:
    """Lambda's X-Ray segment as a link, not the parent: an OTLP backend never receives that segment, so a child of
    it would show as a trace without a root. Only a sampled segment (X-Ray active tracing on) exists to link to."""
    xray = extract_xray(config.raw("_X_AMZN_TRACE_ID"), require_sampled=True)
    if xray is None:
        return links
    return [*(links or ()), Link(xray, {XRAY_LINK_ATTRIBUTE: True})]


def _parent(sources: tuple[str, ...], trigger: Any, event: object) -> SpanContext | None:
    """The invocation span's remote parent, from the sources in AFTERGLOW_TRACE_PARENT order."""
    for source in sources:
        if source == "tracecontext":
            carrier = trigger.carrier if trigger is not None else _event_headers(event)
            if carrier:
                found = extract_traceparent(carrier.get("traceparent"), carrier.get("tracestate"))
                if found is not None:
                    return found
        elif source == "xray":
            found = extract_xray(config.raw("_X_AMZN_TRACE_ID"), require_sampled=True)
            if found is not None:
                return found
    return None


def _event_headers(event: object) -> dict[str, str] | None:
    """Headers of an HTTP event, lower-cased, for when tracer.triggers is not installed."""
    headers = event.get("headers") if isinstance(event, dict) else None
    if not isinstance(headers, dict):
        return None
    return {key.lower(): value for key, value in headers.items() if isinstance(key, str) and isinstance(value, str)}


# The invoked ARN and version of the last invocation, and the attributes they give: the same on every
# invocation of an environment (an alias or version is one function ARN), so parsed once.
_arn_cache: tuple[object, object, dict[str, str]] = (None, None, {})


def _arn_attributes(invoked_arn: object, context: object) -> dict[str, str]:
    """``cloud.account.id``, ``cloud.resource_id`` and ``aws.lambda.invoked_arn`` (none for a malformed ARN)."""
    global _arn_cache
    version = getattr(context, "function_version", None)
    cached_arn, cached_version, attributes = _arn_cache
    if invoked_arn == cached_arn and version == cached_version and type(invoked_arn) is str:
        return attributes
    arn = parse_arn(invoked_arn)
    if arn is None:
        return {}
    assert isinstance(invoked_arn, str)
    attributes = {
        "cloud.account.id": arn[1],
        "cloud.resource_id": _resource_id(arn[2], invoked_arn, context),
        "aws.lambda.invoked_arn": invoked_arn,
    }
    _arn_cache = (invoked_arn, version, attributes)
    return attributes


def _resource_id(function_arn: str, invoked_arn: str, context: object) -> str:
    """The function ARN with the version that ran (semantic conventions: an alias is resolved, not kept)."""
    version = getattr(context, "function_version", None)
    if invoked_arn.count(":") >= 7 and isinstance(version, str) and version and version != "$LATEST":
        return f"{function_arn}:{version}"
    return function_arn


def _fallback_timeout(context: object) -> float:
    """How long an in-process export may take: what is left of the invocation, less a margin."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    try:
        left_ms = float(remaining()) if callable(remaining) else 5000.0
    except Exception:
        left_ms = 5000.0
    return max(0.05, min(5.0, left_ms / 1000.0 - 0.2))
