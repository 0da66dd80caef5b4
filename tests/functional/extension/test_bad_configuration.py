"""OTLP settings that cannot work, seen from the real extension process: one clear line at start per bad value,
no attempt to send (so no DNS lookup per invocation), every span dropped and counted in the self-report."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.functional.extension.fake_platform import ExtensionProcess, FakePlatform, FunctionProcess
from tests.helpers.otlp_receiver import OtlpReceiver

Spawn = Callable[..., ExtensionProcess]


def _run_two_invocations(platform: FakePlatform, extension: ExtensionProcess) -> None:
    function = FunctionProcess(extension.socket_path)
    for number in (1, 2):
        function.invocation(platform.invoke(timeout_s=60), children=3)
        platform.wait_for("next", number + 1, timeout=30)
    function.close()
    platform.shutdown()
    assert extension.wait() == 0


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "not-a-url"},
         "OTEL_EXPORTER_OTLP_ENDPOINT='not-a-url' cannot be used: it is not a URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.invalid:4318",
          "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"},
         "OTEL_EXPORTER_OTLP_CERTIFICATE='/nonexistent/ca.pem': no such file"),
    ],
)
def test_a_value_that_cannot_work_stops_the_export_with_one_line_and_counted_drops(
        platform_without_telemetry: FakePlatform, spawn: Spawn, env: dict[str, str], line: str) -> None:
    extension = spawn(platform_without_telemetry, env)
    _run_two_invocations(platform_without_telemetry, extension)
    stderr = extension.stderr
    assert stderr.count(line) == 1, stderr
    assert "not exporting traces or logs: they are dropped and counted" in stderr
    assert "export to the collector failed" not in stderr  # nothing was tried: no connection, no DNS lookup
    assert "spans received=8 exported=0 dropped=8 (not_exported=8)" in stderr


def test_a_bad_logs_endpoint_stops_only_the_logs(platform_without_telemetry: FakePlatform, spawn: Spawn,
                                                 otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform_without_telemetry, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
                                                   "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "collector:logs"})
    _run_two_invocations(platform_without_telemetry, extension)
    stderr = extension.stderr
    assert stderr.count("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT='collector:logs' cannot be used") == 1
    assert "not exporting logs:" in stderr and "spans received=8 exported=8 dropped=0" in stderr
    assert len(otlp_receiver.wait_for_spans(8, timeout=10)) == 8
