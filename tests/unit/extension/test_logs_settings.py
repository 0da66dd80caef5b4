"""Where logs go and whether they are on: OTEL_EXPORTER_OTLP_LOGS_*, AFTERGLOW_LOGS, OTEL_LOGS_EXPORTER."""

from __future__ import annotations

import pytest

from extension.signals import LOGS_DEFERRED, LOGS_OFF, LOGS_ON, read_logs_mode
from tests.unit.tracer.export.test_otlp_config import ALL
from tracer.export.otlp_config import GRPC, HTTP, read_otlp_settings
from tracer.export.stats import Stats

LOGS = (*(name for name in ALL if "_LOGS_" in name), "OTEL_LOGS_EXPORTER", "AFTERGLOW_LOGS")


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL + LOGS:
        monkeypatch.delenv(name, raising=False)


def test_logs_go_to_the_base_endpoint_with_their_own_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_otlp_settings("logs") is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-traces=1")
    logs, traces = read_otlp_settings("logs"), read_otlp_settings()
    assert logs is not None and traces is not None
    assert logs.endpoint == "http://collector:4318/v1/logs" and traces.endpoint == "http://collector:4318/v1/traces"
    assert logs.headers == () and traces.headers == (("x-traces", "1"),)  # signal-specific stays with its signal


def test_logs_specific_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "logs.example:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "api-key=secret")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "2500")
    logs = read_otlp_settings("logs")
    assert logs is not None
    # no scheme: TLS, unless OTEL_EXPORTER_OTLP_(LOGS_)INSECURE says otherwise
    assert (logs.protocol, logs.endpoint, logs.compression, logs.timeout_s) == (GRPC, "https://logs.example:4317",
                                                                                "gzip", 2.5)
    assert logs.headers == (("api-key", "secret"),) and "secret" not in repr(logs)
    traces = read_otlp_settings()
    assert traces is not None and traces.protocol == HTTP and traces.compression == "none"


@pytest.mark.parametrize("value, mode", [(None, LOGS_DEFERRED), ("true", LOGS_ON), ("FALSE", LOGS_OFF), ("0", LOGS_OFF),
                                         ("deferred", LOGS_DEFERRED), ("sometimes", LOGS_DEFERRED)])
def test_the_logs_switch(monkeypatch: pytest.MonkeyPatch, value: str | None, mode: str) -> None:
    if value is not None:
        monkeypatch.setenv("AFTERGLOW_LOGS", value)
    assert read_logs_mode() == mode


@pytest.mark.parametrize("value, mode", [(None, LOGS_ON), ("deferred", LOGS_DEFERRED), ("sometimes", LOGS_ON)])
def test_printing_waterfalls_waits_for_the_lines_by_default(
    monkeypatch: pytest.MonkeyPatch, value: str | None, mode: str
) -> None:
    if value is not None:
        monkeypatch.setenv("AFTERGLOW_LOGS", value)
    assert read_logs_mode(printing=True) == mode


@pytest.mark.parametrize("value", ["none", "NONE", " none "])
def test_the_standard_way_to_turn_logs_off_wins(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AFTERGLOW_LOGS", "true")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", value)
    assert read_logs_mode() == LOGS_OFF


@pytest.mark.parametrize("value", ["otlp", "OTLP"])
def test_otlp_is_the_logs_exporter_afterglow_has(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                 value: str) -> None:
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", value)
    assert read_logs_mode() == LOGS_DEFERRED
    assert not caplog.records


def test_an_unknown_logs_exporter_warns_once_and_means_otlp(monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "console")
    monkeypatch.setenv("AFTERGLOW_LOGS", "true")
    assert read_logs_mode() == LOGS_ON
    (record,) = caplog.records
    assert record.levelname == "WARNING" and "OTEL_LOGS_EXPORTER='console'" in record.getMessage()
    assert "otlp or none" in record.getMessage()


def test_the_self_report_line_counts_log_records_apart() -> None:
    spans, logs = Stats(), Stats()
    spans.add("received", 3)
    spans.add("exported", 3)
    logs.add("received", 5)
    logs.add("exported", 4)
    logs.drop("buffer_full", 1)
    assert spans.report_line() == ("spans received=3 exported=3 dropped=0 synthesized=0 malformed_frames=0"
                                   " poisoned_connections=0")
    assert spans.report_line(logs).endswith(
        "poisoned_connections=0 | logs received=5 exported=4 dropped=1 (buffer_full=1)")
