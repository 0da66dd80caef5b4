"""Telemetry/Logs API subscription bodies: defaults, limits, destinations, and the legacy record mapping."""

from __future__ import annotations

import json

import pytest

from sandbox.errors import ApiError
from sandbox.telemetry import _legacy_records, _parse_subscription, iso_time


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
