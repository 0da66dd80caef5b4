"""The guard around everything afterglow does next to the user's handler: log, count, never raise.

Our code runs in the second of three zones (see CONTRIBUTING.md): a bug in it must turn into a log line, never
into a changed result or exception of the handler. The test suite installs a hook that collects what was
swallowed and fails the test, so bugs still surface there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger("afterglow")
log.addHandler(logging.NullHandler())

SwallowHook = Callable[[str, BaseException], None]

# Set by the test suite's autouse fixture; None in production.
_hook: SwallowHook | None = None
_warned: set[str] = set()


def set_swallow_hook(hook: SwallowHook | None) -> SwallowHook | None:
    """Install ``hook(what, error)`` to see every swallowed error; returns the previous hook."""
    global _hook
    previous, _hook = _hook, hook
    return previous


def swallowed(what: str, error: BaseException) -> None:
    """Report an error that afterglow caught and dropped (call from an ``except Exception`` block)."""
    try:
        log.warning("afterglow: %s failed; the handler is not affected", what, exc_info=error)
    finally:
        hook = _hook
        if hook is not None:
            hook(what, error)


def warn_once(key: str, message: str, *args: object) -> None:
    """A configuration or environment problem worth one log line per process, not one per invocation."""
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


class safe:  # lower case: it reads as a guard, ``with safe("what"):``
    """``with safe("what"):`` runs a block whose ``Exception`` is logged and swallowed.

    BaseExceptions that are not Exceptions (KeyboardInterrupt, SystemExit) pass: they are not our bugs.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        swallowed(self.what, error)
        return True
