"""Zero-code tracing end to end: an undecorated handler in the local Lambda sandbox (awslambdaric) under
AWS_LAMBDA_EXEC_WRAPPER=/opt/afterglow-instrument, calling moto (server mode) and a loopback HTTP server,
with the real afterglow extension exporting to a loopback OTLP collector.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[3]
LAYER_FILES = ROOT / "afterglow" / "layer_files"
INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

HANDLER = """
import os

import boto3
import requests
from aws_lambda_powertools import Logger

logger = Logger(service="pets")
s3 = boto3.client("s3")
sqs = boto3.client("sqs")


def handler(event, context):
    pet = event["pathParameters"]["id"]
    s3.put_object(Bucket="pets", Key=f"{pet}.json", Body=b"{}")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="adoptions")["QueueUrl"], MessageBody=pet)
    status = requests.get(os.environ["PARTNER_URL"] + "/pets/" + pet, timeout=5).status_code
    logger.info("adopted", extra={"pet": pet})
    return {"statusCode": 201, "body": str(status)}
"""


@pytest.fixture
def layer(tmp_path: Path) -> Path:
    """A development layer: the real launcher and exec wrapper; the code comes from this checkout."""
    root = tmp_path / "layer"
    (root / "extensions").mkdir(parents=True)
    shutil.copy2(LAYER_FILES / "extensions" / "afterglow", root / "extensions" / "afterglow")
    shutil.copy2(LAYER_FILES / "afterglow-instrument", root / "afterglow-instrument")
    return root


@pytest.fixture
def box(
    tmp_path: Path, layer: Path, otlp_receiver: Any, aws: Any, moto_endpoint: str, http_server: Any
) -> Iterator[Sandbox]:
    aws("s3").create_bucket(Bucket="pets", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    aws("sqs").create_queue(QueueName="adoptions")
    task_root = tmp_path / "function"
    task_root.mkdir()
    (task_root / "app.py").write_text(textwrap.dedent(HANDLER))
    env = {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/afterglow-instrument",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PARTNER_URL": http_server.url,
    }
    with Sandbox(task_root, "app.handler", layers=[layer], env=env, timeout=20, function_name="pets") as sandbox:
        yield sandbox


def _hex(value: str | bytes | None) -> str | None:
    return value.hex() if isinstance(value, bytes) else value


def test_an_api_request_traced_without_code_changes(box: Sandbox, otlp_receiver: Any, http_server: Any) -> None:
    event = json.loads((ROOT / "tests" / "fixtures" / "events" / "apigw_http_v2.json").read_text())
    event["routeKey"] = "GET /pets/{id}"
    event["rawPath"] = "/pets/42"
    event["pathParameters"] = {"id": "42"}
    event["requestContext"]["http"].update(method="GET", path="/pets/42")
    event["headers"]["traceparent"] = INCOMING

    invocation = box.invoke(event)
    assert invocation.json() == {"statusCode": 201, "body": "200"}
    box.shutdown()  # the spans leave at the latest at SHUTDOWN
    spans = otlp_receiver.wait_for_spans(5, timeout=20)
    assert sorted(span.name for span in spans) == [
        "GET",
        "GET /pets/{id}",
        "S3.PutObject",
        "SQS.GetQueueUrl",
        "SQS.SendMessage",
    ]
    by_name = {span.name: span for span in spans}
    root = by_name["GET /pets/{id}"]
    assert _hex(root.trace_id) == INCOMING.split("-")[1]
    assert _hex(root.parent_span_id) == INCOMING.split("-")[2]
    assert root.attributes["faas.trigger"] == "http"
    assert root.attributes["http.route"] == "/pets/{id}"
    assert root.attributes["http.response.status_code"] == 201
    for name in ("GET", "S3.PutObject", "SQS.GetQueueUrl", "SQS.SendMessage"):
        child = by_name[name]
        assert child.kind == 3, name  # CLIENT
        assert _hex(child.parent_span_id) == _hex(root.span_id), name
        assert _hex(child.trace_id) == _hex(root.trace_id), name
    assert by_name["S3.PutObject"].attributes["aws.s3.bucket"] == "pets"
    assert by_name["SQS.SendMessage"].attributes["messaging.destination.name"] == "adoptions"

    # The partner saw the HTTP span as its parent, once.
    partner = next(request for request in http_server.requests if request.path == "/pets/42")
    assert partner.all("traceparent") == [f"00-{_hex(root.trace_id)}-{_hex(by_name['GET'].span_id)}-01"]

    # Powertools' JSON log line carries the ids of the span it was written in (the invocation span).
    line = next(log.text for log in box.logs if '"adopted"' in log.text)
    record = json.loads(line[line.index("{") :])
    assert record["otelTraceID"] == _hex(root.trace_id)
    assert record["otelSpanID"] == _hex(root.span_id)


DECORATED = """
import os
import urllib.request

import requests

from tracer import trace_handler


@trace_handler
def handler(event, context):
    with urllib.request.urlopen(os.environ["PARTNER_URL"] + "/stock", timeout=5) as answer:
        stock = answer.status
    return {"stock": stock, "pet": requests.get(os.environ["PARTNER_URL"] + "/pets/7", timeout=5).status_code}
"""


@pytest.mark.parametrize("patches", ["on by default", "AFTERGLOW_INSTRUMENT=none"])
def test_a_decorated_handler_has_its_http_calls_in_its_trace_unless_patches_are_off(
        tmp_path: Path, layer: Path, otlp_receiver: Any, http_server: Any, patches: str) -> None:
    """The decorator alone, no exec wrapper: what Powertools' Tracer users expect from decorating the handler."""
    task_root = tmp_path / "function"
    task_root.mkdir()
    (task_root / "app.py").write_text(textwrap.dedent(DECORATED))
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "PARTNER_URL": http_server.url}
    if patches != "on by default":
        env["AFTERGLOW_INSTRUMENT"] = "none"
    with Sandbox(task_root, "app.handler", layers=[layer], env=env, timeout=20, function_name="shop") as box:
        assert box.invoke({}).json() == {"stock": 200, "pet": 200}
    # the sandbox has shut down: the extension exported everything it had
    spans = otlp_receiver.spans
    (root,) = [span for span in spans if span.kind == 2]  # SERVER: the invocation span
    clients = sorted((span for span in spans if span.kind == 3), key=lambda span: span.attributes["url.full"])
    if patches != "on by default":
        assert len(spans) == 1 and not clients
        assert all(request.header("traceparent") is None for request in http_server.requests)
        return
    assert [(span.name, span.attributes["url.full"]) for span in clients] == [
        ("GET", f"{http_server.url}/pets/7"), ("GET", f"{http_server.url}/stock")]
    assert len(spans) == 3  # requests goes through urllib3 and http.client: still one span per call
    for span in clients:
        assert _hex(span.parent_span_id) == _hex(root.span_id) and _hex(span.trace_id) == _hex(root.trace_id)
        assert span.attributes["http.response.status_code"] == 200
    seen = {request.path: request.all("traceparent") for request in http_server.requests}
    by_path = {span.attributes["url.full"].removeprefix(http_server.url): span for span in clients}
    for path, span in by_path.items():  # the partner saw the HTTP span as its parent, sampled
        (header,) = seen[path]
        assert header.startswith(f"00-{_hex(root.trace_id)}-{_hex(span.span_id)}-") and int(header[-2:], 16) & 1
