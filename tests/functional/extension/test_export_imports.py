"""What the extension process has imported once it has exported spans and log records over OTLP/HTTP: its own
encoders and transport, never the OpenTelemetry SDK, the OTLP exporter packages or protobuf (their import used to
cost the first flush after a cold start about 190 ms), nor ``http.client`` with ``email`` and ``ssl`` (33 ms more)
for a plain-HTTP collector."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from tests.functional.extension.fake_platform import ExtensionProcess, FakePlatform, FunctionProcess
from tests.functional.extension.test_logs import lines_and_done, started
from tests.helpers.otlp_receiver import OtlpReceiver

Spawn = Callable[..., ExtensionProcess]
NEVER_IMPORTED = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.proto", "google.protobuf", "grpc",
                  "http.client", "email", "ssl")

# ``python -m extension``, writing down every module loaded as it exits (through os._exit, which skips atexit).
RECORDING = """
import os, runpy, sys
path, exit_now = sys.argv[1], os._exit
def record_and_exit(code):
    with open(path, "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
    exit_now(code)
os._exit = record_and_exit
sys.argv = sys.argv[:1]
runpy.run_module("extension", run_name="__main__", alter_sys=True)
"""


def test_exporting_spans_and_logs_over_http_loads_neither_the_sdk_protobuf_nor_http_client(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver, tmp_path: Path) -> None:
    modules_file = tmp_path / "modules.txt"
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_LOGS": "true",
                                 "AFTERGLOW_FLUSH_BUDGET_MS": "5000"},
                      command=[sys.executable, "-c", RECORDING, str(modules_file)])
    function = FunctionProcess(extension.socket_path)
    request_id = started(platform)
    function.invocation(request_id, children=2)
    lines_and_done(platform, request_id, "charged order 42")
    platform.wait_for("next", 2, timeout=30)
    platform.shutdown(budget_s=30)  # what the first flush did not send (the exporter still loading) leaves here
    assert extension.wait(timeout=60) == 0, extension.stderr
    otlp_receiver.wait_for_spans(3)
    otlp_receiver.wait_for_logs(where=lambda record: record.body == "charged order 42")

    modules = set(modules_file.read_text().split())
    exported = {"tracer.export.span_encoder", "tracer.export.log_encoder", "tracer.export.transport"}
    assert exported <= modules  # it did export
    loaded = sorted(name for name in modules if name.startswith(NEVER_IMPORTED))
    assert loaded == []
