"""``lumigo``: the same work with Lumigo's tracer, as its README sets it up (the ``lumigo_tracer`` decorator).

Lumigo has no child-span API: a timed section of the function is a *manual trace* (``start_manual_trace`` /
``stop_manual_trace``), sent inside the function span; attributes are *execution tags* (``add_execution_tag``).
The tracer sends the function span to its edge over HTTPS at the end of the invocation (and a start span at its
beginning); ``LUMIGO_TRACER_HOST`` points it at the benchmark's loopback receiver.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lumigo_tracer import add_execution_tag, lumigo_tracer, start_manual_trace, stop_manual_trace
from work import do_work


class _ManualTrace:
    """The span interface the work uses: attributes become execution tags (Lumigo's searchable key/values)."""

    __slots__ = ()

    def set_attribute(self, key: str, value: object) -> None:
        add_execution_tag(key, str(value), should_log_errors=False)


_TRACE = _ManualTrace()


@contextmanager
def _manual_trace(name: str) -> Iterator[_ManualTrace]:
    start_manual_trace(name)
    try:
        yield _TRACE
    finally:
        stop_manual_trace(name)


@lumigo_tracer(token=os.environ.get("LUMIGO_TRACER_TOKEN", "t_benchmark"))
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return do_work(event, _manual_trace)
