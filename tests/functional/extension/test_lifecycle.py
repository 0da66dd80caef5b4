"""The real extension process against a fake Extensions/Telemetry API: registration, socket, flush, exit."""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.functional.extension.fake_platform import ExtensionProcess, FakePlatform, FunctionProcess
from tests.helpers.otlp_receiver import OtlpReceiver
from tracer import wire

Spawn = Callable[..., ExtensionProcess]


def test_registers_as_afterglow_binds_a_private_socket_and_subscribes_to_platform_telemetry(
        platform: FakePlatform, spawn: Spawn) -> None:
    extension = spawn(platform)
    (register,) = platform.of_kind("register")
    assert register[2]["name"] == "afterglow" and register[2]["events"] == ["INVOKE", "SHUTDOWN"]
    (subscribe,) = platform.of_kind("subscribe")
    body = subscribe[2]["body"]
    assert body["types"] == ["platform", "function"] and body["destination"]["protocol"] == "HTTP"  # function: the logs
    assert body["destination"]["URI"].startswith("http://sandbox.localdomain:")
    assert platform.of_kind("subscribe")[0][1] < platform.of_kind("next")[0][1]  # subscribed during init
    socket_stat = os.stat(extension.socket_path)
    assert stat.S_ISSOCK(socket_stat.st_mode) and stat.S_IMODE(socket_stat.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(extension.socket_path)).st_mode) == 0o700


def test_prints_each_trace_and_reports_at_shutdown_without_an_endpoint(platform: FakePlatform, spawn: Spawn) -> None:
    extension = spawn(platform)
    function = FunctionProcess(extension.socket_path)
    request_id = platform.invoke()
    function.invocation(request_id, children=2)
    platform.wait_for("next", 2)
    platform.shutdown()
    assert extension.wait() == 0
    assert "service checkout · 3 spans" in extension.stdout and "└─ child-1" in extension.stdout
    assert "spans received=3 exported=3 dropped=0" in extension.stderr
    assert not os.path.exists(extension.socket_path)


def test_exports_each_invocation_before_its_next_with_parents_and_resource(platform: FakePlatform, spawn: Spawn,
                                                                          otlp_receiver: OtlpReceiver) -> None:
    # The first flush also waits for the exporter to load (~0.1 s idle, over the default 250 ms budget on a loaded
    # machine): a budget a slow test machine cannot run out of, as the order is what this test checks.
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
                                 "AFTERGLOW_FLUSH_BUDGET_MS": "5000"})
    function = FunctionProcess(extension.socket_path, resource={"service.name": "checkout", "cloud.provider": "aws"})
    for count in range(1, 4):
        request_id = platform.invoke()
        sent = function.invocation(request_id)
        platform.wait_for("next", count + 1)
        received = otlp_receiver.wait_for_spans(10 * count, timeout=10)
        # END flush policy: this invocation's spans were accepted before the extension asked for the next event
        assert {span.span_id for span in received} >= {span[1].hex() for span in sent}
    root = otlp_receiver.by_name("handler")[0]
    children = [span for span in otlp_receiver.spans if span.trace_id == root.trace_id and span is not root]
    assert len(children) == 9 and {child.parent_span_id for child in children} == {root.span_id}
    assert root.resource == {"service.name": "checkout", "cloud.provider": "aws"} and root.kind == 2
    assert root.attributes["faas.trigger"] == "http"
    platform.shutdown()
    assert extension.wait() == 0


@pytest.mark.parametrize("version", [wire.VERSION, wire.PREVIOUS_VERSION], ids=["current", "previous"])
def test_a_function_with_the_current_or_the_previous_wire_version_gets_its_spans_through(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver, version: int) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint})
    function = FunctionProcess(extension.socket_path, version=version)  # an older tracer than the layer's
    sent: list[list[object]] = []
    for count in range(1, 4):
        sent += function.invocation(platform.invoke(), children=4)
        platform.wait_for("next", count + 1)
    received = otlp_receiver.wait_for_spans(15, timeout=10)
    assert sorted(span.span_id for span in received) == sorted(span[1].hex() for span in sent)  # type: ignore[union-attr]
    platform.shutdown()
    assert extension.wait() == 0
    told = [line for line in extension.stderr.splitlines() if "speaks wire version 1" in line]
    assert len(told) == (1 if version == wire.PREVIOUS_VERSION else 0)  # one line per process, not per invocation
    assert "malformed_frames=0 poisoned_connections=0" in extension.stderr


def test_a_stale_socket_from_an_earlier_environment_is_replaced(platform: FakePlatform, spawn: Spawn,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "afterglow" / "spans.sock"
    path.parent.mkdir(mode=0o755)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # bound, never listening: what a killed extension leaves behind
    extension = spawn(platform)
    function = FunctionProcess(extension.socket_path)
    function.invocation(platform.invoke(), children=1)
    platform.wait_for("next", 2)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_socket_path_it_cannot_use_is_reported_as_an_init_error(platform: FakePlatform, spawn: Spawn,
                                                                 tmp_path: Path) -> None:
    blocker = tmp_path / "afterglow"
    blocker.mkdir()
    (blocker / "spans.sock").write_text("not a socket")
    extension = spawn(platform, ready=False)
    assert extension.wait() == 1
    (error,) = platform.of_kind("init_error")
    assert error[2]["error_type"] == "Extension.SocketUnavailable"
    assert "not a socket" in error[2]["body"]["errorMessage"]
    assert (blocker / "spans.sock").read_text() == "not a socket"  # nothing of the user's was replaced


def test_without_telemetry_an_untraced_invocation_never_waits_for_its_deadline(
        platform_without_telemetry: FakePlatform, spawn: Spawn) -> None:
    platform = platform_without_telemetry
    spawn(platform)
    assert platform.of_kind("subscribe")  # it tried, and took the refusal in its stride
    platform.invoke(timeout_s=120)  # the function never connects: not traced
    platform.wait_for("next", 2, timeout=60)  # long before the invocation's 120 s deadline


def test_with_telemetry_runtime_done_ends_an_untraced_invocation(platform: FakePlatform, spawn: Spawn) -> None:
    spawn(platform)
    request_id = platform.invoke(timeout_s=120)
    time.sleep(0.2)
    assert len(platform.of_kind("next")) == 1  # waiting: with telemetry, runtimeDone is the sign
    assert platform.runtime_done(request_id) == 200
    platform.wait_for("next", 2, timeout=30)


def test_the_extension_exits_with_an_error_when_the_api_goes_away(platform: FakePlatform, spawn: Spawn) -> None:
    extension = spawn(platform)
    platform.stop()
    assert extension.wait(20) == 1
