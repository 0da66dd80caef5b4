"""``datadog``: the same work with ddtrace, as Datadog's Lambda docs set it up: the function's handler is
``datadog_lambda.handler.handler`` and ``DD_LAMBDA_HANDLER`` names this one; child spans through
``ddtrace.tracer.trace``, attributes as tags.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ddtrace.trace import tracer
from work import do_work


class _Span:
    """The span interface the work uses, on a ddtrace span (attributes are tags; numbers are metrics)."""

    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    def set_attribute(self, key: str, value: object) -> None:
        self._span.set_tag(key, value)


@contextmanager
def _trace(name: str) -> Iterator[_Span]:
    with tracer.trace(name) as span:
        yield _Span(span)


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return do_work(event, _trace)
