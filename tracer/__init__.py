"""afterglow's function side: the invocation span, lean spans behind the OpenTelemetry API, the hand-off.

Import-light on purpose: the extension imports ``tracer.config`` and ``tracer.wire`` and must start fast,
so the public names below are loaded on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["is_traced", "trace", "trace_handler"]

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing would cost the extension's start-up ~3 ms
if TYPE_CHECKING:
    from typing import Any

    from tracer._decorator import trace
    from tracer._handler import is_traced, trace_handler

_LAZY = {"trace_handler": "tracer._handler", "is_traced": "tracer._handler", "trace": "tracer._decorator"}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tracer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
