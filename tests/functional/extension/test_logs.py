"""The real extension process exporting function logs and reports, against the fake platform: when it
waits for an invocation's lines, late lines, outages, bounds, gRPC, opting out."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.functional.extension.fake_platform import ExtensionProcess, FakePlatform, FunctionProcess
from tests.helpers.otlp_receiver import OtlpGrpcReceiver, OtlpReceiver

Spawn = Callable[..., ExtensionProcess]
WHEN = "2026-11-26T15:00:00.000Z"


class Runtime:
    """A process standing in for the runtime's pid: it writes to its stdout only when told to, as a function prints
    (the extension reads its /proc/<pid>/io to know whether an invocation printed anything)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line)\n"
                                   "    sys.stdout.flush()\n"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.process.pid

    def print(self, text: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == text + "\n"  # written by the time this returns

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(5)


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    started = Runtime()
    try:
        yield started
    finally:
        started.stop()


def telemetry(kind: str, record: Any) -> dict[str, Any]:
    return {"time": WHEN, "type": kind, "record": record}


def started(platform: FakePlatform) -> str:
    """INVOKE, with the platform.start the Telemetry API sends alongside."""
    request_id = platform.invoke()
    platform.post_telemetry([telemetry("platform.start", {"requestId": request_id})])
    return request_id


def lines_and_done(platform: FakePlatform, request_id: str, *texts: str, status: str = "success") -> None:
    """What the Telemetry API delivers once the runtime asked for its next event: its lines, then runtimeDone."""
    platform.post_telemetry([telemetry("function", f"[INFO]\t{WHEN}\t{request_id}\t{text}") for text in texts]
                            + [telemetry("platform.runtimeDone", {"requestId": request_id, "status": status})])


def report(platform: FakePlatform, request_id: str) -> None:
    platform.post_telemetry([telemetry("platform.report", {"requestId": request_id, "status": "success",
                                                           "metrics": {"durationMs": 2.0, "billedDurationMs": 2,
                                                                       "memorySizeMB": 128, "maxMemoryUsedMB": 40}})])


def wait_until_logged(extension: ExtensionProcess, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in extension.stderr:
        assert time.monotonic() < deadline, f"the extension never said {text!r}"
        time.sleep(0.005)


def bodies(collector: OtlpReceiver | OtlpGrpcReceiver) -> list[Any]:
    return [record.body for record in collector.logs]


def test_an_invocation_that_printed_has_its_lines_in_its_own_flush_a_silent_one_does_not_wait(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver, runtime: Runtime) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_LOG_LEVEL": "DEBUG",
                                 # a slow test machine cannot run out of this budget
                                 "AFTERGLOW_LOGS": "true", "AFTERGLOW_FLUSH_BUDGET_MS": "5000"})
    function = FunctionProcess(extension.socket_path, pid=runtime.pid)
    cold = started(platform)
    function.invocation(cold, children=1)
    # a new process: whether it printed before the extension could look is unknown, so it waits for the lines
    wait_until_logged(extension, f"waiting for the log lines of {cold}")
    lines_and_done(platform, cold)
    platform.wait_for("next", 2, timeout=30)

    quiet = started(platform)
    quiet_spans = function.invocation(quiet, children=1)
    platform.wait_for("next", 3, timeout=30)
    lines_and_done(platform, quiet)  # runtimeDone, after the extension went on: nothing was waiting for it

    loud = started(platform)
    runtime.print("hello")  # the function prints...
    loud_spans = function.invocation(loud, children=1)
    wait_until_logged(extension, f"waiting for the log lines of {loud}")
    lines_and_done(platform, loud, "hello from loud")  # ...and the platform delivers the line after END
    platform.wait_for("next", 4, timeout=30)
    assert "hello from loud" in bodies(otlp_receiver)  # exported before the extension asked for the next event
    (record,) = [record for record in otlp_receiver.logs if record.body == "hello from loud"]
    assert record.trace_id == loud_spans[-1][0].hex() and record.span_id == loud_spans[-1][1].hex()
    assert record.attributes["faas.invocation_id"] == loud and record.resource["service.name"] == "checkout"

    report(platform, loud)
    platform.shutdown()
    assert extension.wait() == 0
    assert f"waiting for the log lines of {quiet}" not in extension.stderr
    assert sorted(bodies(otlp_receiver)) == sorted(["hello from loud", f"REPORT RequestId: {cold}",
                                                    f"REPORT RequestId: {quiet}",
                                                    f"REPORT RequestId: {loud}\tDuration: 2.00 ms\t"
                                                    "Billed Duration: 2 ms\tMemory Size: 128 MB\t"
                                                    "Max Memory Used: 40 MB"])
    quiet_report = next(record for record in otlp_receiver.logs if record.body == f"REPORT RequestId: {quiet}")
    assert quiet_report.trace_id == quiet_spans[-1][0].hex()  # runtimeDone alone, flushed at SHUTDOWN
    assert "logs received=4 exported=4 dropped=0" in extension.stderr


def test_a_failed_invocation_waits_for_the_error_the_runtime_prints_after_end(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver, runtime: Runtime) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_LOG_LEVEL": "DEBUG",
                                 "AFTERGLOW_LOGS": "true", "AFTERGLOW_FLUSH_BUDGET_MS": "5000"})
    function = FunctionProcess(extension.socket_path, pid=runtime.pid)
    cold = started(platform)
    function.invocation(cold, children=0)
    lines_and_done(platform, cold)
    platform.wait_for("next", 2, timeout=30)
    failed = started(platform)  # warm: the extension knows nothing was printed
    function.invocation(failed, children=0, status=2)  # the invocation span ended in error, nothing printed yet
    wait_until_logged(extension, f"waiting for the log lines of {failed}")
    platform.post_telemetry([telemetry("function", "[ERROR] ValueError: boom\rTraceback (most recent call last):"),
                             telemetry("platform.runtimeDone", {"requestId": failed, "status": "error"})])
    platform.wait_for("next", 3, timeout=30)
    (error,) = [record for record in otlp_receiver.logs if record.severity_text == "ERROR"]
    assert error.severity_text == "ERROR" and error.attributes["exception.type"] == "ValueError"
    assert error.attributes["faas.invocation_id"] == failed  # from platform.start: the line names no request
    platform.shutdown()
    assert extension.wait() == 0


def test_deferred_never_waits_and_late_lines_go_with_the_next_flush_once(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver, runtime: Runtime) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_LOG_LEVEL": "DEBUG",
                                 "AFTERGLOW_LOGS": "deferred", "AFTERGLOW_FLUSH_BUDGET_MS": "5000"})
    function = FunctionProcess(extension.socket_path, pid=runtime.pid)
    first = started(platform)
    runtime.print("printing")
    first_spans = function.invocation(first, children=1)
    platform.wait_for("next", 2, timeout=30)
    lines_and_done(platform, first, "late line")  # certainly after that flush
    assert otlp_receiver.logs == []
    second = started(platform)
    function.invocation(second, children=1)
    platform.wait_for("next", 3, timeout=30)
    (late,) = otlp_receiver.logs  # went with the next invocation's flush
    assert late.body == "late line" and late.trace_id == first_spans[-1][0].hex()
    platform.shutdown()
    assert extension.wait() == 0
    assert "waiting for the log lines" not in extension.stderr
    assert bodies(otlp_receiver).count("late line") == 1


def test_an_outage_keeps_log_records_until_the_collector_is_back_and_sends_each_once(
        platform: FakePlatform, spawn: Spawn) -> None:
    collector = OtlpReceiver().start()
    try:
        extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                                     "AFTERGLOW_FLUSH_BUDGET_MS": "100"})
        function = FunctionProcess(extension.socket_path)
        collector.stop()
        expected = []
        for count in range(2, 8):
            request_id = started(platform)
            function.invocation(request_id, children=1)
            texts = [f"{request_id} line {index}" for index in range(3)]
            lines_and_done(platform, request_id, *texts)
            expected += texts
            platform.wait_for("next", count, timeout=30)
        collector.start()
        platform.shutdown()
        assert extension.wait() == 0
        exported = [body for body in bodies(collector) if not str(body).startswith("REPORT")]
        assert sorted(exported) == sorted(expected)  # all of them, none twice
        assert "logs received=24 exported=24 dropped=0" in extension.stderr  # and a record per runtimeDone
    finally:
        collector.stop(hold_port=False)


def test_the_log_buffer_stays_bounded_dropping_the_oldest(platform: FakePlatform, spawn: Spawn) -> None:
    collector = OtlpReceiver().start()
    collector.stop()  # a port, and nobody on it
    try:
        extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                                     "AFTERGLOW_MAX_BUFFERED_LOGS": "5", "AFTERGLOW_FLUSH_BUDGET_MS": "50"})
        function = FunctionProcess(extension.socket_path)
        request_id = started(platform)
        function.invocation(request_id, children=0)
        lines_and_done(platform, request_id, *[f"line {index}" for index in range(20)])
        platform.wait_for("next", 2, timeout=30)
        collector.start()
        platform.shutdown(budget_s=30)
        assert extension.wait(timeout=60) == 0
        # 15 lines dropped as they came; at SHUTDOWN the runtimeDone record pushes out one more: the oldest
        assert bodies(collector) == [f"line {index}" for index in range(16, 20)] + [
            f"REPORT RequestId: {request_id}"], extension.stderr
        assert "logs received=21 exported=5 dropped=16 (buffer_full=16)" in extension.stderr
    finally:
        collector.stop(hold_port=False)


def test_grpc_log_export(platform: FakePlatform, spawn: Spawn, otlp_grpc_receiver: OtlpGrpcReceiver) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_grpc_receiver.endpoint,
                                 "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                                 "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "x-logs-key=l0gs"})
    function = FunctionProcess(extension.socket_path)
    request_id = started(platform)
    sent = function.invocation(request_id, children=1)
    lines_and_done(platform, request_id, "over grpc")
    platform.wait_for("next", 2, timeout=30)
    platform.shutdown()
    assert extension.wait() == 0
    (line,) = [record for record in otlp_grpc_receiver.logs if record.body == "over grpc"]
    assert line.trace_id == sent[-1][0].hex()
    logs_requests = [request for request in otlp_grpc_receiver.requests if "LogsService" in request.path]
    assert logs_requests and all(request.headers["x-logs-key"] == "l0gs" for request in logs_requests)
    assert all("x-logs-key" not in request.headers for request in otlp_grpc_receiver.requests
               if "TraceService" in request.path)
    assert "l0gs" not in extension.stderr + extension.stdout


def test_a_grpc_collector_without_the_logs_service_stops_the_logs_with_one_line(
        platform: FakePlatform, spawn: Spawn) -> None:
    with OtlpGrpcReceiver(services=("traces",)) as collector:
        extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                                     "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
        function = FunctionProcess(extension.socket_path)
        for count in range(1, 4):
            request_id = started(platform)
            function.invocation(request_id, children=1)
            lines_and_done(platform, request_id, f"line of invocation {count}")
            report(platform, request_id)
            platform.wait_for("next", count + 1, timeout=30)
        platform.shutdown(budget_s=30)  # what a flush did not send (grpc still loading) leaves here
        assert extension.wait(timeout=60) == 0
        collector.wait_for_spans(6, timeout=30)
    assert len(collector.spans) == 6 and not collector.logs
    lines = extension.stderr.splitlines()
    (said,) = [line for line in lines if "OTEL_LOGS_EXPORTER=none" in line]
    assert said.startswith("[afterglow] WARNING the collector has no logs endpoint") and "UNIMPLEMENTED" in said
    assert [line for line in lines if "received=" in line] == [lines[-1]]  # the self-report only at SHUTDOWN
    received = int(lines[-1].split("logs received=")[1].split()[0])
    assert received >= 3 and f"exported=0 dropped={received} (no_endpoint={received})" in lines[-1]


@pytest.mark.parametrize("env", [{"AFTERGLOW_LOGS": "false"}, {"OTEL_LOGS_EXPORTER": "none"},
                                 {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"}])
def test_without_logs_only_platform_events_are_subscribed(platform: FakePlatform, spawn: Spawn,
                                                          env: dict[str, str]) -> None:
    extension = spawn(platform, {"AFTERGLOW_LOG_LEVEL": "INFO", **env})
    (subscribe,) = platform.of_kind("subscribe")
    assert subscribe[2]["body"]["types"] == ["platform"]
    platform.shutdown()
    assert extension.wait() == 0
    assert "logs: off" in extension.stderr
    assert "logs received" not in extension.stderr


def test_without_the_telemetry_api_logs_are_off(platform_without_telemetry: FakePlatform, spawn: Spawn,
                                                otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform_without_telemetry, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
                                                   "AFTERGLOW_LOG_LEVEL": "INFO"})
    function = FunctionProcess(extension.socket_path)
    function.invocation(platform_without_telemetry.invoke(), children=1)
    platform_without_telemetry.wait_for("next", 2, timeout=30)
    platform_without_telemetry.shutdown()
    assert extension.wait() == 0
    assert "logs: off (no Telemetry API)" in extension.stderr
    assert len(otlp_receiver.spans) == 2
    assert not [request for request in otlp_receiver.requests if request.path.endswith("/v1/logs")]
    assert "logs received" not in extension.stderr
