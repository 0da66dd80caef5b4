"""OTEL_EXPORTER_OTLP_* resolution, and header values kept out of anything printable."""

from __future__ import annotations

import pytest

from extension.otlp_config import GRPC, HTTP, parse_headers, read_otlp_settings

ALL = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL:
        monkeypatch.delenv(name, raising=False)


def test_no_endpoint_means_print_the_waterfall() -> None:
    assert read_otlp_settings() is None


def test_http_appends_the_signal_path_to_the_base_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    settings = read_otlp_settings()
    assert settings is not None and settings.protocol == HTTP
    assert settings.endpoint == "http://collector:4318/v1/traces"
    assert settings.timeout_s == 10.0 and settings.compression == "none"


def test_the_traces_endpoint_is_used_as_is_and_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example/custom")
    settings = read_otlp_settings()
    assert settings is not None and settings.endpoint == "https://traces.example/custom"


def test_grpc_keeps_the_endpoint_and_signal_specific_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1500")
    settings = read_otlp_settings()
    assert settings is not None
    assert (settings.protocol, settings.endpoint, settings.compression, settings.timeout_s) == (
        GRPC,
        "http://collector:4317",
        "gzip",
        1.5,
    )


def test_headers_are_parsed_and_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://user:hunter2@collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20s3cr3t-token,x-team=payments")
    settings = read_otlp_settings()
    assert settings is not None
    assert settings.headers == (("authorization", "Bearer s3cr3t-token"), ("x-team", "payments"))
    for text in (settings.describe(), repr(settings), str(settings)):
        assert "s3cr3t" not in text and "payments" not in text and "hunter2" not in text
        assert "authorization" in text


def test_malformed_header_items_are_skipped() -> None:
    assert parse_headers("good=1,,novalue,=x,bad name=2, spaced = ok ") == (("good", "1"), ("spaced", "ok"))


def test_bad_protocol_and_compression_fall_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")
    settings = read_otlp_settings()
    assert settings is not None and settings.protocol == HTTP and settings.compression == "none"
    assert "http/json" in caplog.text and "brotli" in caplog.text
