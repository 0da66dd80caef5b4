"""Fixtures for the extension's functional tests: a fake platform, the real extension process, a function."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functional.extension.fake_platform import ExtensionProcess, FakePlatform


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with FakePlatform(telemetry=True) as running:
        yield running


@pytest.fixture
def platform_without_telemetry() -> Iterator[FakePlatform]:
    with FakePlatform(telemetry=False) as running:
        yield running


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ExtensionProcess]]:
    """Start the real extension against a platform; every process started is killed at the end."""
    started: list[ExtensionProcess] = []

    def start(platform: FakePlatform, env: dict[str, str] | None = None, ready: bool = True,
              command: list[str] | None = None) -> ExtensionProcess:
        # These tests follow the extension through each invocation the platform drives: AFTERGLOW_FLUSH=end
        # unless a test says otherwise (test_background.py covers the default, background export).
        process = ExtensionProcess(platform, tmp_path, {"AFTERGLOW_FLUSH": "end", **(env or {})}, command)
        started.append(process)
        if ready:
            platform.wait_for("next", 1)
        return process

    yield start
    for process in started:
        process.stop()
