"""Telemetry/Logs API subscription bodies: defaults, limits, destinations, and the legacy record mapping; and what a
subscription delivers of the events offered to it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sandbox.errors import ApiError
from sandbox.telemetry import Awake, Subscription, _legacy_records, _parse_subscription, iso_time


def _body(**overrides: object) -> bytes:
    body = {"schemaVersion": "2022-12-13", "types": ["platform", "function"],
            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/lambda"}}
    body.update(overrides)
    return json.dumps(body).encode()


def test_defaults_and_destination_mapping() -> None:
    options = _parse_subscription(_body(), legacy=False)
    assert options["types"] == frozenset({"platform", "function"})
    assert (options["max_items"], options["max_bytes"], options["timeout_ms"]) == (10000, 262144, 1000)
    destination = options["destination"]
    assert destination.url == "http://127.0.0.1:4243/lambda"  # sandbox.localdomain is loopback here
    assert destination.port == 4243


def test_tcp_destination() -> None:
    options = _parse_subscription(_body(destination={"protocol": "TCP", "port": 4244}), legacy=False)
    assert options["destination"].protocol == "TCP" and options["destination"].port == 4244


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        _body(schemaVersion="2020-08-15"),
        _body(types=[]),
        _body(types=["platform", "everything"]),
        _body(buffering={"maxItems": 999}),
        _body(buffering={"maxBytes": 2_000_000}),
        _body(buffering={"timeoutMs": 10}),
        _body(buffering={"timeoutMs": "100"}),
        _body(destination={"protocol": "HTTPS", "URI": "https://sandbox.localdomain:1/"}),
        _body(destination={"protocol": "HTTP", "URI": "http://example.com:8080/"}),
        _body(destination={"protocol": "HTTP", "URI": "http://sandbox.localdomain/"}),
        _body(destination={"protocol": "TCP"}),
        _body(destination="http://sandbox.localdomain:1/"),
    ],
)
def test_invalid_subscriptions_are_400(body: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        _parse_subscription(body, legacy=False)
    assert caught.value.status == 400 and caught.value.error_type == "ValidationError"


def test_logs_api_schemas() -> None:
    assert _parse_subscription(_body(schemaVersion="2021-03-18"), legacy=True)["schema"] == "2021-03-18"
    with pytest.raises(ApiError):
        _parse_subscription(_body(), legacy=True)


def test_legacy_records() -> None:
    report = {"requestId": "r", "status": "success", "metrics": {"durationMs": 1.0}}
    assert _legacy_records("platform.report", report, "2020-08-15") == [
        ("platform.end", {"requestId": "r"}), ("platform.report", {"requestId": "r", "metrics": {"durationMs": 1.0}})]
    assert _legacy_records("platform.runtimeDone", report, "2020-08-15") == []
    assert _legacy_records("platform.runtimeDone", report, "2021-03-18") == [
        ("platform.runtimeDone", {"requestId": "r", "status": "success"})]
    assert _legacy_records("platform.initStart", {}, "2021-03-18") == []
    assert _legacy_records("function", "a line", "2020-08-15") == [("function", "a line")]


def test_iso_time_has_milliseconds_and_z() -> None:
    assert iso_time(0.5) == "1970-01-01T00:00:00.500Z"


def test_events_offered_in_an_invoke_phase_arrive_in_order_encoded_after_it() -> None:
    """Offering an event stays cheap, since it runs on the loop that serves the Runtime API: events are encoded once
    the invoke phase is over (``settle``), or as they pile up past a bound. Either way every one arrives once, in
    order, with its own time."""
    lines = 2_500  # past the bound at which offered events are encoded as they come

    async def deliver() -> list[dict[str, Any]]:
        received = bytearray()
        arrived = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                received.extend(line)
                if received.count(b"\n") == lines + 2:
                    arrived.set()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        options = _parse_subscription(_body(buffering={"maxItems": 1000, "timeoutMs": 25},
                                            destination={"protocol": "TCP", "port": port}), legacy=False)
        awake = Awake()
        awake.resume()
        subscription = Subscription("observer", legacy=False, awake=awake, **options)
        subscription.offer("platform.start", {"requestId": "r-1"}, 1_700_000_000.0)
        for number in range(lines):
            subscription.offer("function", f"line {number}", 1_700_000_000.5)
        subscription.offer("platform.runtimeDone", {"requestId": "r-1", "status": "success"}, 1_700_000_001.0)
        subscription.settle()
        await asyncio.wait_for(arrived.wait(), 10)
        await subscription.close(1.0)
        server.close()
        await server.wait_closed()
        return [json.loads(line) for line in received.splitlines()]

    items = asyncio.run(deliver())
    assert [item["type"] for item in items] == ["platform.start", *["function"] * lines, "platform.runtimeDone"]
    assert [item["record"] for item in items[1:-1]] == [f"line {number}" for number in range(lines)]
    assert (items[0]["time"], items[1]["time"], items[-1]["time"]) == (
        iso_time(1_700_000_000.0), iso_time(1_700_000_000.5), iso_time(1_700_000_001.0))
