"""Faults on the extension's side: dead functions, hostile input, strangers, outages, floods, shutdown."""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable

import pytest

from tests.functional.extension.fake_platform import (
    ExtensionProcess,
    FakePlatform,
    FunctionProcess,
    new_span_id,
    new_trace_id,
    span_record,
)
from tests.helpers.hidden_modules import python_m_without
from tests.helpers.otlp_receiver import OtlpReceiver
from tracer import wire

Spawn = Callable[..., ExtensionProcess]


def test_a_crash_mid_invocation_exports_the_invocation_span_marked_crash_and_its_children(
        platform_without_telemetry: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    platform = platform_without_telemetry
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint})
    function = FunctionProcess(extension.socket_path)
    request_id = platform.invoke(timeout_s=60)
    sent = function.invocation(request_id, children=3, end=False)
    function.close()  # the process died (os._exit, SIGKILL): its connection closes, no END
    platform.wait_for("next", 2, timeout=30)
    spans = otlp_receiver.wait_for_spans(4)
    (root,) = otlp_receiver.by_name("handler")
    assert root.span_id == sent[-1][1].hex() and root.status_code == 2
    assert root.attributes["faas.error"] == "crash" and root.attributes["faas.invocation_id"] == request_id
    assert sorted(span.name for span in spans if span is not root) == ["child-0", "child-1", "child-2"]


def test_a_timeout_exports_the_invocation_span_marked_timeout_at_shutdown(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint})
    function = FunctionProcess(extension.socket_path)
    request_id = platform.invoke(timeout_s=0.3)
    function.invocation(request_id, children=3, end=False)  # ...and the handler never returns
    platform.wait_for("next", 2, timeout=30)  # the extension gave up at the deadline
    platform.shutdown("timeout")  # what Lambda does next
    assert extension.wait() == 0
    spans = otlp_receiver.wait_for_spans(4)
    (root,) = otlp_receiver.by_name("handler")
    assert root.status_code == 2 and root.status_message.startswith("Task timed out after")
    assert root.attributes["faas.error"] == "timeout"
    assert len(spans) == 4 and "synthesized=1" in extension.stderr


def test_runtime_done_with_an_error_status_marks_the_crash(platform: FakePlatform, spawn: Spawn,
                                                          otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint})
    function = FunctionProcess(extension.socket_path)
    request_id = platform.invoke(timeout_s=60)
    function.invocation(request_id, children=2, end=False)
    # no pause: the extension reads what the function handed over before it decides on runtimeDone
    platform.runtime_done(request_id, "failure", "Runtime.ExitError")
    platform.wait_for("next", 2, timeout=30)
    otlp_receiver.wait_for_spans(3)
    (root,) = otlp_receiver.by_name("handler")
    assert root.attributes["faas.error"] == "crash" and "Runtime.ExitError" in root.status_message


def hostile_frames(rng: random.Random) -> list[bytes]:
    good_span = span_record("x", new_trace_id(), new_span_id())
    return [
        bytes(rng.getrandbits(8) for _ in range(200)),  # noise
        wire.frame(wire.SPANS, [good_span])[:-3],  # truncated, then the connection closes
        wire.HEADER.pack(wire.MAGIC, wire.VERSION, wire.SPANS, 0xFFFFFFFF),  # a 4 GiB length
        wire.HEADER.pack(wire.MAGIC, wire.VERSION + 1, wire.SPANS, 1) + b"\x90",  # a future tracer
        wire.HEADER.pack(wire.MAGIC, wire.VERSION, 99, 1) + b"\x90",  # unknown kind
        wire.HEADER.pack(wire.MAGIC, wire.VERSION, wire.SPANS, 5) + b"\xdd\xff\xff\xff\xff",  # array bomb
    ]


def test_hostile_input_on_the_live_socket_is_counted_and_the_next_invocation_exports_fine(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint})
    rng = random.Random(7)
    for payload in hostile_frames(rng):  # each on its own connection, as separate hostile processes would
        attacker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        attacker.connect(extension.socket_path)
        attacker.sendall(payload)
        attacker.close()
    # malformed payloads behind good headers: rejected one by one, the connection goes on
    survivor = FunctionProcess(extension.socket_path)
    for _ in range(20):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
        survivor.send(wire.HEADER.pack(wire.MAGIC, wire.VERSION, rng.choice([1, 2, 3, 4]), len(body)) + body)
    survivor.send(wire.frame(wire.SPANS, [["not", "a", "span"]]))
    request_id = platform.invoke()
    sent = survivor.invocation(request_id, children=9)
    platform.wait_for("next", 2, timeout=30)
    received = otlp_receiver.wait_for_spans(10)
    assert sorted(span.span_id for span in received) == sorted(span[1].hex() for span in sent)
    assert extension.process.poll() is None  # still running
    platform.shutdown()
    assert extension.wait() == 0
    report = [line for line in extension.stderr.splitlines() if "spans received=" in line][-1]
    malformed = int(report.split("malformed_frames=")[1].split()[0])
    poisoned = int(report.split("poisoned_connections=")[1].split()[0])
    assert poisoned >= 4 and malformed >= 15  # random bodies can happen to be valid empty SPANS frames
    assert "wire version mismatch" in extension.stderr


def connect_as(uid: int | None, gid: int | None, path: str) -> str:
    """Try to connect from a forked process that runs as ``uid``/``gid``; returns what it met."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        outcome = "crashed"
        try:
            os.close(read_end)
            if gid is not None:
                os.setgroups([])
                os.setgid(gid)
            if uid is not None:
                os.setuid(uid)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                outcome = "connected"
            except OSError as error:
                outcome = type(error).__name__
        finally:
            os.write(write_end, outcome.encode())
            os._exit(0)
    os.close(write_end)
    try:
        return os.read(read_end, 100).decode()
    finally:
        os.close(read_end)
        os.waitpid(child, 0)


def test_another_user_cannot_connect_to_the_socket(platform: FakePlatform, spawn: Spawn) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch a process to another user")
    import pwd

    nobody = pwd.getpwnam("nobody")
    extension = spawn(platform)
    assert connect_as(None, None, extension.socket_path) == "connected"  # the function's own user: fine
    assert connect_as(nobody.pw_uid, nobody.pw_gid, extension.socket_path) == "PermissionError"
    assert extension.process.poll() is None


def test_hundreds_of_invocations_back_to_back_lose_and_duplicate_nothing(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint})
    function = FunctionProcess(extension.socket_path)
    expected: set[str] = set()
    for count in range(1, 301):
        request_id = platform.invoke()
        expected.update(span[1].hex() for span in function.invocation(request_id, children=4))
        platform.wait_for("next", count + 1, timeout=30)
    platform.shutdown()
    assert extension.wait() == 0
    ids = otlp_receiver.span_ids()
    assert len(ids) == len(expected) == 1500 and set(ids) == expected
    assert "spans received=1500 exported=1500 dropped=0" in extension.stderr


def test_grpc_export(platform: FakePlatform, spawn: Spawn, otlp_grpc_receiver: object) -> None:
    from tests.helpers.otlp_receiver import OtlpGrpcReceiver

    assert isinstance(otlp_grpc_receiver, OtlpGrpcReceiver)
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_grpc_receiver.endpoint,
                                 "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                                 "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=grpc-s3cret",
                                 "AFTERGLOW_FLUSH_BUDGET_MS": "5000"})
    function = FunctionProcess(extension.socket_path)
    sent = function.invocation(platform.invoke())
    platform.wait_for("next", 2, timeout=30)
    # The spans leave with the first flush once grpc has loaded within its budget, else at SHUTDOWN: how long the
    # import takes on a loaded machine is not what this test checks (nor a pass/fail matter).
    platform.shutdown(budget_s=30)
    assert extension.wait(timeout=60) == 0
    received = otlp_grpc_receiver.wait_for_spans(10)
    assert sorted(span.span_id for span in received) == sorted(span[1].hex() for span in sent)
    assert "exported=10 dropped=0" in extension.stderr, extension.stderr
    assert otlp_grpc_receiver.requests[0].headers["x-api-key"] == "grpc-s3cret"
    assert "grpc-s3cret" not in extension.stderr + extension.stdout


def test_grpc_without_the_grpc_extra_says_which_extra_in_one_line_and_counts_the_spans(
        platform: FakePlatform, spawn: Spawn) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
                                 "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "AFTERGLOW_LOGS": "false"},
                      command=python_m_without(("grpc",), "extension"))
    function = FunctionProcess(extension.socket_path)
    for count in (2, 3):
        function.invocation(platform.invoke(), children=2)
        platform.wait_for("next", count, timeout=30)
    platform.shutdown()
    assert extension.wait() == 0  # the function's environment lives on: Lambda would fail it on an exit
    lines = extension.stderr.splitlines()
    hints = [line for line in lines if "pip install 'afterglow-lambda[grpc]'" in line]
    assert len(hints) == 1, lines
    assert hints[0].startswith("[afterglow] ERROR ") and "Traceback" not in extension.stderr
    assert "spans received=6 exported=0 dropped=6" in extension.stderr


def test_periodic_flush_exports_at_a_later_invocation_and_at_shutdown(platform: FakePlatform, spawn: Spawn,
                                                                     otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
                                 "AFTERGLOW_FLUSH": "periodic,1500"})
    function = FunctionProcess(extension.socket_path)
    first = function.invocation(platform.invoke(), children=1)
    platform.wait_for("next", 2)
    second = function.invocation(platform.invoke(), children=1)
    platform.wait_for("next", 3)
    assert otlp_receiver.spans == []  # not due yet: nothing sent at the end of these invocations
    time.sleep(1.6)
    third = function.invocation(platform.invoke(), children=1)  # due: the earlier ones go while this one runs
    platform.wait_for("next", 4)
    exported = set(otlp_receiver.span_ids())
    assert {span[1].hex() for span in first + second} <= exported
    platform.shutdown()
    assert extension.wait() == 0
    assert set(otlp_receiver.span_ids()) == {span[1].hex() for span in first + second + third}


def test_a_collector_outage_costs_at_most_the_budget_and_everything_arrives_after_recovery(
        platform: FakePlatform, spawn: Spawn) -> None:
    collector = OtlpReceiver().start()
    try:
        extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                                     "AFTERGLOW_FLUSH_BUDGET_MS": "100"})
        function = FunctionProcess(extension.socket_path)
        expected = {span[1].hex() for span in function.invocation(platform.invoke(), children=2)}
        platform.wait_for("next", 2)
        collector.stop()  # down
        for count in range(3, 13):  # each flush gives up within its budget: the next event/next comes
            expected.update(span[1].hex() for span in function.invocation(platform.invoke(), children=2))
            platform.wait_for("next", count, timeout=30)
        collector.fail(503)
        collector.start()  # back on the same port, but throttling
        for count in range(13, 16):
            expected.update(span[1].hex() for span in function.invocation(platform.invoke(), children=2))
            platform.wait_for("next", count, timeout=30)
        collector.recover()  # once the breaker's cooldown is over, a flush gets through; SHUTDOWN's does anyway
        for count in range(16, 18):
            expected.update(span[1].hex() for span in function.invocation(platform.invoke(), children=2))
            platform.wait_for("next", count, timeout=30)
        platform.shutdown(budget_s=30)
        assert extension.wait(timeout=60) == 0
        ids = collector.span_ids()
        assert set(ids) == expected and len(ids) == len(expected)  # all delivered, none twice
        refused = [request for request in collector.requests if not request.accepted]
        assert len(refused) < 3 * 3  # the breaker stopped trying on every invocation
    finally:
        collector.stop(hold_port=False)


def test_the_buffer_stays_bounded_during_an_outage_dropping_the_oldest(platform: FakePlatform, spawn: Spawn) -> None:
    collector = OtlpReceiver()
    collector.start()
    collector.stop()  # reserve a port, then leave it dead
    try:
        extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                                     "AFTERGLOW_MAX_BUFFERED_SPANS": "25", "AFTERGLOW_FLUSH_BUDGET_MS": "50"})
        function = FunctionProcess(extension.socket_path)
        batches = []
        for count in range(2, 12):
            batches.append([span[1].hex() for span in function.invocation(platform.invoke(), children=4)])
            platform.wait_for("next", count, timeout=30)
        collector.start()
        platform.shutdown()
        assert extension.wait() == 0
        exported = set(collector.span_ids())
        newest = {span_id for batch in batches[-5:] for span_id in batch}
        assert exported == newest  # 25 kept: the five newest invocations; the oldest 25 were dropped
        assert "buffer_full=25" in extension.stderr
    finally:
        collector.stop(hold_port=False)


def test_shutdown_exports_thousands_of_pending_spans_within_its_deadline(platform: FakePlatform, spawn: Spawn) -> None:
    collector = OtlpReceiver()
    collector.start()
    collector.stop()
    try:
        extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                                     "AFTERGLOW_FLUSH_BUDGET_MS": "20"})
        function = FunctionProcess(extension.socket_path)
        expected: set[str] = set()
        for count in range(2, 7):
            expected.update(span[1].hex() for span in function.invocation(platform.invoke(), children=999))
            platform.wait_for("next", count, timeout=30)
        collector.start()
        platform.shutdown(budget_s=30)  # the deadline Lambda gives is 2 s; a loaded test machine is no measure
        assert extension.wait(timeout=60) == 0
        ids = collector.span_ids()
        report = [line for line in extension.stderr.splitlines() if "spans received=" in line][-1]
        assert "spans received=5000" in report
        assert len(ids) == len(set(ids)) and set(ids) <= expected
        exported = int(report.split("exported=")[1].split()[0])
        dropped = int(report.split("dropped=")[1].split()[0])
        assert exported == len(ids) and exported + dropped == 5000  # what could not be sent is counted
        assert exported == 5000  # and on this loopback collector, everything made it
    finally:
        collector.stop(hold_port=False)
