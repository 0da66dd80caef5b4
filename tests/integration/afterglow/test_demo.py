"""The README's main job (`make demo`): the example function, run by `afterglow run` with the built layer,
answers and shows its trace with its log line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "hello"


def test_the_example_runs_and_shows_its_trace(built_layer: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "afterglow", "run", "--task-root", str(EXAMPLE), "--handler", "app.handler",
         "--event", str(EXAMPLE / "event.json"), "--layer", str(built_layer)],
        capture_output=True, text=True, check=False, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert '{"statusCode": 200, "body": "hello, afterglow"}' in output
    waterfall = output[output.index("· service hello · 2 spans"):]
    assert "hello" in waterfall and "└─ compose-greeting" in waterfall and "greeting.name=afterglow" in waterfall
    assert "greeted afterglow" in waterfall[: waterfall.index("END RequestId")]  # the log line, under its trace
    assert "REPORT RequestId:" in output and "Init Duration:" in output
    assert "spans received=2 exported=2 dropped=0" in output
