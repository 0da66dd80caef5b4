"""Smoke test of ``python -m benchmarks``: a tiny run end to end, in a subprocess, as a user would start it.

Checks the shape of the JSON document (what the owner pays first, then the latency rows) and that every span
the afterglow configuration created reached the collector. Timings are printed by the benchmark, never judged
here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.measures import REQUIRED_FIELDS
from benchmarks.owner_costs import TARGET_CPU_MS

PROJECT_ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.timeout(240)


COST_INVOCATIONS = 6
COST_WARMUP = 1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    output = tmp_path_factory.mktemp("bench")
    document_path = output / "document.json"
    command = [
        sys.executable, "-m", "benchmarks", "--configs", "afterglow", "--scenarios", "10-spans",
        "--cold-starts", "1", "--warmup", "1", "--batches", "1", "--batch-size", "2",
        "--delays", "0", "50", "--cost-invocations", str(COST_INVOCATIONS), "--cost-warmup", str(COST_WARMUP),
        "--scaling-invocations", "1", "--output-dir", str(output), "--json", str(document_path),
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=220, check=False)
    assert result.returncode == 0, f"benchmark failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return json.loads(document_path.read_text()), output


def test_the_owner_cost_rows_hold_each_process_and_every_span(tiny_run: tuple[dict[str, Any], Path]) -> None:
    cost = tiny_run[0]["owner_cost"]
    steady = {(row["config"], row["collector_delay_ms"]): row for row in cost["steady"]}
    assert set(steady) == {("bare", 0.0), ("afterglow", 0.0), ("bare", 50.0), ("afterglow", 50.0)}
    for row in steady.values():
        assert row["failure"] is None and row["errors"] == 0, row
        assert row["n"] >= 1 and isinstance(row["cpu_env_mean_ms"], float) and row["cpu_env_mean_ms"] > 0
        assert isinstance(row["billed_mean_ms"], float) and row["billed_mean_ms"] >= 1
        assert 0 < row["busy_share"] <= 1.5
    bare, afterglow = steady[("bare", 0.0)], steady[("afterglow", 0.0)]
    assert bare["added_cpu_env_mean_ms"] == 0 and bare["cpu_extension_mean_ms"] is None
    assert set(afterglow["cpu_by_extension"]) == {"afterglow"}  # the runtime and the extension, each measured
    assert afterglow["cpu_extension_mean_ms"] > 0 and afterglow["extension_rss_mb"] > 0
    # cold start, first warm invocation, warm-up and measured ones: an invocation span and 10 children each
    made = (2 + COST_WARMUP + afterglow["n"]) * 11
    assert afterglow["spans_created"] == made
    assert afterglow["spans_received"] == made and afterglow["lost"] == 0 and afterglow["duplicates"] == 0
    assert afterglow["freshness_p50_ms"] is not None and afterglow["freshness_p50_ms"] >= 0
    assert afterglow["log_records"] > 0  # the function's line (and the platform's report) reached the collector
    scaling = {(row["config"], row["spans"]): row for row in cost["scaling"]}
    assert scaling[("afterglow", 1000)]["spans_received"] == scaling[("afterglow", 1000)]["spans_created"]
    assert scaling[("afterglow", 1000)]["us_per_span"] is not None
    targets = {check["target"]: check for check in cost["targets"]}
    cpu = next(check for target, check in targets.items() if target.startswith("environment CPU per invocation"))
    assert cpu["verdict"] == ("met" if afterglow["added_cpu_env_mean_ms"] <= TARGET_CPU_MS else "missed")


def test_rows_have_the_required_fields_with_the_right_types(tiny_run: tuple[dict[str, Any], Path]) -> None:
    rows = tiny_run[0]["latency"]["rows"]
    assert {(row["config"], row["scenario"]) for row in rows} == {("bare", "10-spans"), ("afterglow", "10-spans")}
    for row in rows:
        assert set(REQUIRED_FIELDS) <= set(row), row
        for name in ("added_p50_ms", "added_p99_ms", "post_response_p50_ms", "init_ms", "rss_mb"):
            assert isinstance(row[name], (int, float)), (name, row)
        assert isinstance(row["spans_created"], int) and isinstance(row["spans_exported"], int)
        assert row["errors"] == 0 and row["failure"] is None, row
    afterglow = next(row for row in rows if row["config"] == "afterglow")
    assert isinstance(afterglow["extension_rss_mb"], (int, float)) and afterglow["extension_rss_mb"] > 0
    bare = next(row for row in rows if row["config"] == "bare")
    assert bare["added_p50_ms"] == 0 and bare["extension_rss_mb"] is None


def test_every_afterglow_span_created_was_exported(tiny_run: tuple[dict[str, Any], Path]) -> None:
    rows = tiny_run[0]["latency"]["rows"]
    afterglow = next(row for row in rows if row["config"] == "afterglow")
    # 1 cold + 1 warm-up + 2 measured invocations, each: the invocation span and 10 children
    assert afterglow["spans_created"] == 4 * 11
    assert afterglow["spans_exported"] == afterglow["spans_created"]
    assert afterglow["duplicates"] == 0


def test_markdown_and_charts_are_written_owner_cost_first(tiny_run: tuple[dict[str, Any], Path]) -> None:
    _, output = tiny_run
    text = (output / "results.md").read_text()
    assert "| afterglow | 10-spans |" in text and "## Targets" in text
    assert text.index("## What the owner pays") < text.index("## Targets") < text.index("## What the caller waits")
    assert "cores, Python" in text  # the machine is named with the results
    for chart in ("owner_cost.png", "added_latency.png"):
        assert (output / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((output / "results.json").read_text())["latency"]["rows"][0]["config"] == "bare"
