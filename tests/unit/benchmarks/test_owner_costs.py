"""The arithmetic behind what the owner pays: differences against untraced, ratios, per-span cost, verdicts."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from benchmarks.configs import BY_NAME
from benchmarks.owner_costs import check_targets, reported_drops, scaling_rows, steady_rows
from benchmarks.steady import CostPlan, CostResults, CostRun, ScalingPhase, SteadyPhase

PLAN = CostPlan(rate_per_s=20.0, warmup=0, spans=10, steady=(SteadyPhase(0.0, 4, 10.0), SteadyPhase(200.0, 4, 10.0)),
                scaling=(ScalingPhase(1000, 2, 10.0),))
CONFIGS = [BY_NAME[name] for name in ("bare", "floor-extension", "afterglow", "otel-standard")]


def _invocation(cpu: dict[str, float], billed: int, latency: float = 2.0, runtime: float = 1.0) -> dict[str, Any]:
    return {"children": 10, "latency_ms": latency, "duration_ms": billed - 0.5, "billed_ms": billed,
            "runtime_ms": runtime, "post_runtime_ms": 0.1, "cpu_ms": cpu, "rss_mb": {name: 20.0 for name in cpu}}


def _run(config: str, delay: float, cpu: dict[str, float], billed: int, *, kind: str = "steady", spans: int = 10,
         received: int | None = None, report: str | None = None, latency: float = 2.0) -> CostRun:
    exports = BY_NAME[config].exports
    run = CostRun(config, kind, delay, exports, spans, 20.0, spans_created=44 if exports else 0)
    collector = None if received is None else {"distinct": received, "received": received, "rejected": 0,
                                               "freshness_ms": {"p50": 5.0, "p99": 40.0, "max": 50.0, "n": received},
                                               "log_records": 8}
    run.worker = {"measured": [_invocation(cpu, billed, latency) for _ in range(4)], "wall_s": 0.2,
                  "collector": collector, "extension_report": report,
                  "first_warm": {"post_runtime_ms": 3.0, "billed_ms": 5, "cpu_ms": cpu}, "cold": {"init_ms": 100.0}}
    return run


def _results(afterglow_cpu: float = 0.2, afterglow_billed: int = 2) -> CostResults:
    runs = []
    for delay in (0.0, 200.0):
        runs += [
            _run("bare", delay, {"runtime": 0.5}, 2),
            _run("floor-extension", delay, {"runtime": 0.5, "floor": 0.1}, 2),
            _run("afterglow", delay, {"runtime": 0.5 + afterglow_cpu / 2, "afterglow": afterglow_cpu / 2},
                 afterglow_billed, received=44, report="afterglow: spans received=44 exported=44 dropped=0"),
            _run("otel-standard", delay, {"runtime": 3.5}, 5 + int(delay), received=44, latency=2.0 + delay),
        ]
    runs += [
        _run("bare", 0.0, {"runtime": 1.0}, 2, kind="scaling", spans=1000),
        _run("afterglow", 0.0, {"runtime": 6.0, "afterglow": 5.01}, 12, kind="scaling", spans=1000, received=40,
             report="afterglow: spans received=44 exported=40 dropped=4 (buffer_full=4) | logs received=2 dropped=0"),
    ]
    return CostResults(runs=runs, plan=PLAN)


def test_steady_rows_are_differences_against_untraced_in_the_same_phase() -> None:
    rows = steady_rows(_results(), CONFIGS)
    by_key = {(row["config"], row["collector_delay_ms"]): row for row in rows}
    afterglow = by_key[("afterglow", 0.0)]
    assert afterglow["added_cpu_env_mean_ms"] == pytest.approx(0.2)
    assert afterglow["added_cpu_runtime_mean_ms"] == pytest.approx(0.1)
    assert afterglow["cpu_extension_mean_ms"] == pytest.approx(0.1)
    assert afterglow["added_billed_mean_ms"] == 0
    assert afterglow["busy_share"] == pytest.approx(4 * 2 / 1000 / 0.2)
    assert afterglow["cpu_ratio_to_reference"] == pytest.approx(15.0)  # otel-standard: +3.0 ms
    assert afterglow["lost"] == 0 and afterglow["duplicates"] == 0 and afterglow["silent_lost"] == 0
    assert by_key[("otel-standard", 0.0)]["cpu_extension_mean_ms"] is None  # no extension: not a zero
    assert by_key[("bare", 0.0)]["spans_received"] is None  # exports nothing: no delivery figures


def test_per_span_cost_and_reported_drops_at_scale() -> None:
    rows = {row["config"]: row for row in scaling_rows(_results(), CONFIGS)}
    afterglow = rows["afterglow"]
    assert afterglow["spans_per_invocation"] == 1001
    assert afterglow["us_per_span"] == pytest.approx((11.01 - 1.0) * 1000 / 1001, abs=0.01)
    assert afterglow["lost"] == 4 and afterglow["reported_dropped"] == 4 and afterglow["silent_lost"] == 0


def test_reported_drops_come_from_the_spans_part_of_the_self_report() -> None:
    assert reported_drops("afterglow: spans received=9 exported=5 dropped=4 (shutdown=4) | logs dropped=7") == 4
    assert reported_drops("afterglow: spans received=9 exported=9 | logs received=1 dropped=7") is None
    assert reported_drops(None) is None


def _verdicts(results: CostResults) -> dict[str, Any]:
    steady = steady_rows(results, CONFIGS)
    scaling = scaling_rows(results, CONFIGS)
    return {check.target: check for check in check_targets(steady, scaling, [], [0.0, 200.0])}


def test_targets_are_judged_from_the_figures() -> None:
    checks = _verdicts(_results())
    cpu = next(check for target, check in checks.items() if target.startswith("environment CPU per invocation"))
    assert cpu.verdict == "met" and cpu.measured.startswith("0.20 ms")
    ratio = next(check for target, check in checks.items() if "7x below" in target)
    assert ratio.verdict == "met" and ratio.measured.startswith("15.0x")
    billed = [check for target, check in checks.items() if target.startswith("billed duration")]
    assert [check.verdict for check in billed] == ["met", "met"]
    assert "fewer than 1,000" in billed[0].measured  # the count behind a mean is stated
    dropped = next(check for target, check in checks.items() if target.startswith("nothing dropped"))
    assert dropped.verdict == "missed" and "4 of 44 lost" in dropped.measured
    silent = next(check for target, check in checks.items() if target.startswith("zero silent losses"))
    assert silent.verdict == "met"
    independent = next(check for target, check in checks.items() if "independent of the collector" in target)
    assert independent.verdict == "met" and "otel-standard: 200.00 ms" in independent.measured


def test_costly_figures_miss_their_targets() -> None:
    checks = _verdicts(_results(afterglow_cpu=2.0, afterglow_billed=9))
    cpu = next(check for target, check in checks.items() if target.startswith("environment CPU per invocation"))
    ratio = next(check for target, check in checks.items() if "7x below" in target)
    billed = next(check for target, check in checks.items() if target.startswith("billed duration"))
    assert (cpu.verdict, ratio.verdict, billed.verdict) == ("missed", "missed", "missed")
    assert ratio.measured.startswith("1.5x")


def test_a_loss_the_extension_did_not_report_is_silent() -> None:
    results = _results()
    run = next(run for run in results.runs if run.config == "afterglow" and run.kind == "scaling")
    run.worker["extension_report"] = "afterglow: spans received=44 exported=44 dropped=0"
    silent = next(check for target, check in _verdicts(results).items() if target.startswith("zero silent losses"))
    assert silent.verdict == "missed" and "4 silent" in silent.measured


def test_the_distance_to_both_floors_is_reported_beside_the_cpu_target() -> None:
    from benchmarks.owner_report import _floor_lines

    results = _results(afterglow_cpu=0.4)
    results.runs.append(_run("floor-extension-shutdown", 0.0, {"runtime": 0.5, "floor": 0.05}, 2))
    configs = [*CONFIGS, BY_NAME["floor-extension-shutdown"]]
    rows = steady_rows(results, configs)
    (line,) = _floor_lines({(row["config"], row["collector_delay_ms"]): row for row in rows}, 0.0)
    assert "extension uses 0.20 ms" in line and "+0.40 ms beyond untraced" in line
    assert "woken per invocation) 0.10 ms, ours 2.0x it" in line
    assert "SHUTDOWN alone (never woken, as `afterglow`'s default export) 0.05 ms, ours 4.0x it" in line
    assert "(its environment beyond untraced +0.05 ms, ours +0.35 ms from it)" in line
    cpu = check_targets(rows, [], [], [0.0, 200.0])[0]
    assert cpu.measured.endswith("the floor extension: +0.10 ms, registered for SHUTDOWN alone: +0.05 ms")


def test_the_configurations_invocations_are_spread_over_the_period() -> None:
    from benchmarks.steady import start_offsets

    offsets = start_offsets(10, 20.0)
    assert offsets[0] == 0
    assert [later - earlier for earlier, later in itertools.pairwise(offsets)] == pytest.approx([0.005] * 9)
    assert max(offsets) < 1 / 20.0  # within one period: every configuration still runs at the rate
    assert start_offsets(3, 0.0) == [0.0, 0.0, 0.0]  # back to back: no period to spread over
