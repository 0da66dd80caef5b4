"""Timeouts, crashes, init stalls and SHUTDOWN: the environment resets as Lambda's does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.timeout(90)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_timeout_kills_the_runtime_and_the_next_invoke_is_a_cold_start(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(watcher={})
    with Sandbox(functions, "handlers.sleep", layers=[layer], timeout=1.0) as box:
        box.invoke({"seconds": 0}).report()
        runtime_pid = box.runtime_pid
        invocation = box.invoke({"seconds": 5})
        report = invocation.report()
        assert box.wait_shutdowns(1)[0].reason == "timeout"
        assert runtime_pid is not None and not _alive(runtime_pid)
        again = box.invoke({"seconds": 0})
        again_report = again.report()
        timeout_lines = [line.text for line in box.logs if "Task timed out" in line.text]
    assert invocation.function_error == "Unhandled"
    body = invocation.json()
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert report.status == "timeout"
    assert timeout_lines and timeout_lines[0].endswith(f"{invocation.request_id} Task timed out after 1.00 seconds")
    assert again.json() == "slept"
    assert again_report.init_duration_ms is not None
    shutdown_events = recordings["watcher"].events("SHUTDOWN")
    assert shutdown_events[0]["shutdownReason"] == "timeout"


def test_extension_overrunning_the_timeout_times_out_the_invoke(functions: Path, make_layer) -> None:
    layer, _recordings = make_layer(slow={"hold_ms": 3000})
    with Sandbox(functions, "handlers.empty", layers=[layer], timeout=1.0) as box:
        invocation = box.invoke({})
        report = invocation.report()
        shutdowns = box.wait_shutdowns(1)
    assert invocation.function_error is None  # the caller had its answer before the extension overran
    assert report.status == "timeout"
    assert shutdowns[0].reason == "timeout"


def test_an_extension_still_working_at_the_timeout_hears_shutdown_on_its_next_call(
    functions: Path, make_layer
) -> None:
    # The busy extension calls next while the sandbox is still delivering telemetry to it (a slow subscriber),
    # after the environment began to stop but before SHUTDOWN went out: it must get SHUTDOWN, not an error.
    slow_subscriber = {"types": ["platform"], "buffering": {"timeoutMs": 25}}
    layer, recordings = make_layer(busy={"hold_ms": 1150, "telemetry": slow_subscriber, "telemetry_delay_ms": 300})
    with Sandbox(functions, "handlers.sleep", layers=[layer], timeout=1.0) as box:
        box.invoke({"seconds": 5}).report()
        box.wait_shutdowns(1)
    shutdown_events = recordings["busy"].events("SHUTDOWN")
    assert [event["shutdownReason"] for event in shutdown_events] == ["timeout"]


def test_runtime_crash_fails_the_invoke_and_resets(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(watcher={})
    with Sandbox(functions, "handlers.crash", layers=[layer]) as box:
        invocation = box.invoke({})
        report = invocation.report()
        shutdowns = box.wait_shutdowns(1)
        texts = [line.text for line in box.logs if line.source == "function"]
    assert invocation.function_error == "Unhandled"
    body = invocation.json()
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 7" in body["errorMessage"]
    assert report.status == "error" and report.error_type == "Runtime.ExitError"
    assert "about to exit" in texts
    assert shutdowns[0].reason == "failure"
    assert recordings["watcher"].events("SHUTDOWN")[0]["shutdownReason"] == "failure"


def test_extension_crash_during_invoke_resets_the_environment(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(crasher={"crash_on": "invoke"}, survivor={})
    with Sandbox(functions, "handlers.empty", layers=[layer]) as box:
        invocation = box.invoke({})
        report = invocation.report()
        shutdowns = box.wait_shutdowns(1)
        next_one = box.invoke({})
        next_report = next_one.report()
    assert report.status == "error" and report.error_type == "Extension.Crash"
    assert shutdowns[0].reason == "failure"
    assert shutdowns[0].extensions == ("survivor",)  # the crashed one gets nothing
    assert recordings["survivor"].events("SHUTDOWN")[0]["shutdownReason"] == "failure"
    assert next_report.init_duration_ms is not None  # a new environment


def test_extension_crash_while_idle_resets_before_the_next_invoke(functions: Path, make_layer) -> None:
    layer, _recordings = make_layer(victim={}, survivor={})
    with Sandbox(functions, "handlers.empty", layers=[layer]) as box:
        box.invoke({}).report()
        os.kill(box.extension_pids["victim"], 9)
        shutdowns = box.wait_shutdowns(1)
        assert shutdowns[0].reason == "failure"
        assert box.invoke({}).report().init_duration_ms is not None


def test_extension_that_never_registers_fails_init_with_a_clear_error(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(silent={"register": False})
    with Sandbox(functions, "handlers.empty", layers=[layer], timeout=0.5, init_timeout=1.0) as box:
        invocation = box.invoke({})
        report = invocation.report()
        reports = [event["record"] for event in box.events if event["type"] == "platform.initReport"]
    body = invocation.json()
    assert invocation.function_error == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "never registered: silent" in body["errorMessage"]
    assert report.status == "timeout"
    assert [(record["phase"], record["status"]) for record in reports] == [("init", "timeout"), ("invoke", "timeout")]
    assert recordings["silent"].entries("waiting_forever")


def test_extension_init_error_fails_init(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(picky={"init_error": "Fatal.ConnectFailed"})
    with Sandbox(functions, "handlers.empty", layers=[layer]) as box:
        invocation = box.invoke({})
    body = invocation.json()
    assert body["errorType"] == "Extension.InitError"
    assert "Fatal.ConnectFailed" in body["errorMessage"]
    assert recordings["picky"].entries("init_error")[0]["status"] == 202


def test_shutdown_order_reason_and_deadline(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(
        polite={"shutdown_print": "polite says goodbye", "pid_file": "runtime.pid"},
        watcher={"events": ["INVOKE"]},  # not subscribed to SHUTDOWN: killed at once
    )
    with Sandbox(functions, "handlers.remember_pid", layers=[layer]) as box:
        runtime_pid = box.invoke({}).json()
        watcher_pid = box.extension_pids["watcher"]
        started = time.time()
    shutdown = box.shutdowns[-1]
    assert shutdown.reason == "spindown"
    assert shutdown.extensions == ("polite",)
    assert started * 1000 < shutdown.deadline_ms <= started * 1000 + 2500
    polite = recordings["polite"].entries("shutdown")[0]
    assert polite["reason"] == "spindown"
    assert polite["deadlineMs"] == shutdown.deadline_ms
    assert polite["runtime_alive"] is False  # the runtime is gone before extensions hear SHUTDOWN
    assert not _alive(runtime_pid) and not _alive(watcher_pid)
    assert not recordings["watcher"].events("SHUTDOWN")
    assert any(line.source == "extension" and line.text == "polite says goodbye" for line in box.logs)


def test_extension_overrunning_its_shutdown_deadline_is_killed(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(stubborn={"shutdown_ms": 10000})
    with Sandbox(functions, "handlers.empty", layers=[layer]) as box:
        box.invoke({}).report()
        pid = box.extension_pids["stubborn"]
    assert recordings["stubborn"].entries("shutdown")
    # gone without reaching the line it writes after its 10 s: SIGKILLed at the deadline, not left to finish
    assert not recordings["stubborn"].entries("exiting")
    assert not _alive(pid)


def test_a_file_in_extensions_that_cannot_run_fails_init(functions: Path, tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    (layer / "extensions").mkdir(parents=True)
    (layer / "extensions" / "README").write_text("not a program\n")  # Lambda runs every file in there
    with Sandbox(functions, "handlers.empty", layers=[layer]) as box:
        invocation = box.invoke({})
    body = invocation.json()
    assert invocation.function_error == "Unhandled"
    assert body["errorType"] == "Extension.LaunchError"
    assert "README" in body["errorMessage"]


def test_forced_shutdown_cuts_a_running_invoke_short(functions: Path) -> None:
    box = Sandbox(functions, "handlers.sleep", timeout=30)
    try:
        future = box.invoke_async({"seconds": 20})
        deadline = time.monotonic() + 20
        while box.runtime_pid is None or not [e for e in box.events if e["type"] == "platform.start"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        box.shutdown(force=True)
    invocation = future.result(timeout=10)  # the handler would sleep 20 s more: it was cut short
    assert invocation.function_error == "Unhandled"
    assert box.shutdowns[-1].reason == "spindown"
