"""The instrumentor contract: idempotent instrument/uninstrument, a supported version range, wrapt wrappers.

A subclass names its patches in ``_patch`` with ``self._wrap(owner, "attribute", wrapper)``. Wrappers take
``(wrapped, instance, args, kwargs)``. ``uninstrument`` restores an attribute only where our wrapper is
still the one installed; where someone wrapped on top of ours, ours is switched off instead, so their
wrapper keeps working.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from tracer._safe import warn_once

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def parse_version(text: str) -> tuple[int, ...]:
    """``"2.31.0rc1"`` -> ``(2, 31, 0)``: the leading numeric parts."""
    parts: list[int] = []
    for piece in text.split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


class Instrumentor:
    """One library's patches."""

    name = ""  # as in AFTERGLOW_INSTRUMENT
    module = ""  # the module whose import applies the patches
    supported: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # [lowest, first unsupported)

    def __init__(self) -> None:
        self._patches: list[tuple[Any, str, Any, Any]] = []  # owner, attribute, original, our proxy
        self.enabled = False

    @property
    def instrumented(self) -> bool:
        return self.enabled

    def instrument(self, module: ModuleType | None = None) -> None:
        if self.enabled:
            return
        if module is None:
            import importlib

            module = importlib.import_module(self.module)
        if not self._version_supported(module):
            return
        self.enabled = True
        self._patch(module)

    def uninstrument(self) -> None:
        self.enabled = False
        remaining = []
        for owner, attribute, original, proxy in self._patches:
            current = owner.__dict__.get(attribute)
            # A patcher that saved ``Class.method`` and put it back leaves our proxy bound to the class.
            if current is proxy or getattr(current, "_self_parent", None) is proxy:
                setattr(owner, attribute, original)
            else:  # wrapped again on top of ours: leave it, ours passes calls straight through while disabled
                remaining.append((owner, attribute, original, proxy))
        self._patches = remaining
        self._unpatch()

    def _patch(self, module: ModuleType) -> None:
        raise NotImplementedError

    def _unpatch(self) -> None:
        """Undo anything that is not a ``_wrap`` (e.g. a logging record factory)."""

    def _wrap(self, owner: Any, attribute: str, wrapper: Wrapper) -> None:
        import wrapt  # only now: the library being patched is being imported anyway

        if any(patched is owner and name == attribute for patched, name, _, _ in self._patches):
            return  # still wrapped from an earlier instrument() (someone wrapped on top of ours)
        original = owner.__dict__[attribute]
        instrumentor = self

        def gate(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if not instrumentor.enabled:
                return wrapped(*args, **kwargs)
            return wrapper(wrapped, instance, args, kwargs)

        proxy = wrapt.FunctionWrapper(original, gate)
        setattr(owner, attribute, proxy)
        self._patches.append((owner, attribute, original, proxy))

    def _version_supported(self, module: ModuleType) -> bool:
        if self.supported is None:
            return True
        # The package holds __version__ (urllib3, not urllib3.connectionpool); it is imported by then.
        module = sys.modules.get(self.module.partition(".")[0], module)
        version = parse_version(str(getattr(module, "__version__", "")))
        lowest, beyond = self.supported
        if version and lowest <= version < beyond:
            return True
        warn_once(
            f"instrumentation-version-{self.name}",
            "afterglow: not instrumenting %s %s: supported versions are >= %s, < %s",
            self.name,
            getattr(module, "__version__", "(unknown version)"),
            ".".join(map(str, lowest)),
            ".".join(map(str, beyond)),
        )
        return False
