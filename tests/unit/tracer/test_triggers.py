"""tracer.triggers: every documented trigger shape, trace context in messages, and malformed events."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from awslambdaric.lambda_context import LambdaContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.triggers import Link, Trigger, describe, parse_traceparent, parse_xray, response_attributes

EVENTS = Path(__file__).resolve().parents[2] / "fixtures" / "events"


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def lambda_context(client_context: dict[str, Any] | None = None) -> LambdaContext:
    # awslambdaric's own context class, built the way its bootstrap builds it from the /next headers.
    return LambdaContext("req-1", copy.deepcopy(client_context), None, 0, "arn:aws:lambda:us-east-1:1:function:f")


# --- HTTP triggers --------------------------------------------------------------------------------------


def test_api_gateway_rest_names_the_span_after_the_resource_template() -> None:
    trigger = describe(load("apigw_rest"), lambda_context())
    assert trigger.faas_trigger == "http"
    assert trigger.is_http
    assert trigger.span_name == "GET /pets/{id}"
    assert trigger.attributes == {
        "faas.trigger": "http",
        "http.request.method": "GET",
        "http.route": "/pets/{id}",
        "url.path": "/pets/42",
        "url.scheme": "https",
        "server.address": "r2d2c3p0.execute-api.eu-west-1.amazonaws.com",
        "server.port": 443,
        "user_agent.original": "curl/8.5.0",
        "client.address": "198.51.100.7",
        "network.protocol.version": "1.1",
    }
    assert trigger.carrier is not None
    assert trigger.carrier["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert trigger.carrier["tracestate"] == "vendor=opaque"
    assert all(key == key.lower() for key in trigger.carrier)


def test_http_api_v2_uses_the_route_key_template() -> None:
    trigger = describe(load("apigw_http_v2"), lambda_context())
    assert trigger.span_name == "POST /orders/{orderId}/items"
    assert trigger.attributes["http.route"] == "/orders/{orderId}/items"
    assert trigger.attributes["url.path"] == "/orders/o-991/items"
    assert trigger.attributes["client.address"] == "203.0.113.54"
    assert trigger.attributes["user_agent.original"] == "python-requests/2.32.3"
    assert trigger.carrier is not None
    assert trigger.carrier["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_function_url_has_no_route_template_so_the_path_names_the_span() -> None:
    trigger = describe(load("function_url"), lambda_context())
    assert trigger.faas_trigger == "http"
    assert trigger.span_name == "POST /webhooks/github"
    assert "http.route" not in trigger.attributes
    assert trigger.attributes["server.address"] == "q7w8e9r0t1y2u3i4o5p6a7s8d9f0g1h2.lambda-url.eu-central-1.on.aws"


def test_alb_reads_client_and_scheme_from_forwarding_headers() -> None:
    trigger = describe(load("alb"), lambda_context())
    assert trigger.span_name == "DELETE /inventory/items/17"
    assert trigger.attributes["http.request.method"] == "DELETE"
    assert trigger.attributes["client.address"] == "192.0.2.33"
    assert trigger.attributes["url.scheme"] == "http"
    assert trigger.attributes["server.port"] == 80
    assert "http.route" not in trigger.attributes


@pytest.mark.parametrize("name", ["apigw_rest", "apigw_http_v2", "function_url", "alb"])
def test_http_attributes_carry_no_query_values_or_credentials(name: str) -> None:
    trigger = describe(load(name), lambda_context())
    text = json.dumps(trigger.attributes)
    for secret in ("secret-value", "hunter2", "not-a-real-token", "abcdef0123456789", "session="):
        assert secret not in text


def test_multi_value_headers_alone_still_give_a_carrier() -> None:
    event = load("apigw_rest")
    del event["headers"]
    trigger = describe(event, lambda_context())
    assert trigger.carrier is not None
    assert trigger.carrier["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert trigger.attributes["server.port"] == 443


def test_unknown_http_method_is_reported_as_other() -> None:
    event = load("apigw_http_v2")
    event["requestContext"]["http"]["method"] = "PURGE"
    trigger = describe(event, lambda_context())
    assert trigger.attributes["http.request.method"] == "_OTHER"
    assert trigger.attributes["http.request.method_original"] == "PURGE"
    assert trigger.span_name == "HTTP /orders/{orderId}/items"


# --- responses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"statusCode": 200, "body": "ok"}, ({"http.response.status_code": 200}, False)),
        ({"statusCode": 404}, ({"http.response.status_code": 404}, False)),
        ({"statusCode": 503}, ({"http.response.status_code": 503}, True)),
        ({"statusCode": "502"}, ({"http.response.status_code": 502}, True)),
        ({"statusCode": True}, ({}, False)),
        ({"body": "no status"}, ({}, False)),
        ("plain string", ({}, False)),
        (None, ({}, False)),
    ],
)
def test_rest_response_status_comes_from_the_result(result: object, expected: tuple[dict[str, int], bool]) -> None:
    trigger = describe(load("apigw_rest"), lambda_context())
    assert response_attributes(trigger, result) == expected


@pytest.mark.parametrize("name", ["apigw_http_v2", "function_url"])
def test_payload_v2_without_a_status_means_200(name: str) -> None:
    # HTTP APIs and Function URLs treat a result without statusCode as a 200 with that body.
    trigger = describe(load(name), lambda_context())
    assert response_attributes(trigger, {"message": "hi"}) == ({"http.response.status_code": 200}, False)
    assert response_attributes(trigger, "text") == ({"http.response.status_code": 200}, False)
    assert response_attributes(trigger, {"statusCode": 500}) == ({"http.response.status_code": 500}, True)


def test_non_http_triggers_read_nothing_from_the_result() -> None:
    trigger = describe(load("sqs"), lambda_context())
    assert response_attributes(trigger, {"statusCode": 500}) == ({}, False)


# --- messages and data sources ----------------------------------------------------------------------------


def test_sqs_batch_links_each_message_to_its_producer() -> None:
    trigger = describe(load("sqs"), lambda_context())
    assert trigger.faas_trigger == "pubsub"
    assert trigger.span_name == "orders-queue process"
    assert trigger.attributes == {
        "faas.trigger": "pubsub",
        "messaging.system": "aws_sqs",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.batch.message_count": 3,
        "messaging.destination.name": "orders-queue",
    }
    assert trigger.carrier is None
    assert trigger.links == [
        Link(
            0x0AF7651916CD43DD8448EB211C80319C,
            0xB9C7C989F97918E1,
            1,
            "congo=t61rcWkgMzE",
            {"messaging.message.id": "059f36b4-87a3-44ab-83d2-661975830a7d"},
        ),
        # From the AWSTraceHeader system attribute: X-Ray's epoch and id halves make one 128-bit trace id.
        Link(
            0x5759E988BD862E3FE1BE46A994272793,
            0x53995C3F42CD8AD8,
            1,
            None,
            {"messaging.message.id": "2e1424d4-f796-459a-8184-9c92662be6da"},
        ),
    ]


def test_single_sqs_message_carries_its_id() -> None:
    event = load("sqs")
    event["Records"] = event["Records"][:1]
    trigger = describe(event, lambda_context())
    assert trigger.attributes["messaging.message.id"] == "059f36b4-87a3-44ab-83d2-661975830a7d"
    assert trigger.attributes["messaging.batch.message_count"] == 1


def test_a_huge_sqs_batch_keeps_links_within_the_link_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    record = load("sqs")["Records"][0]
    event = {"Records": [record] * 10_000}
    trigger = describe(event, lambda_context())
    assert trigger.attributes["messaging.batch.message_count"] == 10_000
    assert len(trigger.links) == 128
    monkeypatch.setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "5")
    assert len(describe(event, lambda_context()).links) == 5


def test_sns_notifications_delivered_to_sqs_link_to_the_publisher() -> None:
    event = load("sqs")
    record = event["Records"][2]
    record["body"] = json.dumps(
        {
            "Type": "Notification",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": "arn:aws:sns:us-east-2:123456789012:price-changes",
            "Message": "{}",
            "MessageAttributes": {"traceparent": {"Type": "String", "Value": f"00-{TRACE_HEX}-{SPAN_HEX}-01"}},
        }
    )
    trigger = describe({"Records": [record]}, lambda_context())
    assert [(link.trace_id, link.span_id) for link in trigger.links] == [(TRACE, SPAN)]
    record["body"] = '{"TopicArn": "x", "traceparent": broken json'
    assert describe({"Records": [record]}, lambda_context()).links == []


def test_sns_links_from_message_attributes() -> None:
    trigger = describe(load("sns"), lambda_context())
    assert trigger.span_name == "price-changes process"
    assert trigger.attributes["messaging.system"] == "aws.sns"
    assert trigger.attributes["messaging.destination.name"] == "price-changes"
    assert trigger.attributes["aws.sns.topic.arn"] == "arn:aws:sns:us-east-1:123456789012:price-changes"
    assert trigger.attributes["messaging.message.id"] == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    assert trigger.links == [
        Link(
            0x7C1A6F3E9D2B4A5C8E0F1A2B3C4D5E6F,
            0x1A2B3C4D5E6F7A8B,
            1,
            "rojo=00f067aa0ba902b7",
            {"messaging.message.id": "95df01b4-ee98-5cb9-9903-4c221d41eb5e"},
        )
    ]


def test_kinesis_stream() -> None:
    trigger = describe(load("kinesis"), lambda_context())
    assert trigger.faas_trigger == "pubsub"
    assert trigger.span_name == "telemetry-stream process"
    assert trigger.attributes["aws.kinesis.stream_name"] == "telemetry-stream"
    assert trigger.attributes["messaging.batch.message_count"] == 2
    assert trigger.links == []


def test_dynamodb_stream_is_a_datasource_on_its_table() -> None:
    trigger = describe(load("dynamodb_stream"), lambda_context())
    assert trigger.faas_trigger == "datasource"
    assert trigger.span_name == "customers process"
    assert trigger.attributes == {
        "faas.trigger": "datasource",
        "messaging.batch.message_count": 2,
        "faas.document.collection": "customers",
        "aws.dynamodb.table_names": ["customers"],
        "faas.document.operation": "insert",
    }


def test_dynamodb_mixed_operations_name_none() -> None:
    event = load("dynamodb_stream")
    event["Records"][1]["eventName"] = "REMOVE"
    assert "faas.document.operation" not in describe(event, lambda_context()).attributes


def test_s3_object_created() -> None:
    trigger = describe(load("s3"), lambda_context())
    assert trigger.faas_trigger == "datasource"
    assert trigger.span_name == "invoices-inbox process"
    assert trigger.attributes["faas.document.collection"] == "invoices-inbox"
    assert trigger.attributes["faas.document.operation"] == "insert"
    assert trigger.attributes["faas.document.name"] == "2024/05/invoice-0042.pdf"
    assert trigger.attributes["faas.document.time"] == "2024-05-24T19:12:00.000Z"


def test_eventbridge_event() -> None:
    trigger = describe(load("eventbridge"), lambda_context())
    assert trigger.faas_trigger == "pubsub"
    assert trigger.span_name == "com.example.orders process"
    assert trigger.attributes["aws.eventbridge.detail_type"] == "Order Placed"
    assert trigger.attributes["messaging.message.id"] == "fd2d5ee6-3bd7-4b5d-b6d3-5a4e1f0c9b21"
    assert "o-991" not in json.dumps(trigger.attributes)  # the detail is payload


def test_scheduled_event_is_a_timer_named_after_the_function() -> None:
    trigger = describe(load("scheduled"), lambda_context())
    assert trigger.faas_trigger == "timer"
    assert trigger.span_name is None
    assert trigger.attributes == {"faas.trigger": "timer", "faas.time": "2024-05-24T19:15:00Z"}


# --- direct invokes ---------------------------------------------------------------------------------------


def test_direct_invoke_takes_the_client_context_custom_map_as_carrier() -> None:
    sample = load("direct_invoke")
    trigger = describe(sample["event"], lambda_context(sample["client_context"]))
    assert trigger.faas_trigger == "other"
    assert trigger.span_name is None
    assert trigger.carrier == {
        "traceparent": "00-a3ce929d0e0e47364bf92f3577b34da6-00f067aa0ba902b7-01",
        "tracestate": "k=v",
    }


def test_direct_invoke_prefers_the_w3c_map_awslambdaric_lifts_out() -> None:
    client_context = {
        "custom": {"traceparent": "00-a3ce929d0e0e47364bf92f3577b34da6-00f067aa0ba902b7-01"},
        "w3c": {"traceparent": "00-11111111111111111111111111111111-2222222222222222-01"},
    }
    context = lambda_context(client_context)
    trigger = describe({}, context)
    if hasattr(context, "w3c"):
        assert trigger.carrier == {"traceparent": "00-11111111111111111111111111111111-2222222222222222-01"}
    else:  # awslambdaric 3.x keeps only client, custom and env of the client context: the custom map is all there is
        assert trigger.carrier == {"traceparent": "00-a3ce929d0e0e47364bf92f3577b34da6-00f067aa0ba902b7-01"}


def test_direct_invoke_without_client_context() -> None:
    trigger = describe({"action": "x"}, lambda_context())
    assert (trigger.faas_trigger, trigger.carrier, trigger.links, trigger.is_http) == ("other", None, [], False)


# --- header parsers ---------------------------------------------------------------------------------------


TRACE_HEX, SPAN_HEX = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACE, SPAN = int(TRACE_HEX, 16), int(SPAN_HEX, 16)
XRAY_ROOT, XRAY_PARENT = "1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"
XRAY_TRACE, XRAY_SPAN = 0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE_HEX}-{SPAN_HEX}-01", (TRACE, SPAN, 1)),
        (f"00-{TRACE_HEX}-{SPAN_HEX}-00", (TRACE, SPAN, 0)),
        (f"cc-{TRACE_HEX}-{SPAN_HEX}-01-what-the-future-adds", (TRACE, SPAN, 1)),
        (f"ff-{TRACE_HEX}-{SPAN_HEX}-01", None),
        (f"00-{'0' * 32}-{SPAN_HEX}-01", None),
        (f"00-{TRACE_HEX}-{'0' * 16}-01", None),
        (f"00-{TRACE_HEX}-{SPAN_HEX}-01-extra", None),
        (f"00-{TRACE_HEX[:-1]}z-{SPAN_HEX}-01", None),
        (f"00-{TRACE_HEX[:-2]}-{SPAN_HEX}-0100", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_traceparent(header: str | None, expected: tuple[int, int, int] | None) -> None:
    assert parse_traceparent(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Root={XRAY_ROOT};Parent={XRAY_PARENT};Sampled=1", (XRAY_TRACE, XRAY_SPAN, 1)),
        (f"Root={XRAY_ROOT};Parent={XRAY_PARENT};Sampled=0", (XRAY_TRACE, XRAY_SPAN, 0)),
        (f"Parent={XRAY_PARENT}; Root={XRAY_ROOT}; Lineage=a:1", (XRAY_TRACE, XRAY_SPAN, 0)),
        (f"Root={XRAY_ROOT}", None),  # no parent: nothing to link to
        (f"Root=2{XRAY_ROOT[1:]};Parent={XRAY_PARENT}", None),
        (f"Root=1-5759e98-bd862e3fe1be46a9942727930;Parent={XRAY_PARENT}", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_parse_xray(header: str | None, expected: tuple[int, int, int] | None) -> None:
    assert parse_xray(header) == expected


# --- malformed events never raise -------------------------------------------------------------------------

SAMPLES = ["apigw_rest", "apigw_http_v2", "function_url", "alb", "sqs", "sns", "kinesis", "dynamodb_stream", "s3",
           "eventbridge", "scheduled"]  # fmt: skip
WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.just("x" * 1_000_000),
    st.just(""),
    st.lists(st.integers(), max_size=3),
    st.just({}),
    st.just([]),
    st.just([{}]),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(event: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = event
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return event


def _assert_well_formed(trigger: Trigger) -> None:
    assert trigger.faas_trigger in {"http", "pubsub", "datasource", "timer", "other"}
    assert trigger.attributes["faas.trigger"] == trigger.faas_trigger
    for key, value in trigger.attributes.items():
        assert isinstance(key, str)
        if isinstance(value, list):
            assert all(isinstance(item, (str, bool, int, float)) for item in value)
        else:
            assert isinstance(value, (str, bool, int, float))
    assert trigger.span_name is None or isinstance(trigger.span_name, str)
    if trigger.carrier is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in trigger.carrier.items())
    for link in trigger.links:
        assert 0 < link.trace_id < 1 << 128 and 0 < link.span_id < 1 << 64


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(SAMPLES), weird=WEIRD)
def test_any_value_anywhere_in_a_sample_event_is_tolerated(data: st.DataObject, name: str, weird: Any) -> None:
    event = load(name)
    path = data.draw(st.sampled_from(_paths(event)))
    event = _replace(event, path, weird)
    collect = _Collect()
    logger = logging.getLogger("afterglow.triggers")
    logger.addHandler(collect)
    try:
        trigger = describe(event, lambda_context())
        _assert_well_formed(trigger)
        response_attributes(trigger, weird)
    finally:
        logger.removeHandler(collect)
    # The parser copes by itself: the last-resort guard in describe() never had to catch anything.
    assert not collect.records


EVENT_KEYS = ["Records", "requestContext", "http", "httpMethod", "headers", "eventSource", "EventSource", "Sns",
              "s3", "elb", "source", "detail-type", "messageAttributes", "multiValueHeaders", "eventSourceARN",
              "version", "routeKey"]  # fmt: skip
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(EVENT_KEYS) | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(event=JSONISH)
def test_random_structures_give_a_well_formed_trigger(event: Any) -> None:
    _assert_well_formed(describe(event, object()))


class ExplodingContext:
    @property
    def client_context(self) -> object:
        raise RuntimeError("a context whose attributes raise")


def test_the_last_resort_guard_returns_other_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="afterglow.triggers"):
        trigger = describe({"unknown": True}, ExplodingContext())
    assert trigger.faas_trigger == "other"
    assert "could not read the trigger" in caplog.text
