"""Per-service knowledge for the botocore instrumentor: which names to record, where trace context goes.

Attributes name resources (tables, buckets, queues, topics, functions, streams, buses, state machines,
secrets, parameters), never payload values. Injection returns *new* parameters (the caller's dicts and
lists are never changed) or None to leave the call as it is; every limit is respected by skipping.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace

from tracer import propagation

from . import _http

Attributes = dict[str, Any]
Params = Mapping[str, Any]

MAX_MESSAGE_ATTRIBUTES = 10  # SQS (and SNS deliveries to SQS) reject an 11th
MAX_CLIENT_CONTEXT = 3583  # bytes of base64 Lambda accepts in ClientContext


# --- attributes of the request ----------------------------------------------------------------------------


def _dynamodb(operation: str, params: Params) -> Attributes:
    tables = []
    if isinstance(params.get("TableName"), str):
        tables.append(params["TableName"])
    for key in ("RequestItems", "TransactItems"):
        items = params.get(key)
        if isinstance(items, Mapping):
            tables.extend(name for name in items if isinstance(name, str))
        elif isinstance(items, list):  # TransactWriteItems / TransactGetItems: [{"Put": {"TableName": ..}}, ..]
            for item in items:
                for action in item.values() if isinstance(item, Mapping) else ():
                    if isinstance(action, Mapping) and isinstance(action.get("TableName"), str):
                        tables.append(action["TableName"])
    return {"aws.dynamodb.table_names": sorted(set(tables))} if tables else {}


def _s3(operation: str, params: Params) -> Attributes:
    attributes: Attributes = {}
    if isinstance(params.get("Bucket"), str):
        attributes["aws.s3.bucket"] = params["Bucket"]
    if isinstance(params.get("Key"), str):
        attributes["aws.s3.key"] = params["Key"]
    return attributes


def _sqs(operation: str, params: Params) -> Attributes:
    attributes: Attributes = {"messaging.system": "aws_sqs"}
    url = params.get("QueueUrl")
    if isinstance(url, str):
        attributes["aws.sqs.queue.url"] = url
        attributes["messaging.destination.name"] = url.rstrip("/").rsplit("/", 1)[-1]
    elif isinstance(params.get("QueueName"), str):
        attributes["messaging.destination.name"] = params["QueueName"]
    if operation in ("SendMessage", "SendMessageBatch"):
        attributes["messaging.operation.type"] = "send"
        attributes["messaging.operation.name"] = "send"
        if operation == "SendMessageBatch" and isinstance(params.get("Entries"), list):
            attributes["messaging.batch.message_count"] = len(params["Entries"])
    elif operation == "ReceiveMessage":
        attributes["messaging.operation.type"] = "receive"
        attributes["messaging.operation.name"] = "receive"
    return attributes


def _sns(operation: str, params: Params) -> Attributes:
    attributes: Attributes = {"messaging.system": "aws.sns"}
    arn = params.get("TopicArn") or params.get("TargetArn")
    if isinstance(arn, str):
        attributes["aws.sns.topic.arn"] = arn
        attributes["messaging.destination.name"] = arn.rsplit(":", 1)[-1]
    if operation in ("Publish", "PublishBatch"):
        attributes["messaging.operation.type"] = "send"
        attributes["messaging.operation.name"] = "publish"
        entries = params.get("PublishBatchRequestEntries")
        if isinstance(entries, list):
            attributes["messaging.batch.message_count"] = len(entries)
    return attributes


def _lambda(operation: str, params: Params) -> Attributes:
    name = params.get("FunctionName")
    if not isinstance(name, str):
        return {}
    return {"faas.invoked_name": name.rsplit(":function:", 1)[-1].split(":", 1)[0], "faas.invoked_provider": "aws"}


def _kinesis(operation: str, params: Params) -> Attributes:
    name = params.get("StreamName")
    arn = params.get("StreamARN")
    if not isinstance(name, str) and isinstance(arn, str) and ":stream/" in arn:
        name = arn.split(":stream/", 1)[1]
    return {"aws.kinesis.stream_name": name} if isinstance(name, str) else {}


def _eventbridge(operation: str, params: Params) -> Attributes:
    entries = params.get("Entries")
    if operation != "PutEvents" or not isinstance(entries, list):
        return {}
    buses = {entry.get("EventBusName") or "default" for entry in entries if isinstance(entry, Mapping)}
    return {
        "aws.eventbridge.event_bus_names": sorted(str(bus) for bus in buses),
        "messaging.batch.message_count": len(entries),
    }


def _step_functions(operation: str, params: Params) -> Attributes:
    attributes: Attributes = {}
    if isinstance(params.get("stateMachineArn"), str):
        attributes["aws.step_functions.state_machine.arn"] = params["stateMachineArn"]
    if isinstance(params.get("activityArn"), str):
        attributes["aws.step_functions.activity.arn"] = params["activityArn"]
    return attributes


def _secrets_manager(operation: str, params: Params) -> Attributes:
    secret = params.get("SecretId")
    if isinstance(secret, str):
        key = "aws.secretsmanager.secret.arn" if secret.startswith("arn:") else "aws.secretsmanager.secret.name"
        return {key: secret}
    return {}


def _ssm(operation: str, params: Params) -> Attributes:
    names = params.get("Names")
    if isinstance(params.get("Name"), str):
        names = [params["Name"]]
    elif isinstance(params.get("Path"), str):
        names = [params["Path"]]
    if isinstance(names, list) and names:
        return {"aws.ssm.parameter.names": [name for name in names if isinstance(name, str)]}
    return {}


REQUEST_ATTRIBUTES: dict[str, Callable[[str, Params], Attributes]] = {
    "DynamoDB": _dynamodb,
    "S3": _s3,
    "SQS": _sqs,
    "SNS": _sns,
    "Lambda": _lambda,
    "Kinesis": _kinesis,
    "EventBridge": _eventbridge,
    "SFN": _step_functions,
    "Secrets Manager": _secrets_manager,
    "SSM": _ssm,
}


# --- attributes of the response ---------------------------------------------------------------------------


def response_attributes(service: str, operation: str, result: Any) -> Attributes:
    attributes: Attributes = {}
    if not isinstance(result, Mapping):
        return attributes
    metadata = result.get("ResponseMetadata")
    if isinstance(metadata, Mapping):
        if isinstance(metadata.get("RequestId"), str) and metadata["RequestId"]:
            attributes["aws.request_id"] = metadata["RequestId"]
        if isinstance(metadata.get("HTTPStatusCode"), int):
            attributes["http.response.status_code"] = metadata["HTTPStatusCode"]
    if service in ("SQS", "SNS") and isinstance(result.get("MessageId"), str):
        attributes["messaging.message.id"] = result["MessageId"]
    elif service in ("SQS", "SNS") and isinstance(result.get("Successful"), list):
        ids = [entry.get("MessageId") for entry in result["Successful"] if isinstance(entry, Mapping)]
        attributes["aws.sqs.message_ids" if service == "SQS" else "aws.sns.message_ids"] = [
            message_id for message_id in ids if isinstance(message_id, str)
        ]
    elif service == "SQS" and operation == "ReceiveMessage":
        messages = result.get("Messages")
        attributes["messaging.batch.message_count"] = len(messages) if isinstance(messages, list) else 0
    elif service == "Secrets Manager" and isinstance(result.get("ARN"), str):
        attributes["aws.secretsmanager.secret.arn"] = result["ARN"]
    return attributes


# --- trace context into messages --------------------------------------------------------------------------


def _carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    _http.inject(carrier)
    return carrier


def _with_message_attributes(existing: object, carrier: Mapping[str, str]) -> dict[str, Any] | None:
    """SQS/SNS MessageAttributes plus traceparent (and tracestate if there is room); None to leave as is."""
    attributes = existing if isinstance(existing, Mapping) else {}
    if not carrier or any(isinstance(key, str) and key.lower() == "traceparent" for key in attributes):
        return None
    room = MAX_MESSAGE_ATTRIBUTES - len(attributes)
    if room <= 0:
        return None
    merged = dict(attributes)
    for key in ("traceparent", "tracestate"):
        if key in carrier and room > 0:
            merged[key] = {"DataType": "String", "StringValue": carrier[key]}
            room -= 1
    return merged


def _inject_entries(params: Params, entries_key: str, carrier: Mapping[str, str]) -> dict[str, Any] | None:
    entries = params.get(entries_key)
    if not isinstance(entries, list):
        return None
    changed = False
    new_entries = []
    for entry in entries:
        merged = (
            _with_message_attributes(entry.get("MessageAttributes"), carrier) if isinstance(entry, Mapping) else None
        )
        if merged is None:
            new_entries.append(entry)
        else:
            new_entries.append({**entry, "MessageAttributes": merged})
            changed = True
    return {**params, entries_key: new_entries} if changed else None


def _inject_message(params: Params, carrier: Mapping[str, str]) -> dict[str, Any] | None:
    merged = _with_message_attributes(params.get("MessageAttributes"), carrier)
    return None if merged is None else {**params, "MessageAttributes": merged}


def _inject_client_context(params: Params, carrier: Mapping[str, str]) -> dict[str, Any] | None:
    existing = params.get("ClientContext")
    client_context: dict[str, Any] = {}
    if existing:
        try:
            decoded = json.loads(base64.b64decode(existing))
        except (ValueError, TypeError):
            return None  # not ours to fix: Lambda will say what is wrong with it
        if not isinstance(decoded, dict):
            return None
        client_context = decoded
    custom = client_context.get("custom")
    if custom is None:
        custom = {}
    if not isinstance(custom, dict) or "traceparent" in custom or not carrier:
        return None
    client_context = {**client_context, "custom": {**custom, **carrier}}
    encoded = base64.b64encode(json.dumps(client_context, separators=(",", ":")).encode()).decode()
    if len(encoded) > MAX_CLIENT_CONTEXT:
        return None
    return {**params, "ClientContext": encoded}


def xray_header() -> str | None:
    """The current span as an X-Ray trace header (EventBridge's ``TraceHeader``)."""
    span_context = trace.get_current_span().get_span_context()
    return propagation.format_xray(span_context) if span_context.is_valid else None


def _inject_put_events(params: Params, carrier: Mapping[str, str]) -> dict[str, Any] | None:
    entries = params.get("Entries")
    header = xray_header()
    if not isinstance(entries, list) or header is None:
        return None
    new_entries = [
        {**entry, "TraceHeader": header} if isinstance(entry, Mapping) and not entry.get("TraceHeader") else entry
        for entry in entries
    ]
    return {**params, "Entries": new_entries} if new_entries != entries else None


INJECTORS: dict[tuple[str, str], Callable[[Params, Mapping[str, str]], dict[str, Any] | None]] = {
    ("SQS", "SendMessage"): _inject_message,
    ("SQS", "SendMessageBatch"): lambda params, carrier: _inject_entries(params, "Entries", carrier),
    ("SNS", "Publish"): _inject_message,
    ("SNS", "PublishBatch"): lambda params, carrier: _inject_entries(params, "PublishBatchRequestEntries", carrier),
    ("Lambda", "Invoke"): _inject_client_context,
    ("Lambda", "InvokeWithResponseStream"): _inject_client_context,
    ("EventBridge", "PutEvents"): _inject_put_events,
}


def inject(service: str, operation: str, params: Params) -> dict[str, Any] | None:
    """New parameters carrying the current span's context, or None when this call carries none."""
    injector = INJECTORS.get((service, operation))
    if injector is None:
        return None
    return injector(params, _carrier())
