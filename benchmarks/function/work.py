"""The work every configuration's handler does, so that only the tracing around it differs.

A scenario is described by the event: ``{"spans": N}`` makes N child spans (each with five attributes,
made current, as user code does), ``{"aws": {...}}`` makes real AWS SDK calls to the endpoint it names
(moto in server mode), ``{"log": true}`` prints one line, as real functions log (every configuration prints
the same line, ``bare`` included). The handler reports what it made, so the harness can check every span arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

StartSpan = Callable[[str], AbstractContextManager[Any]]

_clients: dict[str, Any] = {}


def do_work(event: dict[str, Any], start_span: StartSpan) -> dict[str, int]:
    children = int(event.get("spans", 0))
    for index in range(children):
        with start_span("child") as span:
            span.set_attribute("bench.index", index)
            span.set_attribute("bench.kind", "child")
            span.set_attribute("bench.size", 128)
            span.set_attribute("bench.ok", True)
            span.set_attribute("bench.ratio", 0.5)
    aws_calls = _aws_calls(event["aws"]) if event.get("aws") else 0
    if event.get("log"):
        print(f"processed {children} items")
    return {"children": children, "aws_calls": aws_calls}


def _aws_calls(target: dict[str, str]) -> int:
    """Three calls a typical function makes: S3 write, DynamoDB read, SQS send. Returns the call count."""
    if not _clients:
        import boto3  # lazily: init time measures the tracing stack, not boto3

        for service in ("s3", "dynamodb", "sqs"):
            _clients[service] = boto3.client(service, endpoint_url=target["endpoint"], region_name=target["region"])
    _clients["s3"].put_object(Bucket=target["bucket"], Key="bench/object", Body=b"afterglow")
    _clients["dynamodb"].get_item(TableName=target["table"], Key={"id": {"S": "bench"}})
    _clients["sqs"].send_message(QueueUrl=target["queue_url"], MessageBody="afterglow")
    return 3


class NoSpan:
    """What a function without tracing does in place of a span: nothing, cheaply."""

    def __enter__(self) -> NoSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def set_attribute(self, key: str, value: object) -> None:
        return None


_NO_SPAN = NoSpan()


def no_span(name: str) -> NoSpan:
    return _NO_SPAN
