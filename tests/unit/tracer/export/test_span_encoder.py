"""Wire records -> OTLP request bytes, decoded back with the official opentelemetry-proto messages."""

from __future__ import annotations

import os

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.helpers.otlp_receiver import attributes
from tracer.export.buffer import Batch
from tracer.export.span_encoder import SpanEncoder


def encode(batches: list[Batch]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(SpanEncoder().request(batches))


def test_every_field_survives_the_trip() -> None:
    trace_id, root_id, child_id = os.urandom(16), os.urandom(8), os.urandom(8)
    linked_trace, linked_span = os.urandom(16), os.urandom(8)
    remote_parent = os.urandom(8)
    root = [
        trace_id,
        root_id,
        remote_parent,
        "GET /orders",
        1,
        1_000,
        9_000,
        {
            "faas.trigger": "http",
            "http.response.status_code": 200,
            "ratio": 0.5,
            "flags": [True, False],
            "tags": ["a", "b"],
        },
        [["exception", 5_000, {"exception.type": "ValueError", "exception.message": "boom"}]],
        [[linked_trace, linked_span, 1, "vendor=x", {"messaging.message.id": "m-1"}]],
        2,
        "boom",
        "tracer",
        "0.1.0",
        1,
        "congo=t61rcWkgMzE",
        [3, 1, 0],
    ]
    child = [
        trace_id,
        child_id,
        root_id,
        "s3.GetObject",
        2,
        2_000,
        3_000,
        None,
        None,
        None,
        0,
        None,
        "botocore",
        None,
        1,
        None,
        [0, 0, 0],
    ]
    resource = {"service.name": "checkout", "cloud.provider": "aws"}
    decoded = encode([Batch(resource, "r1", [root, child], [1, 1])])

    (resource_spans,) = decoded.resource_spans
    assert attributes(resource_spans.resource.attributes) == resource
    scopes = {scope.scope.name: scope for scope in resource_spans.scope_spans}
    assert scopes["tracer"].scope.version == "0.1.0" and scopes["botocore"].scope.version == ""
    (otlp_root,) = scopes["tracer"].spans
    (otlp_child,) = scopes["botocore"].spans

    assert otlp_root.trace_id == trace_id and otlp_root.span_id == root_id
    assert otlp_root.parent_span_id == remote_parent
    assert otlp_root.name == "GET /orders" and otlp_root.kind == 2  # SERVER
    assert (otlp_root.start_time_unix_nano, otlp_root.end_time_unix_nano) == (1_000, 9_000)
    assert attributes(otlp_root.attributes) == root[7]
    assert otlp_root.status.code == 2 and otlp_root.status.message == "boom"
    assert otlp_root.trace_state == "congo=t61rcWkgMzE"
    assert (otlp_root.dropped_attributes_count, otlp_root.dropped_events_count, otlp_root.dropped_links_count) == (
        3,
        1,
        0,
    )
    (event,) = otlp_root.events
    assert event.name == "exception" and event.time_unix_nano == 5_000
    assert attributes(event.attributes) == {"exception.type": "ValueError", "exception.message": "boom"}
    (link,) = otlp_root.links
    assert link.trace_id == linked_trace and link.span_id == linked_span and link.trace_state == "vendor=x"
    assert link.flags == 0x300  # HAS_IS_REMOTE | IS_REMOTE
    assert otlp_root.flags == 0x300  # a SERVER span: its parent came in the request
    assert attributes(link.attributes) == {"messaging.message.id": "m-1"}

    assert otlp_child.parent_span_id == root_id and otlp_child.kind == 3  # CLIENT
    assert otlp_child.status.code == 0 and not otlp_child.attributes
    assert otlp_child.trace_id == trace_id and otlp_child.flags == 0x100  # HAS_IS_REMOTE: a local parent


def test_spans_of_different_processes_keep_their_own_resource() -> None:
    trace_id = os.urandom(16)
    span = [trace_id, os.urandom(8), None, "a", 0, 1, 2, None, None, None, 0, None, "s", None, 1, None, [0, 0, 0]]
    other = list(span)
    other[1] = os.urandom(8)
    request = encode(
        [Batch({"service.name": "one"}, None, [span], [1]), Batch({"service.name": "two"}, None, [other], [1])]
    )
    services = sorted(attributes(rs.resource.attributes)["service.name"] for rs in request.resource_spans)
    assert services == ["one", "two"]
