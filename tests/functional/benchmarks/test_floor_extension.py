"""The benchmark's floor extension, in each of its forms, runs in the sandbox as the cost measurement runs it: its
invocations succeed, the sandbox counts its CPU, and it leaves at SHUTDOWN."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.configs import BY_NAME, FLOOR, SHUTDOWN_FLOOR
from benchmarks.layers import LAYER_FILES
from sandbox import Sandbox

FUNCTION = Path(__file__).resolve().parents[3] / "benchmarks" / "function"

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("name", [FLOOR, SHUTDOWN_FLOOR, "floor-extension-waiting"])
def test_the_floor_extension_follows_the_lifecycle(name: str) -> None:
    config = BY_NAME[name]
    with Sandbox(str(FUNCTION), config.handler, layers=[str(LAYER_FILES / "floor-extension")], env=config.env,
                 function_name="bench") as box:
        for _ in range(3):
            invocation = box.invoke({"spans": 2, "log": True})
            report = invocation.report(timeout=10)
            assert report.status == "success" and invocation.function_error is None
            assert report.cost is not None and "floor" in {process.name for process in report.cost.processes}
        box.shutdown()
        (shutdown,) = box.wait_shutdowns(1)
        assert shutdown.extensions == ("floor",)
    assert not [line for line in box.logs if line.source == "extension"]  # nothing said: no traceback
