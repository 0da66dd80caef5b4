"""The function's side of the invocation profile: CPU time of the runtime process during the invocation.

``getrusage(RUSAGE_SELF)`` gives user and system time at microsecond resolution for about a microsecond per
call, so the invocation span gets ``process.cpu.time.user`` and ``process.cpu.time.system`` (seconds) for two
calls. The rest of the profile (peak resident memory, network bytes) is read by the extension from ``/proc``
(``extension/profile.py``): the handler pays nothing for it.

The start is kept by the caller (the open invocation), so threads and event loops that run handlers side by side
(tests do) each measure their own invocation; the numbers are the whole process's, as on Lambda, where one
process runs one invocation at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.trace.span import Span

from tracer import config
from tracer._safe import swallowed
from tracer._span import LeanSpan

CPU_USER = "process.cpu.time.user"
CPU_SYSTEM = "process.cpu.time.system"

_getrusage: Callable[[int], Any] | None = None  # resource.getrusage, imported at the first invocation
_SELF = 0  # resource.RUSAGE_SELF
_enabled: bool | None = None


def _load() -> bool:
    global _enabled, _getrusage, _SELF
    _enabled = config.read_bool(config.AFTERGLOW_PROFILE, True)
    if _enabled:
        try:
            import resource  # 0.3 ms: not at import time, cold start is a feature
        except ImportError:  # not a Unix: no profile
            _enabled = False
        else:
            _getrusage, _SELF = resource.getrusage, resource.RUSAGE_SELF
    return _enabled


def start(span: Span) -> tuple[float, float] | None:
    """The invocation begins (call right before the user's handler): the process's CPU times, for ``finish``."""
    # A lean span is recording as it starts: no call to ask it.
    if not (_enabled if _enabled is not None else _load()) or (type(span) is not LeanSpan and not span.is_recording()):
        return None
    try:
        usage = _getrusage(_SELF)  # type: ignore[misc]
        return (usage.ru_utime, usage.ru_stime)
    except Exception as error:
        swallowed("reading the CPU time at the start of the invocation", error)
        return None


def finish(span: Span, started: tuple[float, float] | None) -> None:
    """The invocation ends (call before the span ends): set the CPU time it used since ``start``. Never raises."""
    if started is None:
        return
    try:
        usage = _getrusage(_SELF)  # type: ignore[misc]
        # Differences of microsecond counts, as floats: never negative, at times 0.04000000000000001.
        span.set_attribute(CPU_USER, usage.ru_utime - started[0])
        span.set_attribute(CPU_SYSTEM, usage.ru_stime - started[1])
    except Exception as error:
        swallowed("setting the invocation's CPU time", error)
