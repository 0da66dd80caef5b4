"""Which libraries can be instrumented, which are selected (arguments, then env), and their import hooks."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from types import ModuleType

from tracer import config
from tracer._safe import warn_once

from . import _hooks

# name -> (module whose import applies the patch, "module:Instrumentor")
LIBRARIES: dict[str, tuple[str, str]] = {
    "botocore": ("botocore.client", "instrumentation.botocore:BotocoreInstrumentor"),
    "http.client": ("http.client", "instrumentation.http_client:HttpClientInstrumentor"),
    "urllib3": ("urllib3.connectionpool", "instrumentation.urllib3:Urllib3Instrumentor"),
    "requests": ("requests.sessions", "instrumentation.requests:RequestsInstrumentor"),
    "logging": ("logging", "instrumentation.log_correlation:LogCorrelationInstrumentor"),
    "threads": ("concurrent.futures.thread", "instrumentation.threads:ThreadsInstrumentor"),
}

_lock = threading.RLock()
_hooked: dict[str, _hooks.Callback] = {}  # library -> its registered hook
_instrumentors: dict[str, object] = {}  # library -> Instrumentor, created when its module is imported


def selected(libraries: Iterable[str] | None = None) -> list[str]:
    """The libraries to instrument: the argument, or AFTERGLOW_INSTRUMENT (``none``: nothing); minus
    AFTERGLOW_DISABLE."""
    if libraries is None:
        wanted = config.read_list(config.AFTERGLOW_INSTRUMENT, ("all",))
    else:
        wanted = tuple(name.strip().lower() for name in libraries)
    if wanted == ("none",):
        return []
    names = list(LIBRARIES) if "all" in wanted else [name for name in wanted if name]
    disabled = set(config.read_list(config.AFTERGLOW_DISABLE, ()))
    if not config.read_bool(config.AFTERGLOW_LOG_CORRELATION, True):
        disabled.add("logging")
    unknown = [name for name in (*names, *disabled) if name not in LIBRARIES]
    if unknown:
        warn_once(
            f"instrument-unknown-{','.join(unknown)}",
            "afterglow: ignoring unknown libraries %s; known: %s",
            ", ".join(unknown),
            ", ".join(LIBRARIES),
        )
    return [name for name in LIBRARIES if name in names and name not in disabled]


def instrument(libraries: Iterable[str] | None = None) -> None:
    if config.read_bool("OTEL_SDK_DISABLED", False):
        return
    for name in selected(libraries):
        with _lock:
            if name in _hooked:
                continue
            hook = _hook_for(name)
            _hooked[name] = hook
        _hooks.when_imported(LIBRARIES[name][0], hook)


def uninstrument() -> None:
    with _lock:
        hooked = dict(_hooked)
        _hooked.clear()
        instrumentors = list(_instrumentors.values())
    for name, hook in hooked.items():
        _hooks.cancel(LIBRARIES[name][0], hook)
    for instrumentor in instrumentors:
        instrumentor.uninstrument()  # type: ignore[attr-defined]


def instrumentor(name: str) -> object | None:
    """The library's instrumentor once its module was imported (for tests and diagnostics)."""
    return _instrumentors.get(name)


def _hook_for(name: str) -> _hooks.Callback:
    def apply(module: ModuleType) -> None:
        if name not in _hooked:
            return  # uninstrumented meanwhile
        instance = _instrumentors.get(name)
        if instance is None:
            # Imported outside our lock: this runs inside another module's import, holding its import lock.
            module_name, _, class_name = LIBRARIES[name][1].partition(":")
            created = getattr(importlib.import_module(module_name), class_name)()
            with _lock:
                instance = _instrumentors.setdefault(name, created)
        instance.instrument(module)  # type: ignore[attr-defined]

    return apply
