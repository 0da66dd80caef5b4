"""The process-wide tracing state: the global provider and the hand-off, set up once at the function's init.

``install()`` runs when ``trace_handler`` is first applied. When nobody has set a TracerProvider, ours
becomes the global one (``opentelemetry.trace.set_tracer_provider``). When the user already set one (an
SDK provider with its own exporter, say), theirs is kept with one warning: their pipeline exports the
spans, the invocation span included, and afterglow sends nothing to the extension, which then ends each
invocation on the platform's ``runtimeDone`` instead of our END marker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind

from tracer import __version__, _response_hook, config
from tracer._handoff import Handoff
from tracer._limits import SpanLimits
from tracer._provider import CurrentSpan, LeanTracer, LeanTracerProvider
from tracer._safe import log, warn_once
from tracer._sampling import sampler_from_env

if TYPE_CHECKING:
    from tracer._capture import PayloadCapture

SCOPE = "afterglow"
_INTERNAL = SpanKind.INTERNAL
_PARENT_SOURCES = ("tracecontext", "xray", "none")


class Runtime:
    """What the decorator needs per invocation, resolved once."""

    __slots__ = ("capture", "handoff", "parent_sources", "provider", "tracer")

    def __init__(
        self,
        provider: trace_api.TracerProvider,
        handoff: Handoff | None,
        parent_sources: tuple[str, ...],
        capture: PayloadCapture | None = None,
    ) -> None:
        self.provider = provider
        self.handoff = handoff
        self.parent_sources = parent_sources
        self.capture = capture  # None unless AFTERGLOW_CAPTURE_PAYLOAD: the handler then skips it for free
        self.tracer = provider.get_tracer(SCOPE, __version__)


_runtime: Runtime | None = None
_proxy_original: Any = None  # ProxyTracer.start_as_current_span before _shortcut_proxy_tracers


def install() -> Runtime:
    """Set up tracing for this process (idempotent)."""
    global _runtime
    if _runtime is not None:
        return _runtime
    _apply_log_level()
    current = trace_api.get_tracer_provider()
    handoff: Handoff | None = None
    if isinstance(current, LeanTracerProvider):
        provider: trace_api.TracerProvider = current
        handoff = current.sink if isinstance(current.sink, Handoff) else None
    elif isinstance(current, trace_api.ProxyTracerProvider):
        handoff = Handoff(config.socket_path())
        if not config.read_bool(config.AFTERGLOW_OPEN_SPANS, True):
            handoff.open_spans.disable()  # a span's start then takes no slot (about 5 us less per span, caches cold)
        provider = LeanTracerProvider(handoff, sampler_from_env(), SpanLimits.from_env())
        trace_api.set_tracer_provider(provider)
        if trace_api.get_tracer_provider() is not provider:  # lost a race with another thread's provider
            provider, handoff = trace_api.get_tracer_provider(), None
        else:
            _shortcut_proxy_tracers()
    else:
        provider = current
        warn_once(
            "foreign_provider",
            "afterglow: a TracerProvider (%s) was set before trace_handler; keeping it. Its own pipeline exports "
            "the spans, the invocation span included; nothing goes to the afterglow extension.",
            type(current).__name__,
        )
    if handoff is not None and _response_hook.install():
        _response_hook.HOOK.on_response = handoff.response_posted
    _runtime = Runtime(provider, handoff, _parent_sources(), _payload_capture(provider))
    return _runtime


def _shortcut_proxy_tracers() -> None:
    """Let module-level tracers (``trace.get_tracer(__name__)`` before our provider existed) reach ours directly.

    Such a tracer is the API's ProxyTracer, whose ``start_as_current_span`` wraps the real one in a generator
    context manager: ~1.3 us per span here, on every span of the process. Once the global provider is set it
    can never change, so delegating straight to the real tracer gives the same behaviour. Functions already
    decorated with a proxy's ``start_as_current_span`` keep the API's own context manager.
    """
    global _proxy_original
    proxy = trace_api.ProxyTracer
    if not isinstance(getattr(proxy, "_tracer", None), property) or _proxy_original is not None:
        return

    def start_as_current_span(
        self: Any,
        name: str,
        context: Any = None,
        kind: SpanKind = _INTERNAL,
        attributes: Any = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Any:
        # ``_real_tracer``, once resolved, spares the ``_tracer`` property's call on every span. Our own tracer's
        # context manager is made here, not in a call to its method: one Python call (and its keyword
        # arguments' dict) fewer on every span.
        tracer = self._real_tracer or self._tracer
        arguments = (name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception)
        if type(tracer) is LeanTracer:
            return CurrentSpan(tracer, arguments, end_on_exit)
        return tracer.start_as_current_span(*arguments, end_on_exit=end_on_exit)

    _proxy_original = proxy.start_as_current_span
    proxy.start_as_current_span = start_as_current_span  # type: ignore[method-assign]


def current() -> Runtime | None:
    return _runtime


def _parent_sources() -> tuple[str, ...]:
    sources = config.read_list(config.AFTERGLOW_TRACE_PARENT, ("tracecontext",))
    unknown = [source for source in sources if source not in _PARENT_SOURCES]
    if unknown:
        warn_once(
            "trace_parent", "afterglow: ignoring unknown %s entries %s", config.AFTERGLOW_TRACE_PARENT, unknown
        )
    known = tuple(source for source in sources if source in _PARENT_SOURCES)
    return known[: known.index("none")] if "none" in known else known


def _payload_capture(provider: trace_api.TracerProvider) -> PayloadCapture | None:
    if not config.read_bool(config.AFTERGLOW_CAPTURE_PAYLOAD, False):
        return None
    import re

    from tracer._capture import PayloadCapture

    limits = provider.limits if isinstance(provider, LeanTracerProvider) else SpanLimits.from_env()
    pattern = config.raw(config.AFTERGLOW_CAPTURE_MASK)
    try:
        return PayloadCapture.from_pattern(pattern, limits.max_span_value_length)
    except re.error as error:
        warn_once(
            "capture_mask",
            "afterglow: ignoring %s=%r (%s); masking with the built-in pattern",
            config.AFTERGLOW_CAPTURE_MASK,
            pattern,
            error,
        )
        return PayloadCapture.from_pattern(None, limits.max_span_value_length)


def _apply_log_level() -> None:
    name = config.read_str(config.AFTERGLOW_LOG_LEVEL, "WARNING").upper()
    level = logging.getLevelName(name)
    if isinstance(level, int):
        log.setLevel(level)
    else:
        warn_once("log_level", "afterglow: ignoring %s=%r; using WARNING", config.AFTERGLOW_LOG_LEVEL, name)


def reset_for_tests() -> None:
    """Forget the process's tracing state, closing the hand-off (test fixtures only)."""
    global _runtime, _proxy_original
    runtime, _runtime = _runtime, None
    if _proxy_original is not None:  # the global provider is about to be unset, which production never does
        trace_api.ProxyTracer.start_as_current_span = _proxy_original  # type: ignore[method-assign]
        _proxy_original = None
    _response_hook.HOOK.on_response = None
    _response_hook.HOOK.in_runtime_invocation = False
    if runtime is not None and runtime.handoff is not None:
        runtime.handoff.close(0.5)
