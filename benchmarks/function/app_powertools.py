"""``powertools``: the same work with Powertools for AWS Lambda's Tracer over the X-Ray SDK, as its docs set it
up (``Tracer()`` at module level, ``@tracer.capture_lambda_handler``, a subsegment per span through
``tracer.provider.in_subsegment``, attributes as annotations). The SDK sends subsegments to the daemon address
over UDP.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from work import do_work

tracer = Tracer()


class _Subsegment:
    __slots__ = ("_subsegment",)

    def __init__(self, subsegment: Any) -> None:
        self._subsegment = subsegment

    def set_attribute(self, key: str, value: object) -> None:
        self._subsegment.put_annotation(key.replace(".", "_"), value)


@contextmanager
def _subsegment(name: str) -> Iterator[_Subsegment]:
    with tracer.provider.in_subsegment(name) as subsegment:
        yield _Subsegment(subsegment)


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return do_work(event, _subsegment)
