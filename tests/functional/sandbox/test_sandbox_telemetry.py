"""Telemetry API delivery to a subscribed extension: events, order, fields, batching; and the Logs API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def _delivered_until(recording, event_type: str, request_id: str) -> None:
    recording.wait_for(lambda rec: any(item["type"] == event_type and item["record"].get("requestId") == request_id
                                       for item in rec.telemetry()))


def test_platform_events_arrive_in_lifecycle_order_with_their_fields(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(observer={"telemetry": {}})
    observer = recordings["observer"]
    with Sandbox(functions, "handlers.chatty", layers=[layer], memory=256) as box:
        cold = box.invoke({})
        cold.report()
        warm = box.invoke({})
        warm.report()
    _delivered_until(observer, "platform.report", warm.request_id)  # at the latest before SHUTDOWN
    items = observer.telemetry()
    assert all(ISO_MS.match(item["time"]) for item in items)
    kinds = [item["type"] for item in items]
    platform = [kind for kind in kinds if kind.startswith("platform.")]
    # init events before the subscription are replayed to the new subscriber
    assert platform[:6] == ["platform.initStart", "platform.telemetrySubscription", "platform.initRuntimeDone",
                            "platform.extension", "platform.initReport", "platform.start"]
    per_invoke = ["platform.start", "platform.runtimeDone", "platform.report"]
    assert platform[5:] == per_invoke * 2
    index = {(item["type"], item["record"].get("requestId")): position
             for position, item in enumerate(items) if item["type"].startswith("platform.")}
    init_start = next(item["record"] for item in items if item["type"] == "platform.initStart")
    assert init_start["initializationType"] == "on-demand" and init_start["phase"] == "init"
    extension = next(item["record"] for item in items if item["type"] == "platform.extension")
    assert extension == {"name": "observer", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]}
    for invocation, cold_start in ((cold, True), (warm, False)):
        begin = index[("platform.start", invocation.request_id)]
        end = index[("platform.runtimeDone", invocation.request_id)]
        start, done = items[begin]["record"], items[end]["record"]
        assert start["version"] == "$LATEST" and start["tracing"]["type"] == "X-Amzn-Trace-Id"
        assert done["status"] == "success" and done["metrics"]["durationMs"] > 0
        report = items[index[("platform.report", invocation.request_id)]]["record"]
        metrics = report["metrics"]
        assert report["status"] == "success"
        assert metrics["memorySizeMB"] == 256 and metrics["maxMemoryUsedMB"] > 0
        assert metrics["billedDurationMs"] >= metrics["durationMs"] > 0
        assert ("initDurationMs" in metrics) is cold_start
        # the function's lines sit between its platform.start and platform.runtimeDone
        lines = [item["record"] for item in items[begin:end] if item["type"] == "function"]
        assert "to stdout" in lines and "to stderr" in lines
    assert any(item["type"] == "extension" and item["record"] == "observer starting" for item in items)


def test_types_filter_what_is_delivered(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(logs_only={"telemetry": {"types": ["function"]}})
    with Sandbox(functions, "handlers.chatty", layers=[layer]) as box:
        box.invoke({}).report()
    items = recordings["logs_only"].telemetry()  # the sandbox flushed on shutdown
    assert items and {item["type"] for item in items} == {"function"}


def test_batches_honour_max_items_and_max_bytes(functions: Path, make_layer) -> None:
    buffering = {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 30000}  # only size ends a batch early
    layer, recordings = make_layer(batcher={"telemetry": {"types": ["function"], "buffering": buffering}})
    with Sandbox(functions, "handlers.many_lines", layers=[layer]) as box:
        box.invoke({"count": 1500}).report()
        box.invoke({"count": 400, "width": 1000}).report()  # a delivery the freeze held goes out at the thaw
    first = recordings["batcher"].entries("telemetry")[0]["batch"]
    assert len(first) == 1000  # delivered when maxItems was reached, long before timeoutMs
    batches = [entry["batch"] for entry in recordings["batcher"].entries("telemetry")]
    assert sum(len(batch) for batch in batches) == 1900
    assert all(len(batch) <= 1000 for batch in batches)
    assert all(len(json.dumps(batch, separators=(",", ":"))) <= 262144 for batch in batches)
    assert max(len(json.dumps(batch, separators=(",", ":"))) for batch in batches) > 200000


def test_failed_invokes_are_reported_with_their_status(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(observer={"telemetry": {"types": ["platform"]}})
    with Sandbox(functions, "handlers.fail", layers=[layer]) as box:
        invocation = box.invoke({})
        invocation.report()
    _delivered_until(recordings["observer"], "platform.report", invocation.request_id)
    items = {item["type"]: item["record"] for item in recordings["observer"].telemetry()}
    assert items["platform.runtimeDone"]["status"] == "error"
    assert items["platform.report"]["status"] == "error"
    assert items["platform.report"]["errorType"]


def test_legacy_logs_api(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(legacy={"telemetry": {"types": ["platform", "function"]}, "logs_api": True})
    with Sandbox(functions, "handlers.chatty", layers=[layer]) as box:
        invocation = box.invoke({})
        invocation.report()
    subscribed = recordings["legacy"].entries("subscribed")[0]
    assert subscribed["status"] == 200
    kinds = [item["type"] for item in recordings["legacy"].telemetry()]
    platform = [kind for kind in kinds if kind.startswith("platform.")]
    assert platform == ["platform.logsSubscription", "platform.extension", "platform.start",
                        "platform.runtimeDone", "platform.end", "platform.report"]
    assert "function" in kinds
