"""``trace``: child spans without holding a tracer: ``@trace``, ``@trace("name")``, ``with trace("name"):``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind
from opentelemetry.trace.span import Span

from tracer import __version__

F = TypeVar("F", bound=Callable[..., Any])
SCOPE = "afterglow"

_cached: tuple[trace_api.TracerProvider, trace_api.Tracer] | None = None


def _tracer() -> trace_api.Tracer:
    """The global provider's tracer, cached until the global provider changes."""
    global _cached
    provider = trace_api.get_tracer_provider()
    cached = _cached
    if cached is not None and cached[0] is provider:
        return cached[1]
    tracer = provider.get_tracer(SCOPE, __version__)
    _cached = (provider, tracer)
    return tracer


class SpanBlock:
    """A named span as a context manager (yields the span) or as a sync/async decorator."""

    __slots__ = ("_managers", "attributes", "kind", "name")

    def __init__(self, name: str, kind: SpanKind, attributes: Mapping[str, Any] | None) -> None:
        self.name = name
        self.kind = kind
        self.attributes = attributes
        self._managers: list[Any] = []

    def __enter__(self) -> Span:
        manager = _tracer().start_as_current_span(self.name, kind=self.kind, attributes=self.attributes)
        span = manager.__enter__()
        self._managers.append(manager)
        return span

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._managers.pop().__exit__(kind, error, traceback)

    def __call__(self, function: F) -> F:
        name, span_kind, attributes = self.name, self.kind, self.attributes
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with SpanBlock(name, span_kind, attributes):
                    return await function(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with SpanBlock(name, span_kind, attributes):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


@overload
def trace(target: F, /) -> F: ...


@overload
def trace(
    target: str | None = None, /, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None
) -> SpanBlock: ...


def trace(
    target: F | str | None = None,
    /,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> F | SpanBlock:
    """A child span of whatever is current. Bare on a function, its span is named after the function."""
    if callable(target):
        return SpanBlock(getattr(target, "__qualname__", None) or repr(target), kind, attributes)(target)
    if target is not None and not isinstance(target, str):
        raise ValueError(f"trace() takes a span name or a function, got {type(target).__name__}")
    if not isinstance(kind, SpanKind):
        raise ValueError(f"trace(kind=...) must be an opentelemetry.trace.SpanKind, got {kind!r}")
    return SpanBlock(target or "span", kind, attributes)
