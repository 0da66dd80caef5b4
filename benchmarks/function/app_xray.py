"""``xray-sdk``: the same work with the AWS X-Ray SDK, as its users write it (botocore patched at import).

In Lambda the SDK streams each subsegment to the daemon address over UDP as soon as it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_xray_sdk.core import patch, xray_recorder
from work import do_work

patch(("botocore",))


class _Subsegment:
    """The span interface the work uses, on an X-Ray subsegment (annotations are X-Ray's indexed attributes)."""

    __slots__ = ("_subsegment",)

    def __init__(self, subsegment: Any) -> None:
        self._subsegment = subsegment

    def set_attribute(self, key: str, value: object) -> None:
        if self._subsegment is not None:
            self._subsegment.put_annotation(key.replace(".", "_"), value)


@contextmanager
def _subsegment(name: str) -> Iterator[_Subsegment]:
    with xray_recorder.in_subsegment(name) as subsegment:
        yield _Subsegment(subsegment)


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return do_work(event, _subsegment)
