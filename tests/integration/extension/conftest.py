"""A development layer (the real launcher plus links to this tree's packages) and a traced test function."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

FUNCTION = '''
import os
import time

from opentelemetry import trace

from tracer import trace_handler

tracer = trace.get_tracer("faults")


@trace_handler
def handler(event, context):
    for index in range(event.get("children", 3)):
        with tracer.start_as_current_span(f"step-{index}") as span:
            span.set_attribute("step", index)
    mode = event.get("mode")
    if mode in ("timeout", "crash"):
        time.sleep(0.01)
        with tracer.start_as_current_span("in-progress"):  # the work the function dies in the middle of
            if mode == "timeout":
                time.sleep(30)
            os._exit(3)
    if mode == "raise":
        raise ValueError("boom")
    return {"ok": True}
'''


@pytest.fixture(scope="session")
def dev_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``extensions/afterglow`` as shipped, ``python/`` linking this tree's packages (deps from the venv)."""
    root = tmp_path_factory.mktemp("layer")
    (root / "extensions").mkdir()
    launcher = root / "extensions" / "afterglow"
    shutil.copyfile(REPO / "afterglow" / "layer_files" / "extensions" / "afterglow", launcher)
    launcher.chmod(0o755)
    (root / "python").mkdir()
    for package in ("tracer", "extension", "instrumentation"):
        (root / "python" / package).symlink_to(REPO / package)
    return root


def function_root(tmp_path: Path, source: str) -> Path:
    """A function's code directory, ``app.py`` holding ``source``."""
    root = tmp_path / "task"
    root.mkdir()
    (root / "app.py").write_text(source)
    return root


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    return function_root(tmp_path, FUNCTION)
