"""Smoke test of ``python -m benchmarks``: a tiny run end to end, in a subprocess, as a user would start it.

Checks the shape of the JSON rows and that every span the afterglow configuration created reached the
collector. Timings are printed by the benchmark, never judged here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.measures import REQUIRED_FIELDS

PROJECT_ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, object]], Path]:
    output = tmp_path_factory.mktemp("bench")
    rows_path = output / "rows.json"
    command = [
        sys.executable, "-m", "benchmarks", "--configs", "afterglow", "--scenarios", "10-spans",
        "--cold-starts", "1", "--warmup", "1", "--batches", "1", "--batch-size", "2",
        "--output-dir", str(output), "--json", str(rows_path),
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=220, check=False)
    assert result.returncode == 0, f"benchmark failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return json.loads(rows_path.read_text()), output


def test_rows_have_the_required_fields_with_the_right_types(tiny_run: tuple[list[dict[str, object]], Path]) -> None:
    rows, _ = tiny_run
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


def test_every_afterglow_span_created_was_exported(tiny_run: tuple[list[dict[str, object]], Path]) -> None:
    rows, _ = tiny_run
    afterglow = next(row for row in rows if row["config"] == "afterglow")
    # 1 cold + 1 warm-up + 2 measured invocations, each: the invocation span and 10 children
    assert afterglow["spans_created"] == 4 * 11
    assert afterglow["spans_exported"] == afterglow["spans_created"]
    assert afterglow["duplicates"] == 0


def test_markdown_and_chart_are_written(tiny_run: tuple[list[dict[str, object]], Path]) -> None:
    _, output = tiny_run
    text = (output / "results.md").read_text()
    assert "| afterglow | 10-spans |" in text and "## Targets" in text
    assert "cores, Python" in text  # the machine is named with the results
    assert (output / "added_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((output / "results.json").read_text())[0]["config"] == "bare"
