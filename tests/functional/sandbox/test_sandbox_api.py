"""Malformed and out-of-turn API calls get the spec's 4xx answers, and the sandbox keeps running."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)


def call(box: Sandbox, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(box.host, box.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)
    finally:
        connection.close()


def test_out_of_turn_calls_are_refused_and_the_sandbox_carries_on(functions: Path) -> None:
    with Sandbox(functions, "handlers.echo") as box:
        box.invoke({"n": 1}).report()  # the report means the runtime is back on /next
        # the runtime is already waiting on /next: a second poll is refused, not queued
        status, body = call(box, "GET", "/2018-06-01/runtime/invocation/next")
        assert (status, body["errorType"]) == (403, "InvalidStateTransition")
        status, body = call(box, "POST", f"/2018-06-01/runtime/invocation/{uuid.uuid4()}/response", b"{}")
        assert (status, body["errorType"]) == (400, "InvalidRequestID")
        status, body = call(box, "POST", f"/2018-06-01/runtime/invocation/{uuid.uuid4()}/error", b"{}")
        assert (status, body["errorType"]) == (400, "InvalidRequestID")
        status, body = call(box, "POST", "/2018-06-01/runtime/init/error", b"{}")
        assert (status, body["errorType"]) == (403, "InvalidStateTransition")
        status, body = call(box, "POST", "/2020-01-01/extension/register", b'{"events": ["INVOKE"]}',
                            {"Lambda-Extension-Name": "late"})
        assert (status, body["errorType"]) == (403, "Extension.RegistrationClosed")
        status, body = call(box, "GET", "/2020-01-01/extension/event/next")
        assert (status, body["errorType"]) == (403, "Extension.MissingExtensionIdentifier")
        status, body = call(box, "GET", "/2020-01-01/extension/event/next", headers={
            "Lambda-Extension-Identifier": "not-a-uuid"})
        assert (status, body["errorType"]) == (403, "Extension.InvalidExtensionIdentifier")
        status, body = call(box, "GET", "/2020-01-01/extension/event/next", headers={
            "Lambda-Extension-Identifier": str(uuid.uuid4())})
        assert (status, body["errorType"]) == (403, "Extension.UnknownExtensionIdentifier")
        status, body = call(box, "PUT", "/2022-07-01/telemetry", b"{}", {
            "Lambda-Extension-Identifier": str(uuid.uuid4())})
        assert status == 403
        status, body = call(box, "GET", "/2018-06-01/runtime/nowhere")
        assert (status, body["errorType"]) == (404, "NotFound")
        status, body = call(box, "DELETE", "/2018-06-01/runtime/invocation/next")
        assert (status, body["errorType"]) == (405, "MethodNotAllowed")
        status, body = call(box, "POST", "/2015-03-31/functions/someone-else/invocations", b"{}")
        assert (status, body["errorType"]) == (404, "ResourceNotFoundException")
        status, body = call(box, "POST", "/2015-03-31/functions/function/invocations", b"{}",
                            {"X-Amz-Client-Context": "%%% not base64"})
        assert (status, body["errorType"]) == (400, "InvalidRequestContentException")
        assert box.invoke({"n": 2}).json()["event"] == {"n": 2}
        assert box.shutdowns == []  # none of that reset the environment


def test_answering_twice_is_refused(functions: Path) -> None:
    with Sandbox(functions, "handlers.sleep") as box:
        box.invoke({"seconds": 0}).report()
        future = box.invoke_async({"seconds": 0.5})
        deadline = time.monotonic() + 10
        while not [event for event in box.events if event["type"] == "platform.start"][1:]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        request_id = [event for event in box.events if event["type"] == "platform.start"][1]["record"]["requestId"]
        path = f"/2018-06-01/runtime/invocation/{request_id}/response"
        # anyone holding the Runtime API may answer: the first answer wins, the second is refused
        assert call(box, "POST", path, b'"answered by the test"', {"Content-Type": "application/json"})[0] == 202
        status, body = call(box, "POST", path, b'"again"')
        assert (status, body["errorType"]) == (403, "InvalidStateTransition")
        assert future.result(timeout=10).json() == "answered by the test"
        # awslambdaric then gets a 403 for its own answer and exits: the environment resets, the sandbox lives on
        assert box.wait_shutdowns(1)[0].reason == "failure"
        assert box.invoke({"seconds": 0}).json() == "slept"


def test_extension_api_validation(functions: Path, make_layer) -> None:
    own = {"Lambda-Extension-Identifier": "{id}"}
    bad_subscription = {"schemaVersion": "2022-12-13", "types": ["platform"],
                        "destination": {"protocol": "HTTP", "URI": "http://example.com:80/"}}
    probes = [
        {"method": "POST", "path": "/2020-01-01/extension/register", "body": "{not json",
         "headers": {"Lambda-Extension-Name": "other"}},
        {"method": "POST", "path": "/2020-01-01/extension/register", "body": '{"events": ["BOGUS"]}',
         "headers": {"Lambda-Extension-Name": "other"}},
        {"method": "POST", "path": "/2020-01-01/extension/register", "body": '{"events": ["SHUTDOWN"]}',
         "headers": {"Lambda-Extension-Name": "not-a-file-in-extensions"}},
        {"method": "POST", "path": "/2020-01-01/extension/register", "body": "{}",
         "headers": {"Lambda-Extension-Name": "prober"}},
        {"method": "POST", "path": "/2020-01-01/extension/register", "body": "{}", "headers": {}},
        {"method": "PUT", "path": "/2022-07-01/telemetry", "body": "[]", "headers": own},
        {"method": "PUT", "path": "/2022-07-01/telemetry",
         "body": json.dumps({**bad_subscription, "schemaVersion": "1999"}), "headers": own},
        {"method": "PUT", "path": "/2022-07-01/telemetry", "body": json.dumps(bad_subscription),
         "headers": {"Lambda-Extension-Identifier": "{id}"}},
        {"method": "PUT", "path": "/2022-07-01/telemetry",
         "body": json.dumps({**bad_subscription, "buffering": {"maxItems": 5}}),
         "headers": {"Lambda-Extension-Identifier": "{id}"}},
        {"method": "POST", "path": "/2020-01-01/extension/init/error", "body": "{}",
         "headers": {"Lambda-Extension-Identifier": "{id}"}},
    ]
    layer, recordings = make_layer(prober={"probes": probes, "late_subscribe": True})
    with Sandbox(functions, "handlers.empty", layers=[layer]) as box:
        invocation = box.invoke({})
        invocation.report()
        assert box.invoke({}).status == 200
    answers = [(entry["status"], json.loads(entry["body"]).get("errorType"))
               for entry in recordings["prober"].entries("probe")]
    assert answers == [
        (403, "InvalidRequestFormat"),
        (403, "Extension.InvalidEventType"),
        (403, "Extension.InvalidEventType"),  # internal extensions may not subscribe to SHUTDOWN
        (403, "Extension.InvalidExtensionName"),  # already registered
        (403, "Extension.InvalidExtensionName"),  # no name
        (400, "ValidationError"),
        (400, "ValidationError"),
        (400, "ValidationError"),  # not inside the execution environment
        (400, "ValidationError"),
        (403, "Extension.MissingHeader"),
    ]
    late = recordings["prober"].entries("late_subscribe")[0]
    assert late["status"] == 403 and "SubscriptionClosed" in late["body"]
    assert invocation.function_error is None
