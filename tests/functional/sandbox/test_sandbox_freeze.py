"""Freeze between invocations, what each process costs per invocation, and callers that tail the log."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.timeout(90)


def _ticks_across_an_idle_gap(functions: Path, freeze: bool) -> int:
    with Sandbox(functions, "ticker.handler", freeze=freeze) as box:
        box.invoke({}).report()
        before = box.invoke({}).json()
        box.invoke({}).report()  # nothing else is running when the gap starts
        time.sleep(1.5)
        after = box.invoke({}).json()
    return int(after) - int(before)


def test_a_background_thread_stops_between_invocations(functions: Path) -> None:
    frozen = _ticks_across_an_idle_gap(functions, freeze=True)
    running = _ticks_across_an_idle_gap(functions, freeze=False)
    assert frozen < 100  # only while invocations ran: a few milliseconds
    assert running > 200  # 1.5 s of a 1 ms ticker, however loaded the machine


def test_an_extensions_work_after_next_waits_for_the_thaw(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(worker={"events": ["INVOKE"], "burn_after_next_ms": 30})
    with Sandbox(functions, "handlers.sleep", layers=[layer]) as box:
        first = box.invoke({"seconds": 0})
        first.report()
        time.sleep(1.0)
        second_started = time.time()
        second = box.invoke({"seconds": 0.5})  # a thaw long enough for the rest of the work
        cost = second.cost()
        recordings["worker"].wait_for(lambda rec: any(entry["requestId"] == first.request_id
                                                      for entry in rec.entries("burn_done")))
    done = next(entry for entry in recordings["worker"].entries("burn_done")
                if entry["requestId"] == first.request_id)
    assert done["t"] > second_started  # it could only finish once the environment thawed again
    assert cost is not None and cost.process("worker") is not None


def test_each_process_pays_its_own_cpu_on_the_cost_line(functions: Path, make_layer) -> None:
    layer, _ = make_layer(burner={"events": ["INVOKE"], "burn_ms": 10})
    with Sandbox(functions, "handlers.burn", layers=[layer]) as box:
        box.invoke({"ms": 1}).report()  # cold start
        costs = [box.invoke({"ms": 20}).cost() for _ in range(3)]
    for cost in costs:
        assert cost is not None
        runtime, burner = cost.process("runtime"), cost.process("burner")
        assert runtime is not None and burner is not None
        assert 19.5 <= runtime.cpu_ms < 60  # the handler's 20 ms and the runtime client's bit
        assert 9.5 <= burner.cpu_ms < 40
        assert runtime.peak_rss_mb > 5 and burner.peak_rss_mb > 5
        assert cost.billed_duration_ms >= 20  # a 20 ms burn in one thread takes at least that long
        assert cost.cpu_ms == pytest.approx(runtime.cpu_ms + burner.cpu_ms)


def test_telemetry_for_a_frozen_subscriber_arrives_after_the_thaw(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(observer={"telemetry": {"types": ["platform", "function"]}})
    observer = recordings["observer"]
    with Sandbox(functions, "handlers.chatty", layers=[layer]) as box:
        first = box.invoke({})
        first.report()
        time.sleep(0.5)  # far beyond the 25 ms buffering: only the freeze holds the report back
        held = [item for item in observer.telemetry() if item["type"] == "platform.report"]
        second_started = time.time()
        box.invoke({}).report()
    deliveries = observer.entries("telemetry")
    report_delivery = next(entry for entry in deliveries
                           if any(item["type"] == "platform.report" and item["record"]["requestId"]
                                  == first.request_id for item in entry["batch"]))
    assert held == []
    assert report_delivery["t"] > second_started
    lines = [item["record"] for item in observer.telemetry() if item["type"] == "function"]
    assert lines.count("to stdout") == 2 and lines.count("to stderr") == 2  # nothing lost, nothing twice


def test_a_caller_tailing_the_log_waits_for_the_extensions(functions: Path, make_layer) -> None:
    layer, recordings = make_layer(holder={"events": ["INVOKE"], "hold_ms": 400})
    with Sandbox(functions, "handlers.chatty", layers=[layer]) as box:
        box.invoke({}).report()
        plain = box.invoke({})
        plain_answered = time.time()
        plain.report()
        tailing = box.invoke({}, headers={"X-Amz-Log-Type": "Tail"})
        tail_answered = time.time()
    held = {entry["requestId"]: entry["t"] for entry in recordings["holder"].entries("invoke_done")}
    assert plain_answered < held[plain.request_id]  # early return: before the extension let go
    assert plain.log_tail is None
    assert tail_answered > held[tailing.request_id]  # no early return for a caller that tails the log
    assert tailing.latency_ms >= 400
    log = tailing.log_tail
    assert log is not None
    assert f"START RequestId: {tailing.request_id}" in log
    assert "to stdout" in log
    assert f"END RequestId: {tailing.request_id}" in log
    assert f"REPORT RequestId: {tailing.request_id}" in log.splitlines()[-1]


def test_the_cpu_limit_gives_lambdas_share_for_the_memory(functions: Path) -> None:
    with Sandbox(functions, "handlers.burn", memory=128, cpu_limit=True) as box:
        if any("no CPU limit" in notice for notice in box.notices):
            pytest.skip(box.notices[0])
        box.invoke({"ms": 1}).report()
        if any("no CPU limit" in notice for notice in box.notices):
            pytest.skip(str(box.notices))
        report = box.invoke({"ms": 30}).report()
    # 128 MB is 7% of a vCPU: 30 ms of CPU cannot take less than about 400 ms of wall time
    assert report.duration_ms > 200


def _cpu_ms(pid: int) -> float:
    """Time on a CPU of every thread of ``pid`` and of its descendants (schedstat, nanoseconds), in ms."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    family, grew = {pid}, True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    total = 0
    for member in family:
        for task in Path(f"/proc/{member}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError):
                total += int(task.read_text().split()[0])
    return total / 1e6


def test_every_cpu_millisecond_of_a_process_is_on_some_invocations_cost_line(functions: Path, make_layer) -> None:
    # Each of the worker's waiting threads is interrupted on the way into the freeze and resumes at the thaw: the
    # kernel's work for that is the owner's CPU too, and the cost lines must add up to all of it.
    layer, _ = make_layer(worker={"events": ["INVOKE"], "idle_threads": 60})
    with Sandbox(functions, "handlers.sleep", layers=[layer]) as box:
        box.invoke({"seconds": 0}).report()  # cold start
        pid = box.extension_pids["worker"]
        before = _cpu_ms(pid)  # frozen: nothing runs until the next invocation
        costs = [box.invoke({"seconds": 0.01}).cost() for _ in range(10)]
        after = _cpu_ms(pid)
    counted = 0.0
    for cost in costs:
        assert cost is not None and cost.frozen
        worker = cost.process("worker")
        assert worker is not None
        counted += worker.cpu_ms
    assert counted == pytest.approx(after - before, rel=0.1, abs=0.3)
