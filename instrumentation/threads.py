"""Context across threads: work submitted to a ``ThreadPoolExecutor`` runs in the submitter's OpenTelemetry context.

So spans started in a worker keep the handler's span as their parent. Only OpenTelemetry's context travels
(attached for the task, detached after it): the user's own context variables behave in workers exactly as they
would without afterglow. asyncio needs nothing: every task runs in a copy of the context that created it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from opentelemetry import context as otel_context

from . import _spans
from ._base import Instrumentor


class ThreadsInstrumentor(Instrumentor):
    name = "threads"
    module = "concurrent.futures.thread"

    def _patch(self, module: ModuleType) -> None:
        self._wrap(module.ThreadPoolExecutor, "submit", _submit)


def _submit(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not args or _spans.suppressed():
        return wrapped(*args, **kwargs)
    # submit(fn, /, *args, **kwargs): run fn with the submitter's OpenTelemetry context attached.
    return wrapped(_with_context(otel_context.get_current(), args[0]), *args[1:], **kwargs)


def _with_context(context: otel_context.Context, fn: Callable[..., Any]) -> Callable[..., Any]:
    def in_context(*args: Any, **kwargs: Any) -> Any:
        token = otel_context.attach(context)
        try:
            return fn(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return in_context
