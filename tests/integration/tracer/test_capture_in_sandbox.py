"""AFTERGLOW_CAPTURE_PAYLOAD end to end: awslambdaric, the real extension, the collector sees masked payloads."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from sandbox import Sandbox
from tests.helpers.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[3]
LAUNCHER = ROOT / "afterglow" / "layer_files" / "extensions" / "afterglow"

FUNCTION = """
import json
import os
import time

from tracer import trace_handler


@trace_handler
def handler(event, context):
    body = json.loads(event["body"])
    if body.get("crash"):
        time.sleep(0.05)  # some work first: START leaves within the hand-off's window (1 ms), then the crash
        os._exit(3)
    return {"statusCode": 200, "body": json.dumps({"user": body["user"], "session_token": "tok-123"})}
"""


def _event(**body: object) -> dict[str, object]:
    return {
        "version": "2.0",
        "routeKey": "POST /login",
        "rawPath": "/login",
        "rawQueryString": "next=%2Fhome&api_key=k-999",
        "headers": {"authorization": "Bearer eyJ-secret", "content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/login"}, "routeKey": "POST /login"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def test_event_and_response_reach_the_collector_masked(tmp_path: Path, otlp_receiver: OtlpReceiver) -> None:
    layer = tmp_path / "layer"
    (layer / "extensions").mkdir(parents=True)
    shutil.copy2(LAUNCHER, layer / "extensions" / "afterglow")
    task_root = tmp_path / "function"
    task_root.mkdir()
    (task_root / "app.py").write_text(textwrap.dedent(FUNCTION))
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_CAPTURE_PAYLOAD": "true"}
    with Sandbox(task_root, "app.handler", layers=[layer], env=env) as box:
        ok = box.invoke(_event(user="ann", password="hunter2"))
        assert ok.json()["statusCode"] == 200
        crashed = box.invoke(_event(user="bob", password="swordfish", crash=True))
        assert crashed.json()["errorType"] == "Runtime.ExitError"
    spans = otlp_receiver.wait_for_spans(2, timeout=20)
    (root,) = [span for span in spans if span.attributes["faas.invocation_id"] == ok.request_id]
    received = json.dumps([span.attributes for span in spans])
    for secret in ("hunter2", "swordfish", "eyJ-secret", "k-999", "tok-123"):
        assert secret not in received

    event = json.loads(root.attributes["faas.invocation.event"])
    assert event["headers"] == {"authorization": "****", "content-type": "application/json"}
    assert event["rawQueryString"] == "next=%2Fhome&api_key=****"
    assert json.loads(event["body"]) == {"user": "ann", "password": "****"}
    response = json.loads(root.attributes["faas.invocation.response"])
    assert json.loads(response["body"]) == {"user": "ann", "session_token": "****"}

    # the crashed invocation's span is made by the extension from START, which already carried the event
    crash = next(span for span in spans if span.attributes.get("faas.error") == "crash")
    assert json.loads(json.loads(crash.attributes["faas.invocation.event"])["body"])["user"] == "bob"
    assert "faas.invocation.response" not in crash.attributes
