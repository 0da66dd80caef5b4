"""Library instrumentation for afterglow: botocore, HTTP clients, log correlation, context across threads.

``instrument()`` only registers import hooks: nothing is imported for it (not wrapt, not OpenTelemetry,
not the libraries), and each library is patched when it is imported, or at once if it already was.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LIBRARIES", "instrument", "uninstrument"]

from instrumentation._registry import LIBRARIES


def instrument(libraries: Iterable[str] | None = None) -> None:
    """Instrument ``libraries`` (default: AFTERGLOW_INSTRUMENT minus AFTERGLOW_DISABLE); calling again is harmless."""
    from instrumentation import _registry

    _registry.instrument(libraries)


def uninstrument() -> None:
    """Remove every patch and pending hook ``instrument()`` made."""
    from instrumentation import _registry

    _registry.uninstrument()
