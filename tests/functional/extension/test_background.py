"""The default flush, ``background``: the extension never holds the environment, exports while it runs, and
drains everything at SHUTDOWN."""

from __future__ import annotations

import os
from collections.abc import Callable

from tests.functional.extension.fake_platform import ExtensionProcess, FakePlatform, FunctionProcess
from tests.helpers.otlp_receiver import OtlpReceiver

Spawn = Callable[..., ExtensionProcess]


def _background(collector: OtlpReceiver, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "AFTERGLOW_FLUSH": "background", **extra}


def test_registers_for_shutdown_only_and_subscribes_to_nothing_without_logs(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    spawn(platform, _background(otlp_receiver, AFTERGLOW_LOGS="false"))
    (register,) = platform.of_kind("register")
    assert register[2]["events"] == ["SHUTDOWN"]  # Lambda never waits for it after a response
    assert platform.of_kind("subscribe") == []  # nothing to follow: not even a delivery a second


def test_spans_leave_while_the_environment_runs_without_any_invoke_event(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, _background(otlp_receiver, AFTERGLOW_FLUSH="background,100"))
    function = FunctionProcess(extension.socket_path)
    sent = [span for number in range(3) for span in function.invocation(f"request-{number}")]
    received = otlp_receiver.wait_for_spans(len(sent), timeout=20)
    assert sorted(span.span_id for span in received) == sorted(span[1].hex() for span in sent)
    assert len(platform.of_kind("next")) == 1  # still waiting on its first event/next: never woken, never held
    platform.shutdown()
    assert extension.wait() == 0
    assert f"spans received={len(sent)} exported={len(sent)} dropped=0" in extension.stderr


def test_what_is_left_leaves_at_shutdown_once(platform: FakePlatform, spawn: Spawn,
                                              otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, _background(otlp_receiver, AFTERGLOW_FLUSH="background,600000"))
    function = FunctionProcess(extension.socket_path)
    sent = [span for number in range(5) for span in function.invocation(f"request-{number}", children=4)]
    platform.shutdown()
    assert extension.wait() == 0
    ids = otlp_receiver.span_ids()
    assert sorted(ids) == sorted(span[1].hex() for span in sent)  # everything, each once
    assert len(otlp_receiver.requests) == 1  # the interval never came: one request, at SHUTDOWN


def test_a_burst_past_high_water_leaves_before_the_interval(platform: FakePlatform, spawn: Spawn,
                                                            otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, _background(otlp_receiver, AFTERGLOW_FLUSH="background,600000",
                                            AFTERGLOW_MAX_BUFFERED_SPANS="400"))
    function = FunctionProcess(extension.socket_path)
    sent = [span for number in range(12) for span in function.invocation(f"request-{number}")]
    otlp_receiver.wait_for_spans(100, timeout=20)  # a quarter of the bound: no need to wait for the interval
    platform.shutdown()
    assert extension.wait() == 0
    assert sorted(otlp_receiver.span_ids()) == sorted(span[1].hex() for span in sent)


SCHED_IDLE = 5  # the policy number /proc/<pid>/task/<tid>/stat shows (field 41)


def _threads(pid: int) -> dict[int, bool]:
    """The extension's threads: whether each is scheduled only when nothing else wants the CPU."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()  # after the name, which may hold spaces
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        threads[int(tid)] = int(fields[41 - 3]) == SCHED_IDLE
    return threads


def test_the_extension_yields_the_cpu_to_the_function_and_still_exports(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, _background(otlp_receiver, AFTERGLOW_FLUSH="background,100"))
    function = FunctionProcess(extension.socket_path)
    sent = [span for number in range(3) for span in function.invocation(f"request-{number}")]
    otlp_receiver.wait_for_spans(len(sent), timeout=20)  # exported: the export thread and the receiver have run
    threads = _threads(extension.process.pid)
    assert len(threads) > 2 and all(threads.values())  # every thread: the export competes with none of its own
    platform.shutdown()
    assert extension.wait() == 0
    assert f"spans received={len(sent)} exported={len(sent)} dropped=0" in extension.stderr


def test_exporting_at_the_end_of_each_invocation_keeps_every_thread_at_the_function_s_priority(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "AFTERGLOW_FLUSH": "end"})
    platform.invoke("request-0")
    function = FunctionProcess(extension.socket_path)
    sent = function.invocation("request-0")
    platform.runtime_done("request-0")
    otlp_receiver.wait_for_spans(len(sent), timeout=20)  # exported: every thread it needed has run
    threads = _threads(extension.process.pid)
    assert len(threads) > 2 and not any(threads.values())  # Lambda waits for this export: it must not be starved
