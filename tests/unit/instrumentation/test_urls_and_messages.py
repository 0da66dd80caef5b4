"""Pure helpers: url.full without secrets, and trace context into AWS messages without breaking limits."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from instrumentation import _aws_services, _http

TRACE_ID, SPAN_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a?b=1", "https://example.com/a?b=1"),
        ("https://user:pw@example.com/a", "https://REDACTED:REDACTED@example.com/a"),
        ("https://token@example.com/a", "https://REDACTED:REDACTED@example.com/a"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ff&x=1",
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&x=1",
        ),
        (
            "http://h/p?sig=abc&Signature=def&AWSAccessKeyId=g",
            "http://h/p?sig=REDACTED&Signature=REDACTED&AWSAccessKeyId=REDACTED",
        ),
        ("http://h/p?api_key=1&access_token=2&flag", "http://h/p?api_key=REDACTED&access_token=REDACTED&flag"),
        ("http://h/p?page=2#frag", "http://h/p?page=2#frag"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert _http.redact_url(url) == expected


@pytest.mark.parametrize(
    ("scheme", "host", "port", "target", "expected"),
    [
        ("http", "127.0.0.1", 80, "/a", "http://127.0.0.1/a"),
        ("https", "example.com", 443, "/a?b=1", "https://example.com/a?b=1"),
        ("http", "example.com", 8080, "/a", "http://example.com:8080/a"),
        ("http", "::1", 8080, "/", "http://[::1]:8080/"),
        ("http", "proxy", 3128, "http://example.com/x?token=t", "http://example.com/x?token=REDACTED"),
        ("http", "h", None, "a b", "http://h/a%20b"),
    ],
)
def test_full_url(scheme: str, host: str, port: int | None, target: str, expected: str) -> None:
    assert _http.full_url(scheme, host, port, target) == expected


def test_method_attributes() -> None:
    assert _http.method_attributes("get") == ("GET", {"http.request.method": "GET"})
    assert _http.method_attributes("PURGE") == (
        "HTTP",
        {"http.request.method": "_OTHER", "http.request.method_original": "PURGE"},
    )


@pytest.fixture
def current_span() -> Iterator[None]:
    span_context = SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(1), TraceState([("vendor", "v")]))
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(span_context)))
    yield
    otel_context.detach(token)


def attributes(count: int) -> dict[str, Any]:
    return {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(count)}


@pytest.mark.usefixtures("current_span")
@pytest.mark.parametrize(
    ("existing", "added"),
    [(0, {"traceparent", "tracestate"}), (8, {"traceparent", "tracestate"}), (9, {"traceparent"}), (10, set())],
)
def test_sqs_message_attributes_stay_within_ten(existing: int, added: set[str]) -> None:
    params = {"QueueUrl": "https://sqs/1/q", "MessageBody": "b", "MessageAttributes": attributes(existing)}
    before = copy.deepcopy(params)
    injected = _aws_services.inject("SQS", "SendMessage", params)
    assert params == before, "the caller's parameters are never changed"
    if not added:
        assert injected is None
        return
    assert injected is not None
    assert set(injected["MessageAttributes"]) - set(params["MessageAttributes"]) == added
    assert len(injected["MessageAttributes"]) <= 10
    assert injected["MessageAttributes"]["traceparent"] == {"DataType": "String", "StringValue": TRACEPARENT}


@pytest.mark.usefixtures("current_span")
def test_an_existing_traceparent_attribute_wins() -> None:
    params = {"MessageAttributes": {"TraceParent": {"DataType": "String", "StringValue": "theirs"}}}
    assert _aws_services.inject("SNS", "Publish", params) is None


@pytest.mark.usefixtures("current_span")
def test_lambda_client_context() -> None:
    injected = _aws_services.inject("Lambda", "Invoke", {"FunctionName": "f"})
    assert injected is not None
    assert json.loads(base64.b64decode(injected["ClientContext"])) == {
        "custom": {"traceparent": TRACEPARENT, "tracestate": "vendor=v"}
    }
    not_json = base64.b64encode(b"not json").decode()
    assert _aws_services.inject("Lambda", "Invoke", {"FunctionName": "f", "ClientContext": not_json}) is None
    assert _aws_services.inject("Lambda", "Invoke", {"FunctionName": "f", "ClientContext": "%%%"}) is None
    listed = base64.b64encode(b"[1, 2]").decode()
    assert _aws_services.inject("Lambda", "Invoke", {"FunctionName": "f", "ClientContext": listed}) is None


def test_nothing_is_injected_without_a_current_span() -> None:
    assert _aws_services.inject("SQS", "SendMessage", {"MessageAttributes": {}}) is None
    assert _aws_services.inject("EventBridge", "PutEvents", {"Entries": [{"Source": "s"}]}) is None
    assert _aws_services.inject("S3", "PutObject", {"Bucket": "b"}) is None


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        ("DynamoDB", "BatchWriteItem", {"RequestItems": {"b": [], "a": []}}, {"aws.dynamodb.table_names": ["a", "b"]}),
        (
            "DynamoDB",
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "t"}}, {"Delete": {"TableName": "u"}}]},
            {"aws.dynamodb.table_names": ["t", "u"]},
        ),
        (
            "Lambda",
            "Invoke",
            {"FunctionName": "arn:aws:lambda:eu-west-1:1:function:billing:live"},
            {"faas.invoked_name": "billing", "faas.invoked_provider": "aws"},
        ),
        (
            "Kinesis",
            "PutRecord",
            {"StreamARN": "arn:aws:kinesis:eu-west-1:1:stream/clicks", "Data": b"x"},
            {"aws.kinesis.stream_name": "clicks"},
        ),
        (
            "SFN",
            "StartExecution",
            {"stateMachineArn": "arn:sm", "input": "{}"},
            {"aws.step_functions.state_machine.arn": "arn:sm"},
        ),
        (
            "Secrets Manager",
            "GetSecretValue",
            {"SecretId": "db-password"},
            {"aws.secretsmanager.secret.name": "db-password"},
        ),
        (
            "SSM",
            "GetParameters",
            {"Names": ["/a", "/b"], "WithDecryption": True},
            {"aws.ssm.parameter.names": ["/a", "/b"]},
        ),
        ("S3", "ListBuckets", {}, {}),
        ("DynamoDB", "PutItem", {"TableName": 5}, {}),
    ],
)
def test_request_attributes_name_resources_never_payloads(
    service: str, operation: str, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert _aws_services.REQUEST_ATTRIBUTES[service](operation, params) == expected


def test_response_attributes_ignore_payload_values() -> None:
    result = {
        "SecretString": "hunter2",
        "ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:db",
        "ResponseMetadata": {"RequestId": "r-1", "HTTPStatusCode": 200},
    }
    attributes = _aws_services.response_attributes("Secrets Manager", "GetSecretValue", result)
    assert attributes == {
        "aws.request_id": "r-1",
        "http.response.status_code": 200,
        "aws.secretsmanager.secret.arn": "arn:aws:secretsmanager:eu-west-1:1:secret:db",
    }
