"""Post-import hooks: run a callback right after a module has executed, or at once if it already has.

A ``sys.meta_path`` finder claims only the modules someone waits for; it asks the finders behind it for
the real spec and swaps in a loader that runs the module as usual, then the callbacks. Registering a hook
imports nothing but the standard library's ``sys`` and ``threading``: the target module and whatever
patches it (wrapt, OpenTelemetry) load only when the target itself is imported.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

Callback = Callable[[ModuleType], None]

_lock = threading.RLock()
_waiting: dict[str, list[Callback]] = {}
_busy = threading.local()  # names whose spec this thread is looking up right now (no recursion)


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` has been imported (now, if it already is), and on re-imports."""
    with _lock:
        _waiting.setdefault(name, []).append(callback)
        _install_finder()
    module = sys.modules.get(name)
    if module is not None and _initialised(module):
        _run(name, module, [callback])


def cancel(name: str, callback: Callback) -> None:
    """Forget a callback registered with ``when_imported``; unknown ones are ignored."""
    with _lock:
        callbacks = _waiting.get(name, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            _waiting.pop(name, None)


def waiting() -> dict[str, int]:
    """How many callbacks wait per module name (for tests and diagnostics)."""
    with _lock:
        return {name: len(callbacks) for name, callbacks in _waiting.items()}


def _initialised(module: ModuleType) -> bool:
    # A module mid-import is in sys.modules already; its spec says so until it has finished executing.
    spec = getattr(module, "__spec__", None)
    return not getattr(spec, "_initializing", False)


def _run(name: str, module: ModuleType, callbacks: list[Callback]) -> None:
    for callback in callbacks:
        try:
            callback(module)
        except Exception as error:  # a hook must never break the user's import
            from tracer._safe import swallowed

            swallowed(f"post-import hook for {name}", error)


class _PostImportFinder:
    """Meta-path finder that wraps the loader of modules with waiting callbacks."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _waiting:
            return None
        busy: set[str] = _busy.__dict__.setdefault("names", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = None
            for finder in list(sys.meta_path):
                if finder is self:
                    continue
                find_spec = getattr(finder, "find_spec", None)
                if find_spec is None:
                    continue
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _NotifyingLoader(spec.loader)
        return spec

    def invalidate_caches(self) -> None:
        return None


class _NotifyingLoader:
    """Runs the real loader, puts it back on the module, then runs the callbacks."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps the real loader (importlib.resources and friends inspect it).
        module.__loader__ = self.loader
        spec = getattr(module, "__spec__", None)
        if spec is not None:
            spec.loader = self.loader
        self.loader.exec_module(module)
        with _lock:
            callbacks = list(_waiting.get(module.__name__, ()))
        _run(module.__name__, module, callbacks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


_finder = _PostImportFinder()


def _install_finder() -> None:
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
