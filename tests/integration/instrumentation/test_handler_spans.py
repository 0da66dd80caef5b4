"""A handler under the zero-code entry handler (afterglow.wrapper_bootstrap) calling S3, SQS, DynamoDB and two HTTP
clients: exactly the expected spans, no duplicates, correct parents, read off the real Unix socket.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

import instrumentation
from tests.helpers.tracing import LAMBDA_ENV, lambda_context, reset_tracing, span_reader
from tracer import wire

EVENTS = Path(__file__).resolve().parents[2] / "fixtures" / "events"

USER_CODE = """
import urllib.request

import boto3
import requests

s3 = boto3.client("s3")
sqs = boto3.client("sqs")
dynamodb = boto3.client("dynamodb")


def handler(event, context):
    s3.put_object(Bucket="reports", Key="daily.csv", Body=b"a,b")
    queue_url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="job")
    dynamodb.put_item(TableName="runs", Item={"id": {"S": context.aws_request_id}})
    first = requests.get(event["http"] + "/one", timeout=5).status_code
    with urllib.request.urlopen(event["http"] + "/two", timeout=5) as response:
        second = response.status
    return {"statusCode": 200, "body": f"{first},{second}"}
"""


@pytest.fixture
def function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: Any, moto_endpoint: str) -> Iterator[Any]:
    """The user's module on sys.path, AWS clients pointed at moto, a socket reader where the extension would be."""
    (tmp_path / "user_function.py").write_text(textwrap.dedent(USER_CODE))
    monkeypatch.syspath_prepend(str(tmp_path))
    for key, value in LAMBDA_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", LAMBDA_ENV["AWS_REGION"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AFTERGLOW_HANDLER", "user_function.handler")
    directory = tempfile.mkdtemp(prefix="ag-", dir="/tmp")  # Unix socket paths must stay short
    monkeypatch.setenv("AFTERGLOW_SOCKET", f"{directory}/spans.sock")
    s3, sqs, dynamodb = aws("s3"), aws("sqs"), aws("dynamodb")
    s3.create_bucket(Bucket="reports", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sqs.create_queue(QueueName="jobs")
    dynamodb.create_table(
        TableName="runs",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    reset_tracing()
    instrumentation.uninstrument()
    try:
        with span_reader(f"{directory}/spans.sock") as reader:
            sys.modules.pop("afterglow.wrapper_bootstrap", None)
            sys.modules.pop("user_function", None)
            entry = importlib.import_module("afterglow.wrapper_bootstrap")
            yield entry.handler, reader
    finally:
        instrumentation.uninstrument()
        reset_tracing()
        sys.modules.pop("afterglow.wrapper_bootstrap", None)
        sys.modules.pop("user_function", None)
        shutil.rmtree(directory, ignore_errors=True)


def test_exactly_the_expected_spans_with_the_invocation_as_parent(function: Any, http_server: Any) -> None:
    handler, reader = function
    event = json.loads((EVENTS / "sqs.json").read_text())
    event["http"] = http_server.url
    result = handler(event, lambda_context("req-42"))
    assert result == {"statusCode": 200, "body": "200,200"}

    reader.wait_for_end("req-42")
    spans = reader.spans()
    names = sorted(span[wire.NAME] for span in spans)
    assert names == [
        "DynamoDB.PutItem",
        "GET",
        "GET",
        "S3.PutObject",
        "SQS.GetQueueUrl",
        "SQS.SendMessage",
        "orders-queue process",
    ]
    (invocation,) = [span for span in spans if span[wire.NAME] == "orders-queue process"]
    assert invocation[wire.PARENT_SPAN_ID] is None  # SQS messages are links, not parents
    assert len(invocation[wire.LINKS]) == 2, "one link per SQS message that carried trace context"
    children = [span for span in spans if span is not invocation]
    for span in children:
        assert span[wire.KIND] == SpanKind.CLIENT.value
        assert span[wire.TRACE_ID] == invocation[wire.TRACE_ID]
        assert span[wire.PARENT_SPAN_ID] == invocation[wire.SPAN_ID], span[wire.NAME]

    http_urls = sorted(span[wire.ATTRIBUTES]["url.full"] for span in children if span[wire.NAME] == "GET")
    assert http_urls == [f"{http_server.url}/one", f"{http_server.url}/two"]
    # Each outgoing request carried the span that describes it, once.
    by_path = {request.path: request for request in http_server.requests}
    for span in children:
        if span[wire.NAME] == "GET":
            path = span[wire.ATTRIBUTES]["url.full"].removeprefix(http_server.url)
            assert by_path[path].all("traceparent") == [
                f"00-{span[wire.TRACE_ID].hex()}-{span[wire.SPAN_ID].hex()}-{span[wire.TRACE_FLAGS]:02x}"
            ]
