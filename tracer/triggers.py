"""What triggered an invocation, read off the event: span name, semantic-convention attributes, carrier, links.

``describe`` is pure and cheap (dict look-ups, no I/O, nothing heavy imported) and never raises: an event
it does not recognise, or one with the wrong shapes inside, gives an ``other`` trigger. The decorator
calls it once per invocation and ``response_attributes`` once per HTTP response.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from tracer import config
from tracer._headers import extract_traceparent, extract_xray

if TYPE_CHECKING:
    from opentelemetry.trace.span import SpanContext

_log = logging.getLogger("afterglow.triggers")

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]

HTTP, PUBSUB, DATASOURCE, TIMER, OTHER = "http", "pubsub", "datasource", "timer", "other"

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
_DOCUMENT_OPERATIONS = {"INSERT": "insert", "MODIFY": "edit", "REMOVE": "delete"}  # DynamoDB eventName
_TRACE_KEYS = ("traceparent", "tracestate")


class Link(NamedTuple):
    """A span link to the producer of one message."""

    trace_id: int
    span_id: int
    trace_flags: int
    trace_state: str | None
    attributes: dict[str, AttributeValue]


class Trigger:
    """The invocation span's trigger-specific parts."""

    __slots__ = ("attributes", "carrier", "default_status", "faas_trigger", "is_http", "links", "span_name")

    def __init__(
        self,
        faas_trigger: str,
        attributes: dict[str, AttributeValue],
        span_name: str | None = None,
        carrier: Mapping[str, str] | None = None,
        links: list[Link] | None = None,
        is_http: bool = False,
        default_status: int | None = None,
    ) -> None:
        self.span_name = span_name  # None: the decorator names the span after the function
        self.faas_trigger = faas_trigger
        self.attributes = attributes  # includes faas.trigger
        self.carrier = carrier  # lower-cased keys, for W3C (or client-context) extraction
        self.links = links if links is not None else []
        self.is_http = is_http
        # The status the platform reports when the handler's result carries none (HTTP API v2, URLs: 200).
        self.default_status = default_status

    def __repr__(self) -> str:
        return (
            f"Trigger({self.faas_trigger!r}, span_name={self.span_name!r}, attributes={self.attributes!r}, "
            f"links={len(self.links)}, carrier={'yes' if self.carrier else 'no'})"
        )


def describe(event: object, context: object) -> Trigger:
    """Read the trigger off a Lambda event; an unknown or malformed event gives ``faas.trigger=other``."""
    # The dispatch, here rather than in a function of its own: one function fewer per invocation, caches cold.
    try:
        if isinstance(event, dict):
            request_context = event.get("requestContext")
            if isinstance(request_context, dict) or "httpMethod" in event:
                http = _http(event, _as_dict(request_context))
                if http is not None:
                    return http
            records = event.get("Records")
            if isinstance(records, list) and records and isinstance(records[0], dict):
                first = records[0]
                source = _as_str(first.get("eventSource")) or _as_str(first.get("EventSource")) or ""
                parse = _RECORD_PARSERS.get(source)
                if parse is not None:
                    return parse(records)
            if "detail-type" in event and "source" in event:
                return _eventbridge(event)
        return _direct(context)
    except Exception:  # a bug of ours: the handler must still run, with a plain span
        _log.warning("could not read the trigger from the event", exc_info=True)
        return Trigger(OTHER, {"faas.trigger": OTHER})


def response_attributes(trigger: Trigger, result: object) -> tuple[dict[str, AttributeValue], bool]:
    """``({"http.response.status_code": n}, n >= 500)`` for an HTTP trigger's result; ``({}, False)`` otherwise."""
    if not trigger.is_http:
        return {}, False
    status: int | None = trigger.default_status
    if isinstance(result, dict):
        status = _status(result.get("statusCode")) or status
    if status is None:
        return {}, False
    return {"http.response.status_code": status}, status >= 500


# --- HTTP: API Gateway REST (v1) and HTTP APIs (v2), Function URLs, ALB ----------------------------------


def _http(event: dict[str, Any], request_context: dict[str, Any]) -> Trigger | None:
    headers = _headers(event)
    route: str | None = None
    v2 = isinstance(request_context.get("http"), dict)
    if v2:  # HTTP API payload 2.0 and Function URLs
        http = request_context["http"]
        method = _as_str(http.get("method"))
        path = _as_str(event.get("rawPath")) or _as_str(http.get("path"))
        route_key = _as_str(event.get("routeKey"))
        if route_key and " " in route_key:  # "GET /pets/{id}"; "$default" carries no template
            route = route_key.split(" ", 1)[1]
        client = _as_str(http.get("sourceIp"))
        user_agent = _as_str(http.get("userAgent")) or headers.get("user-agent")
        protocol = _as_str(http.get("protocol"))
        host = _as_str(request_context.get("domainName")) or headers.get("host")
    elif "elb" in request_context:  # ALB target group
        method = _as_str(event.get("httpMethod"))
        path = _as_str(event.get("path"))
        forwarded_for = headers.get("x-forwarded-for")
        client = forwarded_for.split(",", 1)[0].strip() or None if forwarded_for else None
        user_agent = headers.get("user-agent")
        protocol = None
        host = headers.get("host")
    elif "httpMethod" in event:  # API Gateway REST, and HTTP API payload 1.0
        identity = _as_dict(request_context.get("identity"))
        method = _as_str(event.get("httpMethod"))
        path = _as_str(event.get("path"))
        route = _as_str(event.get("resource"))
        client = _as_str(identity.get("sourceIp"))
        user_agent = _as_str(identity.get("userAgent")) or headers.get("user-agent")
        protocol = _as_str(request_context.get("protocol"))
        host = _as_str(request_context.get("domainName")) or headers.get("host")
    else:
        return None

    attributes: dict[str, AttributeValue] = {"faas.trigger": HTTP}
    if method is not None and method.upper() in _KNOWN_METHODS:
        method = method.upper()
        attributes["http.request.method"] = method
    else:
        if method is not None:
            attributes["http.request.method_original"] = method
        attributes["http.request.method"] = "_OTHER"
        method = "HTTP"
    if route:
        attributes["http.route"] = route
    if path:
        attributes["url.path"] = path
    scheme = headers.get("x-forwarded-proto") or ("https" if v2 or "elb" not in request_context else None)
    if scheme:
        attributes["url.scheme"] = scheme
    if host:
        attributes["server.address"] = host
    port = _status(headers.get("x-forwarded-port"))
    if port is not None:
        attributes["server.port"] = port
    if user_agent:
        attributes["user_agent.original"] = user_agent
    if client:
        attributes["client.address"] = client
    if protocol and protocol.upper().startswith("HTTP/"):
        attributes["network.protocol.version"] = protocol[5:]
    target = route or path
    span_name = f"{method} {target}" if target else method
    return Trigger(HTTP, attributes, span_name, headers or None, is_http=True, default_status=200 if v2 else None)


def _headers(event: dict[str, Any]) -> dict[str, str]:
    """The request headers with lower-cased keys (also the carrier); single values win over multi-value ones."""
    merged: dict[str, str] = {}
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict):
        for name, values in multi.items():
            if isinstance(name, str) and isinstance(values, list):
                texts = [value for value in values if isinstance(value, str)]
                if texts:
                    merged[name.lower()] = ",".join(texts)
    single = event.get("headers")
    if isinstance(single, dict):
        for name, value in single.items():
            if isinstance(name, str) and isinstance(value, str):
                merged[name.lower()] = value
    return merged


# --- record batches: SQS, SNS, Kinesis, DynamoDB Streams, S3 ---------------------------------------------


def _sqs(records: list[Any]) -> Trigger:
    queue = _arn_resource(records[0].get("eventSourceARN"))
    attributes = _messaging("aws_sqs", queue, records)
    if len(records) == 1 and _as_str(records[0].get("messageId")):
        attributes["messaging.message.id"] = records[0]["messageId"]
    links: list[Link] = []
    limit = _link_limit()
    for record in records:
        if len(links) >= limit:
            break
        if not isinstance(record, dict):
            continue
        message_attributes = _as_dict(record.get("messageAttributes"))
        link = _w3c_link(
            _as_str(_as_dict(message_attributes.get("traceparent")).get("stringValue")),
            _as_str(_as_dict(message_attributes.get("tracestate")).get("stringValue")),
        ) or _xray_link(_as_str(_as_dict(record.get("attributes")).get("AWSTraceHeader")))
        if link is None:
            link = _sns_envelope_link(record.get("body"))
        if link is not None:
            links.append(_with_message_id(link, record.get("messageId")))
    return Trigger(PUBSUB, attributes, f"{queue or 'sqs'} process", links=links)


def _sns(records: list[Any]) -> Trigger:
    first = _as_dict(records[0].get("Sns"))
    topic_arn = _as_str(first.get("TopicArn"))
    topic = _arn_resource(topic_arn)
    attributes = _messaging("aws.sns", topic, records)
    if topic_arn:
        attributes["aws.sns.topic.arn"] = topic_arn
    if len(records) == 1 and _as_str(first.get("MessageId")):
        attributes["messaging.message.id"] = first["MessageId"]
    links: list[Link] = []
    limit = _link_limit()
    for record in records:
        if len(links) >= limit:
            break
        sns = _as_dict(record.get("Sns")) if isinstance(record, dict) else {}
        message_attributes = _as_dict(sns.get("MessageAttributes"))
        link = _w3c_link(
            _as_str(_as_dict(message_attributes.get("traceparent")).get("Value")),
            _as_str(_as_dict(message_attributes.get("tracestate")).get("Value")),
        )
        if link is not None:
            links.append(_with_message_id(link, sns.get("MessageId")))
    return Trigger(PUBSUB, attributes, f"{topic or 'sns'} process", links=links)


def _sns_envelope_link(body: object) -> Link | None:
    """The producer of an SNS notification delivered to SQS without raw delivery (the body is SNS's JSON)."""
    if not isinstance(body, str) or '"TopicArn"' not in body or '"traceparent"' not in body:
        return None  # the substring checks keep ordinary message bodies from being parsed
    import json

    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    message_attributes = _as_dict(_as_dict(envelope).get("MessageAttributes"))
    return _w3c_link(
        _as_str(_as_dict(message_attributes.get("traceparent")).get("Value")),
        _as_str(_as_dict(message_attributes.get("tracestate")).get("Value")),
    )


def _kinesis(records: list[Any]) -> Trigger:
    arn = _as_str(records[0].get("eventSourceARN")) or ""
    stream = arn.split(":stream/", 1)[1] if ":stream/" in arn else None
    attributes = _messaging("aws.kinesis", stream, records)
    if stream:
        attributes["aws.kinesis.stream_name"] = stream
    return Trigger(PUBSUB, attributes, f"{stream or 'kinesis'} process")


def _dynamodb(records: list[Any]) -> Trigger:
    arn = _as_str(records[0].get("eventSourceARN")) or ""
    table = arn.split(":table/", 1)[1].split("/", 1)[0] if ":table/" in arn else None
    attributes: dict[str, AttributeValue] = {
        "faas.trigger": DATASOURCE,
        "messaging.batch.message_count": len(records),
    }
    if table:
        attributes["faas.document.collection"] = table
        attributes["aws.dynamodb.table_names"] = [table]
    operations = {_as_str(record.get("eventName")) for record in records if isinstance(record, dict)}
    if len(operations) == 1:
        operation = _DOCUMENT_OPERATIONS.get(operations.pop() or "")
        if operation:
            attributes["faas.document.operation"] = operation
    return Trigger(DATASOURCE, attributes, f"{table or 'dynamodb'} process")


def _s3(records: list[Any]) -> Trigger:
    first = records[0]
    s3 = _as_dict(first.get("s3"))
    bucket = _as_str(_as_dict(s3.get("bucket")).get("name"))
    attributes: dict[str, AttributeValue] = {
        "faas.trigger": DATASOURCE,
        "messaging.batch.message_count": len(records),
    }
    if bucket:
        attributes["faas.document.collection"] = bucket
        attributes["aws.s3.bucket"] = bucket
    event_names = {_as_str(record.get("eventName")) or "" for record in records if isinstance(record, dict)}
    if len(event_names) == 1:
        event_name = event_names.pop()
        if event_name.startswith("ObjectCreated:"):
            attributes["faas.document.operation"] = "insert"
        elif event_name.startswith("ObjectRemoved:"):
            attributes["faas.document.operation"] = "delete"
    if len(records) == 1:
        key = _as_str(_as_dict(s3.get("object")).get("key"))
        if key:
            attributes["faas.document.name"] = key
            attributes["aws.s3.key"] = key
        event_time = _as_str(first.get("eventTime"))
        if event_time:
            attributes["faas.document.time"] = event_time
    return Trigger(DATASOURCE, attributes, f"{bucket or 's3'} process")


_RECORD_PARSERS = {
    "aws:sqs": _sqs,
    "aws:sns": _sns,
    "aws:kinesis": _kinesis,
    "aws:dynamodb": _dynamodb,
    "aws:s3": _s3,
}


def _messaging(system: str, destination: str | None, records: list[Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "faas.trigger": PUBSUB,
        "messaging.system": system,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.batch.message_count": len(records),
    }
    if destination:
        attributes["messaging.destination.name"] = destination
    return attributes


# --- EventBridge and scheduled events --------------------------------------------------------------------


def _eventbridge(event: dict[str, Any]) -> Trigger:
    source = _as_str(event.get("source"))
    detail_type = _as_str(event.get("detail-type"))
    event_time = _as_str(event.get("time"))
    if source == "aws.events" and detail_type == "Scheduled Event":
        attributes: dict[str, AttributeValue] = {"faas.trigger": TIMER}
        if event_time:
            attributes["faas.time"] = event_time
        return Trigger(TIMER, attributes)
    attributes = {
        "faas.trigger": PUBSUB,
        "messaging.system": "aws.eventbridge",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
    }
    event_id = _as_str(event.get("id"))
    if event_id:
        attributes["messaging.message.id"] = event_id
    if source:
        attributes["aws.eventbridge.source"] = source
    if detail_type:
        attributes["aws.eventbridge.detail_type"] = detail_type
    return Trigger(PUBSUB, attributes, f"{source or 'eventbridge'} process")


# --- direct invokes ---------------------------------------------------------------------------------------


def _direct(context: object) -> Trigger:
    """A direct (or unrecognised) invoke; trace context in the client context becomes the carrier.

    awslambdaric 4.x lifts a client context's ``w3c`` map out into ``context.w3c()``; other callers (and
    afterglow's own botocore patch) put ``traceparent`` into the ``custom`` map.
    """
    w3c = getattr(context, "w3c", None)
    w3c = w3c() if callable(w3c) else None
    carrier = _string_map(w3c) if w3c else {}  # the usual: none (no call to make a map of nothing)
    if "traceparent" not in carrier:
        custom = getattr(getattr(context, "client_context", None), "custom", None)
        carrier = _string_map(custom) if custom else {}
    return Trigger(OTHER, {"faas.trigger": OTHER}, carrier=carrier or None)


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {key.lower(): text for key, text in value.items() if isinstance(key, str) and isinstance(text, str)}


# --- trace context in messages ----------------------------------------------------------------------------


def parse_traceparent(header: str | None) -> tuple[int, int, int] | None:
    """``(trace_id, span_id, trace_flags)`` from a W3C traceparent header, or None when it is not valid."""
    return _ids(extract_traceparent(header))


def parse_xray(header: str | None) -> tuple[int, int, int] | None:
    """``(trace_id, span_id, trace_flags)`` from X-Ray's ``Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1``."""
    return _ids(extract_xray(header))


def _ids(context: SpanContext | None) -> tuple[int, int, int] | None:
    return None if context is None else (context.trace_id, context.span_id, int(context.trace_flags))


def _w3c_link(traceparent: str | None, tracestate: str | None) -> Link | None:
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return None
    return Link(parsed[0], parsed[1], parsed[2], tracestate or None, {})


def _xray_link(header: str | None) -> Link | None:
    parsed = parse_xray(header)
    if parsed is None:
        return None
    return Link(parsed[0], parsed[1], parsed[2], None, {})


def _with_message_id(link: Link, message_id: object) -> Link:
    if isinstance(message_id, str) and message_id:
        link.attributes["messaging.message.id"] = message_id
    return link


def _link_limit() -> int:
    return config.read_int("OTEL_SPAN_LINK_COUNT_LIMIT", 128)


# --- small readers that tolerate any shape ----------------------------------------------------------------


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _status(value: object) -> int | None:
    """An HTTP status (or port) given as int or decimal string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 100000 else None
    if isinstance(value, str) and value.isdigit() and len(value) <= 5:
        return int(value)
    return None


def _arn_resource(arn: object) -> str | None:
    """The last ``:``-separated part of an ARN: a queue or topic name."""
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        return None
    return arn.rsplit(":", 1)[1] or None
