"""Context across threads: work submitted to a ``ThreadPoolExecutor`` runs in the submitter's context.

So spans started in a worker keep the handler's span as their parent. asyncio needs nothing: every task
runs in a copy of the context that created it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from types import ModuleType
from typing import Any

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
    # submit(fn, /, *args, **kwargs): run fn inside a copy of the submitter's context.
    return wrapped(contextvars.copy_context().run, *args, **kwargs)
