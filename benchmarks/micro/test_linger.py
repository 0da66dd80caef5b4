"""What the bounded linger costs: the 10-span invocation with the sender thread on and off, in paired rounds.

The linger wakes a background thread when a batch starts waiting for company; that thread then competes
with the handler for the GIL. Configurations alternate in shuffled order within each round, so the
machine's load drifts equally over all of them, and each invocation is timed on its own. Two shapes:

- back to back: invocations with nothing in between (the worst case for the thread: it wakes while the
  next invocation runs);
- with a 2 ms gap: as in Lambda, where the runtime's HTTP round trips to the Runtime API separate
  invocations (the thread's check after the window lands in the gap).

Run: ``.venv/bin/pytest benchmarks/micro/test_linger.py -s -p no:cacheprovider``; prints medians and means
with their ratios to the "no linger" configuration, and keeps them in ``benchmark.extra_info``.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace as trace_api

from benchmarks.micro.conftest import ATTRIBUTES, lambda_context

CONFIGS = {  # name: (linger, window in us)
    "no linger (batch waits for the next send or END)": (False, 1000),
    "linger, 1 ms window (default)": (True, 1000),
    "window 0 (every span its own write)": (True, 0),
}
BASELINE = "no linger (batch waits for the next send or END)"
ROUNDS = 150  # back to back; the 2 ms gap runs a third of these
PER_ROUND = 20


@pytest.fixture
def handler(lambda_environment: str) -> Iterator[Any]:
    from tracer import trace_handler

    tracer = trace_api.get_tracer("bench")

    @trace_handler
    def traced(event: Any, context: Any) -> dict[str, int]:
        for _ in range(9):
            with tracer.start_as_current_span("child", attributes=ATTRIBUTES):
                pass
        return {"statusCode": 200}

    traced({}, lambda_context("warm-up"))
    yield traced


def _measure(handler: Any, gap_s: float) -> dict[str, tuple[float, float]]:
    from tracer import _runtime

    handoff = _runtime.current().handoff  # type: ignore[union-attr]
    context = lambda_context()
    samples: dict[str, list[int]] = {name: [] for name in CONFIGS}
    clock = time.perf_counter_ns
    for _ in range(ROUNDS if not gap_s else ROUNDS // 3):
        order = list(CONFIGS)
        random.shuffle(order)
        for name in order:
            handoff.linger, window_us = CONFIGS[name]
            handoff.window_ns = window_us * 1000
            kept = samples[name]
            for _ in range(PER_ROUND):
                started = clock()
                handler({}, context)
                kept.append(clock() - started)
                if gap_s:
                    time.sleep(gap_s)
    # the median is the target's p50; the mean also counts the rare invocation the sender thread slowed down
    return {name: (statistics.median(times) / 1000, statistics.fmean(times) / 1000) for name, times in samples.items()}


def _report(benchmark: Any, title: str, results: dict[str, tuple[float, float]]) -> None:
    median_base, mean_base = results[BASELINE]
    print(f"\n{title} (per invocation, ratio to '{BASELINE}'):")
    for name, (median_us, mean_us) in sorted(results.items(), key=lambda item: item[1]):
        print(f"  {name:<52} median {median_us:7.1f} us x{median_us / median_base:5.2f}"
              f"   mean {mean_us:7.1f} us x{mean_us / mean_base:5.2f}")
        benchmark.extra_info[name] = f"median {median_us:.1f} us, mean {mean_us:.1f} us"


@pytest.mark.parametrize("gap_ms", [0, 2], ids=["back to back", "2 ms gap"])
@pytest.mark.benchmark(group="linger: 10-span invocation")
def test_linger_cost_paired(benchmark: Any, handler: Any, gap_ms: int) -> None:
    results = benchmark.pedantic(_measure, args=(handler, gap_ms / 1000), rounds=1, iterations=1)
    _report(benchmark, f"10-span invocation, {'back to back' if not gap_ms else f'{gap_ms} ms gap'}", results)
