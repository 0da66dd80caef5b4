"""Fixtures for the sandbox's functional tests: layers holding the recording extension, and its records."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
FUNCTIONS = HERE / "functions"
EXTENSION_SCRIPT = HERE / "scripts" / "recording_extension.py"


class Recording:
    """What one recording extension wrote: one JSON object per line (see scripts/recording_extension.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        return [line for line in lines if kind is None or line["kind"] == kind]

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            entry["event"]
            for entry in self.entries("event")
            if event_type is None or entry["event"]["eventType"] == event_type
        ]

    def telemetry(self) -> list[dict[str, Any]]:
        """Every telemetry record received, in delivery order."""
        return [item for entry in self.entries("telemetry") for item in entry["batch"]]

    def wait_for(self, predicate: Callable[[Recording], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {self.path.name}: {self.entries()}")
            time.sleep(0.02)


class LayerFactory:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def __call__(self, **extensions: dict[str, Any]) -> tuple[Path, dict[str, Recording]]:
        """A layer directory with one recording extension per keyword (name=config)."""
        self.count += 1
        layer = self.root / f"layer{self.count}"
        (layer / "extensions").mkdir(parents=True)
        (layer / "ext-config").mkdir()
        recordings = {}
        for name, config in extensions.items():
            target = layer / "extensions" / name
            shutil.copy(EXTENSION_SCRIPT, target)
            os.chmod(target, os.stat(target).st_mode | stat.S_IXUSR)
            record = self.root / f"{name}-{self.count}.jsonl"
            (layer / "ext-config" / f"{name}.json").write_text(json.dumps({"record": str(record), **config}))
            recordings[name] = Recording(record)
        return layer, recordings


@pytest.fixture
def make_layer(tmp_path: Path) -> LayerFactory:
    return LayerFactory(tmp_path)


@pytest.fixture
def functions() -> Path:
    return FUNCTIONS
