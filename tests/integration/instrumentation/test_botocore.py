"""botocore against moto in server mode (real HTTP): one span per AWS call, trace context in messages."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.client
import botocore.exceptions
import pytest
import wrapt
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, StatusCode

import instrumentation
from instrumentation import _registry
from tracer import triggers


def _only(spans: list[Any], name: str) -> Any:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, spans
    return matching[0]


def test_each_aws_call_is_one_client_span_with_its_resources(tracing: Any, aws: Any) -> None:
    s3, sqs, dynamodb = aws("s3"), aws("sqs"), aws("dynamodb")
    s3.create_bucket(Bucket="invoices", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    queue_url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    dynamodb.create_table(
        TableName="customers",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    tracing.clear()

    with tracing.tracer().start_as_current_span("handler") as handler:
        s3.put_object(Bucket="invoices", Key="2026/11/a.pdf", Body=b"secret payload")
        sent = sqs.send_message(QueueUrl=queue_url, MessageBody="secret body")
        dynamodb.put_item(TableName="customers", Item={"id": {"S": "c-1"}, "name": {"S": "secret name"}})

    spans = tracing.spans()
    assert sorted(span.name for span in spans) == ["DynamoDB.PutItem", "S3.PutObject", "SQS.SendMessage", "handler"]
    handler_id = handler.get_span_context().span_id
    for span in spans:
        if span.name != "handler":
            assert span.kind == SpanKind.CLIENT
            assert span.parent_id == handler_id
            assert span.attributes["rpc.system"] == "aws-api"
            assert span.attributes["cloud.region"] == "eu-west-1"
            assert span.attributes["http.response.status_code"] == 200
            assert span.attributes["aws.request_id"]
            assert "secret" not in json.dumps(span.attributes)

    put = _only(spans, "S3.PutObject").attributes
    assert (put["rpc.service"], put["rpc.method"]) == ("S3", "PutObject")
    assert (put["aws.s3.bucket"], put["aws.s3.key"]) == ("invoices", "2026/11/a.pdf")
    send = _only(spans, "SQS.SendMessage").attributes
    assert send["aws.sqs.queue.url"] == queue_url
    assert send["messaging.destination.name"] == "orders"
    assert send["messaging.message.id"] == sent["MessageId"]
    assert _only(spans, "DynamoDB.PutItem").attributes["aws.dynamodb.table_names"] == ["customers"]


def test_a_failed_call_raises_botocores_own_error_and_marks_the_span(tracing: Any, aws: Any) -> None:
    s3 = aws("s3")
    instrumentation.uninstrument()
    with pytest.raises(botocore.exceptions.ClientError) as plain:
        s3.get_object(Bucket="no-such-bucket", Key="k")
    instrumentation.instrument()
    with pytest.raises(botocore.exceptions.ClientError) as traced:
        s3.get_object(Bucket="no-such-bucket", Key="k")
    assert type(traced.value) is type(plain.value)
    assert traced.value.response["Error"] == plain.value.response["Error"]

    (span,) = tracing.spans()
    assert span.status == StatusCode.ERROR
    assert span.attributes["error.type"] == "NoSuchBucket"
    assert span.attributes["http.response.status_code"] == 404
    assert span.attributes["aws.request_id"]
    assert "exception" in span.events


def test_sqs_messages_carry_the_send_span_and_link_back_from_the_trigger(tracing: Any, aws: Any) -> None:
    sqs = aws("sqs")
    queue_url = sqs.create_queue(QueueName="linked")["QueueUrl"]
    mine = {"tenant": {"DataType": "String", "StringValue": "t-1"}}
    sqs.send_message(QueueUrl=queue_url, MessageBody="one", MessageAttributes=mine)
    entries = [{"Id": "a", "MessageBody": "two"}, {"Id": "b", "MessageBody": "three", "MessageAttributes": dict(mine)}]
    sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    assert mine == {"tenant": {"DataType": "String", "StringValue": "t-1"}}, "the caller's attributes changed"
    assert "MessageAttributes" not in entries[0], "the caller's batch entries changed"

    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert len(received) == 3
    single = _only(tracing.spans(), "SQS.SendMessage")
    batch = _only(tracing.spans(), "SQS.SendMessageBatch")
    assert batch.attributes["messaging.batch.message_count"] == 2
    expected = {"one": single, "two": batch, "three": batch}
    for message in received:
        producer = expected[message["Body"]]
        traceparent = message["MessageAttributes"]["traceparent"]["StringValue"]
        assert traceparent.startswith(f"00-{producer.trace_id:032x}-{producer.span_id:016x}-")
    assert received[0]["MessageAttributes"].get("tenant", mine["tenant"])["StringValue"] == "t-1"

    # What the consumer's invocation span gets: one link per message, to the span that sent it.
    event = {"Records": [_as_lambda_record(message, queue_url) for message in received]}
    trigger = triggers.describe(event, None)
    assert {(link.trace_id, link.span_id) for link in trigger.links} == {
        (single.trace_id, single.span_id),
        (batch.trace_id, batch.span_id),
    }
    assert len(trigger.links) == 3


def _as_lambda_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping hands it over (lower-camel attribute fields)."""
    attributes = {
        name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:eu-west-1:123456789012:{queue_url.rsplit('/', 1)[-1]}",
    }


def test_sqs_attribute_limit_is_respected_by_skipping(tracing: Any, aws: Any) -> None:
    sqs = aws("sqs")
    queue_url = sqs.create_queue(QueueName="full")["QueueUrl"]
    ten = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(10)}
    nine = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(9)}
    sqs.send_message(QueueUrl=queue_url, MessageBody="ten", MessageAttributes=ten)
    sqs.send_message(QueueUrl=queue_url, MessageBody="nine", MessageAttributes=nine)
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    by_body = {message["Body"]: message["MessageAttributes"] for message in received["Messages"]}
    assert set(by_body["ten"]) == set(ten)
    assert set(by_body["nine"]) == {*nine, "traceparent"}
    assert all(span.status != StatusCode.ERROR for span in tracing.spans())


def test_sns_publish_carries_the_span_to_subscribers(tracing: Any, aws: Any) -> None:
    sns, sqs = aws("sns"), aws("sqs")
    topic_arn = sns.create_topic(Name="prices")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="price-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic_arn, Message="price changed")

    publish = _only(tracing.spans(), "SNS.Publish")
    assert publish.attributes["aws.sns.topic.arn"] == topic_arn
    assert publish.attributes["messaging.destination.name"] == "prices"
    (message,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    traceparent = message["MessageAttributes"]["traceparent"]["StringValue"]
    assert traceparent.startswith(f"00-{publish.trace_id:032x}-{publish.span_id:016x}-")


def test_lambda_invoke_puts_trace_context_in_the_client_context(tracing: Any, aws: Any, http_server: Any) -> None:
    # Invoking needs a Lambda service; the recording server stands in for it and shows what botocore sent.
    client = aws("lambda", endpoint=http_server.url)
    theirs = base64.b64encode(json.dumps({"custom": {"tenant": "t-1"}, "env": {"app": "x"}}).encode()).decode()
    client.invoke(FunctionName="arn:aws:lambda:eu-west-1:123456789012:function:billing:live", Payload=b"{}")
    client.invoke(FunctionName="billing", Payload=b"{}", ClientContext=theirs)
    huge = base64.b64encode(json.dumps({"custom": {"pad": "x" * 2600}}).encode()).decode()
    client.invoke(FunctionName="billing", Payload=b"{}", ClientContext=huge)

    first, second, third = http_server.requests
    invokes = [span for span in tracing.spans() if span.name == "Lambda.Invoke"]
    assert len(invokes) == 3
    assert invokes[0].attributes["faas.invoked_name"] == "billing"
    decoded = json.loads(base64.b64decode(first.header("X-Amz-Client-Context") or ""))
    assert decoded["custom"]["traceparent"].startswith(f"00-{invokes[0].trace_id:032x}-{invokes[0].span_id:016x}")
    merged = json.loads(base64.b64decode(second.header("X-Amz-Client-Context") or ""))
    assert merged["custom"]["tenant"] == "t-1" and merged["env"] == {"app": "x"}
    assert merged["custom"]["traceparent"].startswith(f"00-{invokes[1].trace_id:032x}-{invokes[1].span_id:016x}")
    assert third.header("X-Amz-Client-Context") == huge, "over Lambda's size limit: left as the caller made it"
    assert all(request.all("traceparent") == [] for request in http_server.requests), "AWS HTTP traced twice"


def test_eventbridge_put_events_gets_an_xray_trace_header(tracing: Any, aws: Any, http_server: Any) -> None:
    http_server.answer_json("/", {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}, {"EventId": "2"}]})
    events = aws("events", endpoint=http_server.url)
    entries = [
        {"Source": "com.example.orders", "DetailType": "Order Placed", "Detail": "{}"},
        {"Source": "com.example.orders", "DetailType": "Order Placed", "Detail": "{}", "TraceHeader": "Root=keep"},
    ]
    events.put_events(Entries=entries)
    assert "TraceHeader" not in entries[0]
    (span,) = tracing.spans()
    sent = json.loads(http_server.requests[0].body)["Entries"]
    trace_hex = f"{span.trace_id:032x}"
    assert sent[0]["TraceHeader"] == f"Root=1-{trace_hex[:8]}-{trace_hex[8:]};Parent={span.span_id:016x};Sampled=1"
    assert sent[1]["TraceHeader"] == "Root=keep"
    assert span.attributes["aws.eventbridge.event_bus_names"] == ["default"]


# --- instrumentor contract ------------------------------------------------------------------------------


def test_instrumenting_twice_gives_one_span_and_one_traceparent(tracing: Any, aws: Any) -> None:
    sqs = aws("sqs")
    queue_url = sqs.create_queue(QueueName="twice")["QueueUrl"]
    instrumentation.instrument()
    instance = _registry.instrumentor("botocore")
    assert instance is not None
    instance.instrument()  # type: ignore[attr-defined]
    tracing.clear()
    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    assert [span.name for span in tracing.spans()] == ["SQS.SendMessage"]
    (message,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    assert list(message["MessageAttributes"]) == ["traceparent"]


def test_uninstrument_restores_botocore(tracing: Any, aws: Any) -> None:
    wrapped = botocore.client.BaseClient.__dict__["_make_api_call"]
    assert isinstance(wrapped, wrapt.FunctionWrapper)
    instrumentation.uninstrument()
    assert botocore.client.BaseClient.__dict__["_make_api_call"] is wrapped.__wrapped__
    aws("s3").list_buckets()
    assert tracing.spans() == []


def test_suppressed_calls_make_no_spans(tracing: Any, aws: Any) -> None:
    sqs = aws("sqs")
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        queue_url = sqs.create_queue(QueueName="quiet")["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody="x")
        (message,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    finally:
        otel_context.detach(token)
    assert tracing.spans() == []
    assert "MessageAttributes" not in message
