"""The COST line, its summary, and Lambda's CPU share per memory size."""

from __future__ import annotations

from sandbox.cgroups import CFS_PERIOD_US, cpu_quota_us
from sandbox.cost import cost_line, percentile, summary_lines
from sandbox.records import Cost, ProcessCost


def _cost(runtime_ms: float, extension_ms: float | None, billed: int) -> Cost:
    processes = [ProcessCost("runtime", runtime_ms, None, None, 41.2)]
    if extension_ms is not None:
        processes.append(ProcessCost("afterglow", extension_ms, extension_ms, 0.0, 27.0))
    return Cost(tuple(processes), billed, 0.52 if extension_ms is not None else 0.0, frozen=True)


def test_the_cost_line_names_every_process_and_the_bill() -> None:
    assert cost_line(_cost(0.614, 0.38, 3)) == (
        "COST runtime 0.61 ms CPU 41 MB | afterglow 0.38 ms CPU 27 MB | post-runtime 0.52 ms | billed 3 ms")
    assert cost_line(_cost(1.0, None, 2)) == "COST runtime 1.00 ms CPU 41 MB | billed 2 ms"


def test_the_summary_gives_mean_p50_and_p99_per_process() -> None:
    costs = [_cost(float(ms), 0.5, ms + 1) for ms in range(1, 101)]
    lines = summary_lines(costs)
    assert lines[0] == "COST SUMMARY over 100 invocation(s)"
    assert lines[1] == "  runtime CPU: mean 50.50 p50 50.00 p99 99.00 ms"
    assert lines[2] == "  afterglow CPU: mean 0.50 p50 0.50 p99 0.50 ms"
    assert lines[3] == "  environment CPU: mean 51.00 p50 50.50 p99 99.50 ms"
    assert lines[4] == "  billed: mean 51.50 p50 51.00 p99 100.00 ms"
    assert summary_lines([]) == []


def test_percentile_is_nearest_rank() -> None:
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 1.0) == 4.0


def test_cpu_share_follows_memory_as_on_lambda() -> None:
    assert cpu_quota_us(1769) == CFS_PERIOD_US  # one vCPU
    assert cpu_quota_us(128) == 7236  # about 7% of one
    assert cpu_quota_us(10240) == round(CFS_PERIOD_US * 10240 / 1769)  # about 5.8 vCPUs
