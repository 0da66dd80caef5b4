"""The invoke endpoint speaks Lambda's Invoke API well enough for boto3's Lambda client."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)

EXAMPLE = Path(__file__).parent / "example"


def test_boto3_invokes_the_sandboxed_function() -> None:
    with Sandbox(EXAMPLE, "app.handler", function_name="greeter") as box:
        client = boto3.client("lambda", endpoint_url=f"http://{box.host}:{box.port}", region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        answer = client.invoke(FunctionName="greeter", Payload=json.dumps({"name": "boto3"}))
        assert answer["StatusCode"] == 200
        assert "FunctionError" not in answer
        assert answer["ExecutedVersion"] == "$LATEST"
        assert json.loads(answer["Payload"].read()) == {"statusCode": 200, "body": "hello, boto3"}
        queued = client.invoke(FunctionName="greeter", InvocationType="Event", Payload=b"{}")
        assert queued["StatusCode"] == 202
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.invoke(FunctionName="someone-else", Payload=b"{}")


def test_boto3_sees_function_errors() -> None:
    with Sandbox(EXAMPLE, "app.broken", function_name="greeter") as box:
        client = boto3.client("lambda", endpoint_url=f"http://{box.host}:{box.port}", region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        answer = client.invoke(FunctionName="greeter", Payload=b"{}")
    assert answer["FunctionError"] == "Unhandled"
    assert json.loads(answer["Payload"].read())["errorType"] == "RuntimeError"
