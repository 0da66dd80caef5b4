"""Context across threads: work submitted to a ``ThreadPoolExecutor`` runs in the submitter's OpenTelemetry context.

So spans started in a worker keep the handler's span as their parent. Only OpenTelemetry's context travels
(attached for the task, detached after it): the user's own context variables behave in workers exactly as they
would without afterglow. asyncio needs nothing: every task runs in a copy of the context that created it.

The runtime's own submissions are left alone. On python3.12 and later, awslambdaric waits for each next event on
a one-worker pool it creates per invocation (so that the main thread can take signals); wrapping that submit
would cost every invocation a closure and an attach/detach that are not the user's, and would carry whatever
context the main thread holds after the handler into the runtime's machinery, across the freeze. A submit whose
caller is in awslambdaric's package runs untouched (a walk up two frames, about half a microsecond).
"""

from __future__ import annotations

import sys
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


_RUNTIME_PACKAGE = "awslambdaric"
_OWN_FRAMES = ("instrumentation.", "wrapt.")  # between the submitter and us: our gate, and wrapt without its C code


def _submit(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not args or _spans.suppressed() or _submitted_by_the_runtime():
        return wrapped(*args, **kwargs)
    # submit(fn, /, *args, **kwargs): run fn with the submitter's OpenTelemetry context attached.
    return wrapped(_with_context(otel_context.get_current(), args[0]), *args[1:], **kwargs)


def _submitted_by_the_runtime() -> bool:
    frame = sys._getframe(1)
    name = str(frame.f_globals.get("__name__", ""))
    while name.startswith(_OWN_FRAMES) and frame.f_back is not None:
        frame = frame.f_back
        name = str(frame.f_globals.get("__name__", ""))
    return name == _RUNTIME_PACKAGE or name.startswith(_RUNTIME_PACKAGE + ".")


def _with_context(context: otel_context.Context, fn: Callable[..., Any]) -> Callable[..., Any]:
    def in_context(*args: Any, **kwargs: Any) -> Any:
        token = otel_context.attach(context)
        try:
            return fn(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return in_context
