"""The arithmetic behind the benchmark's tables: percentiles, differences against bare, target verdicts."""

from __future__ import annotations

import pytest

from benchmarks.configs import BY_NAME
from benchmarks.measures import REQUIRED_FIELDS, build_rows, check_targets, percentile
from benchmarks.runner import ColdStarts, Plan, RunResults, Samples
from benchmarks.scenarios import BY_NAME as SCENARIOS


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert percentile(list(map(float, range(101))), 0.99) == pytest.approx(99.0)


def _results() -> RunResults:
    results = RunResults()
    results.samples[("bare", "10-spans")] = Samples(latency_ms=[1.0, 1.0, 1.0], post_response_ms=[0.0] * 3)
    results.samples[("afterglow", "10-spans")] = Samples(
        latency_ms=[1.1, 1.1, 1.1], post_response_ms=[2.0] * 3, spans_created=33, spans_exported=33,
        rss_mb=19.0, extension_rss_mb=27.0)
    results.samples[("otel-standard", "10-spans")] = Samples(latency_ms=[4.0, 4.0, 4.0], spans_created=33,
                                                             spans_exported=33)
    results.cold["bare"] = ColdStarts(init_ms=[40.0, 50.0, 60.0])
    results.cold["afterglow"] = ColdStarts(init_ms=[100.0, 110.0, 120.0])
    results.cold["otel-standard"] = ColdStarts(init_ms=[400.0])
    return results


def test_rows_carry_the_required_fields_and_differences_against_bare() -> None:
    configs = [BY_NAME["bare"], BY_NAME["afterglow"], BY_NAME["otel-standard"]]
    rows = build_rows(_results(), configs, [SCENARIOS["10-spans"]])
    assert [row["config"] for row in rows] == ["bare", "afterglow", "otel-standard"]
    assert list(rows[0])[: len(REQUIRED_FIELDS)] == list(REQUIRED_FIELDS)
    afterglow = rows[1]
    assert afterglow["added_p50_ms"] == pytest.approx(0.1)
    assert afterglow["init_ms"] == 110.0 and afterglow["added_init_ms"] == 60.0
    assert afterglow["post_response_p50_ms"] == 2.0
    assert rows[0]["added_p50_ms"] == 0.0


def test_targets_are_judged_from_the_rows_not_assumed() -> None:
    configs = [BY_NAME["bare"], BY_NAME["afterglow"], BY_NAME["otel-standard"]]
    rows = build_rows(_results(), configs, [SCENARIOS["10-spans"]])
    checks = {check.target: check for check in check_targets(rows, {"afterglow": (3, 3)})}
    assert checks["`afterglow`, 10-spans: added p50 at most 0.2 ms"].verdict == "met"
    ratio = checks["`afterglow`, 10-spans: added p50 at least 15x below otel-standard's"]
    assert ratio.verdict == "met" and ratio.measured.startswith("30.0x")
    init = next(check for target, check in checks.items() if target.startswith("`afterglow` (decorator) added init"))
    assert init.verdict == "missed" and init.measured == "60.0 ms"
    exported = next(check for target, check in checks.items() if target.startswith("every afterglow span"))
    assert exported.verdict == "met" and "36 spans" in exported.measured


def test_a_lost_span_is_a_missed_target() -> None:
    results = _results()
    results.samples[("afterglow", "10-spans")].spans_exported = 32
    rows = build_rows(results, [BY_NAME["bare"], BY_NAME["afterglow"]], [SCENARIOS["10-spans"]])
    exported = next(check for check in check_targets(rows, {}) if check.target.startswith("every afterglow span"))
    assert exported.verdict == "missed" and "32 of 33" in exported.measured


def test_costly_scenarios_get_fewer_batches_but_never_more_than_asked() -> None:
    plan = Plan(cold_starts=0, warmup=0, batches=80, batch_size=5)
    assert plan.batches_for(SCENARIOS["10-spans"]) == 80
    assert plan.batches_for(SCENARIOS["1000-spans"]) == 25
    assert Plan(0, 0, 1, 1).batches_for(SCENARIOS["1000-spans"]) == 1
