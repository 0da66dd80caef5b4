"""The extension registers before it loads its parts: Lambda starts the function's runtime only once every extension
has registered, so whatever loads before the registration is on the function's cold start."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.functional.extension.fake_platform import ExtensionProcess, FakePlatform

Spawn = Callable[..., ExtensionProcess]
# ``python -m extension``, writing down the modules loaded at the moment its first request (the registration) leaves.
RECORDING = """
import runpy, sys
from tracer.export import http11
path, request = sys.argv[1], http11.Client.request
def record_first(self, *args, **kwargs):
    if http11.Client.request is record_first:
        http11.Client.request = request
        with open(path, "w") as out:
            out.write("\\n".join(sorted(sys.modules)))
    return request(self, *args, **kwargs)
http11.Client.request = record_first
sys.argv = sys.argv[:1]
runpy.run_module("extension", run_name="__main__", alter_sys=True)
"""
# What the extension needs only once it is registered: its loop and listeners, the span socket and ring reader, the
# wire format and msgpack, the assembler, the Telemetry API's JSON.
LOADED_AFTER = ("extension.compose", "extension.lifecycle", "extension.receiver", "extension.signals",
                "extension.policies", "extension.telemetry", "tracer.wire", "tracer.export.assembler", "msgpack",
                "json")


@pytest.mark.parametrize(("flush", "events"), [("background", ["SHUTDOWN"]), ("end", ["INVOKE", "SHUTDOWN"])])
def test_the_extension_registers_before_loading_its_parts_and_for_the_events_its_policy_follows(
        platform: FakePlatform, spawn: Spawn, tmp_path: Path, flush: str, events: list[str]) -> None:
    modules_file = tmp_path / "modules.txt"
    extension = spawn(platform, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "AFTERGLOW_FLUSH": flush},
                      command=[sys.executable, "-c", RECORDING, str(modules_file)])
    platform.wait_for("next", 1, timeout=30)  # registered, set up, and waiting for its first event
    (registration,) = platform.of_kind("register")
    assert registration[2]["events"] == events
    platform.shutdown(budget_s=5)
    assert extension.wait(timeout=30) == 0, extension.stderr

    loaded_before = set(modules_file.read_text().split())
    assert "extension.lambda_api" in loaded_before  # recorded as the registration left
    assert sorted(name for name in LOADED_AFTER if name in loaded_before) == []
