"""OTEL_EXPORTER_OTLP_* resolution, and header values kept out of anything printable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracer.export.otlp_config import GRPC, HTTP, check_endpoint, parse_headers, read_otlp_settings, report_problems

ALL = tuple(
    f"OTEL_EXPORTER_OTLP_{signal}{part}"
    for part in ("ENDPOINT", "PROTOCOL", "HEADERS", "COMPRESSION", "TIMEOUT", "INSECURE", "CERTIFICATE", "CLIENT_KEY",
                 "CLIENT_CERTIFICATE")
    for signal in ("", "TRACES_", "LOGS_")
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


# --- transport security ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "endpoint", "insecure", "traces_insecure", "expected"),
    [
        ("grpc", "collector:4317", None, None, "https://collector:4317"),  # no scheme: TLS by default
        ("grpc", "collector:4317", "true", None, "http://collector:4317"),
        ("grpc", "collector:4317", "true", "false", "https://collector:4317"),  # the signal's own flag wins
        ("http/protobuf", "collector:4318", None, None, "https://collector:4318/v1/traces"),
        ("http/protobuf", "collector:4318", "true", None, "http://collector:4318/v1/traces"),
        ("grpc", "http://collector:4317", "false", None, "http://collector:4317"),  # the scheme says it all
        ("grpc", "https://collector:4317", "true", None, "https://collector:4317"),
        ("http/protobuf", "https://collector:4318", "true", None, "https://collector:4318/v1/traces"),
    ],
)
def test_tls_unless_the_endpoint_says_http_or_insecure_is_set(
    monkeypatch: pytest.MonkeyPatch, protocol: str, endpoint: str, insecure: str | None,
    traces_insecure: str | None, expected: str,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    for name, value in (("OTEL_EXPORTER_OTLP_INSECURE", insecure), ("OTEL_EXPORTER_OTLP_TRACES_INSECURE",
                                                                    traces_insecure)):
        if value is not None:
            monkeypatch.setenv(name, value)
    settings = read_otlp_settings()
    assert settings is not None and not settings.problems
    assert settings.endpoint == expected
    assert settings.tls == expected.startswith("https://")


def test_certificate_files_per_signal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ca.pem", "logs-ca.pem", "key.pem", "cert.pem"):
        (tmp_path / name).write_text("PEM")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", str(tmp_path / "logs-ca.pem"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", str(tmp_path / "key.pem"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", str(tmp_path / "cert.pem"))
    traces, logs = read_otlp_settings(), read_otlp_settings("logs")
    assert traces is not None and logs is not None and not traces.problems and not logs.problems
    assert (traces.certificate, traces.client_key, traces.client_certificate) == (
        str(tmp_path / "ca.pem"), str(tmp_path / "key.pem"), str(tmp_path / "cert.pem"))
    assert (logs.certificate, logs.client_key, logs.client_certificate) == (str(tmp_path / "logs-ca.pem"), None, None)


# --- values that cannot work --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("not-a-url", "not a URL"),
        ("collector", "not a URL"),
        ("ftp://collector:21", "scheme is 'ftp'"),
        ("http://", "not a URL"),
        ("https://collector:99999", "port '99999'"),
        ("http://coll ector:4318", "not a URL"),
        ("collector:port", "port 'port'"),
    ],
)
def test_an_endpoint_that_is_not_a_url_is_a_problem(endpoint: str, why: str) -> None:
    reason = check_endpoint(endpoint)
    assert reason is not None and why in reason


@pytest.mark.parametrize("endpoint", ["http://collector:4318", "https://collector", "collector:4317",
                                      "https://user:pw@collector.example:443/otlp/", "http://[::1]:4318",
                                      "[::1]:4317", "HTTPS://Collector.Example/v1/traces?x=1"])
def test_urls_and_host_port_pass(endpoint: str) -> None:
    assert check_endpoint(endpoint) is None


def test_unusable_values_stop_their_signals_with_one_line_each(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "not-a-url")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", str(tmp_path / "missing-key.pem"))
    traces, logs = read_otlp_settings(), read_otlp_settings("logs")
    assert traces is not None and logs is not None
    assert len(traces.problems) == 3 and len(logs.problems) == 2  # endpoint (both), the files, the lone key
    caplog.clear()
    report_problems({"traces": traces, "logs": logs})
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 4
    (endpoint_line,) = [line for line in lines if "ENDPOINT" in line]
    assert endpoint_line.startswith("OTEL_EXPORTER_OTLP_ENDPOINT='not-a-url' cannot be used: it is not a URL")
    assert endpoint_line.endswith("not exporting traces or logs: they are dropped and counted")
    assert any("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE=" in line and "no such file" in line
               and "not exporting logs:" in line for line in lines)
    assert any("mutual TLS needs both" in line and "not exporting traces:" in line for line in lines)


def test_bad_header_items_are_named_by_position_never_by_value(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_headers("api-key=s3cret,token hunter2,x=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS") == (
        ("api-key", "s3cret"), ("x", "1"))
    assert "entry 2 of OTEL_EXPORTER_OTLP_TRACES_HEADERS" in caplog.text and "hunter2" not in caplog.text
