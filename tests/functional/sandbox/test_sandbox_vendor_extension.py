"""A vendor-style extension runs unmodified: hard-coded /opt paths, a listener on sandbox.localdomain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import Sandbox

VENDOR_LAYER = Path(__file__).parent / "vendor_layer"


def test_a_vendor_telemetry_extension_runs_unmodified(functions: Path, tmp_path: Path) -> None:
    record = tmp_path / "vendor.jsonl"
    with Sandbox(functions, "handlers.chatty", layers=[VENDOR_LAYER], env={"VENDOR_RECORD": str(record)}) as box:
        if not box.lambda_paths:
            pytest.skip(f"this machine cannot give processes Lambda's paths: {box.notices}")
        invocation = box.invoke({})
        invocation.report()
    assert invocation.json() == "ok"
    received = [json.loads(line) for line in record.read_text().splitlines()]
    types = {item["type"] for item in received}
    assert {"platform.initStart", "platform.start", "platform.runtimeDone", "platform.report", "function",
            "extension"} <= types
    assert any(item["type"] == "function" and item["record"] == "to stdout" for item in received)
    assert any("vendor-telemetry subscribed: 200" in line.text for line in box.logs)
