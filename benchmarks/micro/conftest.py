"""Micro-benchmarks of the function side's hot path (``.venv/bin/pytest benchmarks/micro``).

Not part of the test suite: these measure, they never pass or fail on time. Each group is printed with
its medians and the ratio of each to the group's baseline, measured side by side in one run, because
this machine is noisy and only ratios travel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/26/[$LATEST]bench",
}
# Every benchmarked span carries five attributes, as the figures the targets were set against did.
ATTRIBUTES = {"app.order_id": "o-12345", "app.items": 3, "app.total": 42.5, "app.priority": True, "app.region": "eu"}


def _child_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="session")
def reader_socket() -> Iterator[str]:
    """A span reader in its own process (as the extension is), listening on a fresh socket path."""
    directory = tempfile.mkdtemp(prefix="ag-bench-", dir="/tmp")
    path = f"{directory}/spans.sock"
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("reader_process.py")), path],
        stdout=subprocess.PIPE,
        env=_child_environment(),
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield path
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def otlp_collector() -> Iterator[str]:
    """A loopback OTLP/HTTP collector in its own process (as a collector extension is); yields its endpoint."""
    code = (
        "import sys, time\n"
        "from tests.helpers.otlp_receiver import OtlpReceiver\n"
        "receiver = OtlpReceiver().start()\n"
        "print(receiver.endpoint, flush=True)\n"
        "while True:\n"
        "    time.sleep(1); receiver.clear()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=_child_environment(), text=True
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://")
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def lambda_environment(monkeypatch: pytest.MonkeyPatch, reader_socket: str) -> Iterator[str]:
    from tests.helpers.tracing import reset_tracing

    for key, value in LAMBDA_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AFTERGLOW_SOCKET", reader_socket)
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    reset_tracing()
    yield reader_socket
    reset_tracing()


def lambda_context(request_id: str = "bench-req") -> Any:
    from awslambdaric.lambda_context import LambdaContext

    return LambdaContext(
        request_id, None, None, int(time.time() * 1000) + 60_000, "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    session = getattr(terminalreporter.config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, list[Any]] = {}
    for bench in session.benchmarks:
        if bench.stats is not None and bench.stats.rounds:
            groups.setdefault(bench.group or "", []).append(bench)
    terminalreporter.write_sep("=", "medians side by side (ratio to the group's baseline)")
    for group, benches in groups.items():
        baseline = next((b for b in benches if "baseline" in b.name), min(benches, key=lambda b: b.stats.median))
        terminalreporter.write_line(f"{group}:")
        for bench in sorted(benches, key=lambda b: b.stats.median):
            median_us = bench.stats.median * 1e6
            ratio = bench.stats.median / baseline.stats.median if baseline.stats.median else float("nan")
            extra = "".join(f"  {key}={value}" for key, value in sorted(bench.extra_info.items()))
            terminalreporter.write_line(f"  {bench.name:<60} {median_us:>10.1f} us  x{ratio:>7.2f}{extra}")
