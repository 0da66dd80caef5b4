"""The coalescing window: how long a finished span waits for company before it is written on its own.

Two workloads, each with windows from 0 (every span its own write) to 10 ms:

- a burst: 10 spans per invocation ending microseconds apart (the common case: in-memory work);
- spaced: 5 spans ending ~0.3 ms apart (as after short local calls).

The invocation cost and the writes per invocation show the trade-off: a wider window saves writes, and a
span still waiting in the batch is lost if the process dies before the next send or the hand-off's sender
thread sends it (about a window after the previous send).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace as trace_api

from benchmarks.micro.conftest import ATTRIBUTES, lambda_context

WINDOWS_NS = (0, 100_000, 1_000_000, 10_000_000)


@pytest.fixture
def traced(lambda_environment: str) -> Iterator[tuple[Any, Any]]:
    from tracer import _runtime, trace_handler

    tracer = trace_api.get_tracer("bench")

    @trace_handler
    def handler(event: Any, context: Any) -> None:
        for _ in range(event["spans"]):
            with tracer.start_as_current_span("child", attributes=ATTRIBUTES):
                pause = event["pause_s"]
                if pause:
                    deadline = time.perf_counter() + pause
                    while time.perf_counter() < deadline:  # busy: sleep() granularity is coarser than 0.3 ms
                        pass

    handler({"spans": 1, "pause_s": 0}, lambda_context("warm-up"))
    runtime = _runtime.current()
    assert runtime is not None and runtime.handoff is not None
    yield handler, runtime.handoff


def _run(benchmark: Any, traced: tuple[Any, Any], window_ns: int, event: dict[str, Any]) -> None:
    handler, handoff = traced
    handoff.window_ns = window_ns
    context = lambda_context()
    before, calls = handoff.writes, [0]

    def invoke() -> None:
        handler(event, context)
        calls[0] += 1

    benchmark.pedantic(invoke, rounds=400, warmup_rounds=20)
    benchmark.extra_info["writes_per_invocation"] = round((handoff.writes - before) / calls[0], 2)


@pytest.mark.parametrize("window_ns", WINDOWS_NS)
@pytest.mark.benchmark(group="window: burst of 10 spans")
def test_burst(benchmark: Any, traced: tuple[Any, Any], window_ns: int) -> None:
    _run(benchmark, traced, window_ns, {"spans": 9, "pause_s": 0})


@pytest.mark.parametrize("window_ns", WINDOWS_NS)
@pytest.mark.benchmark(group="window: 5 spans 0.3 ms apart")
def test_spaced(benchmark: Any, traced: tuple[Any, Any], window_ns: int) -> None:
    _run(benchmark, traced, window_ns, {"spans": 4, "pause_s": 0.0003})
