"""Fixtures for the function side over a real Unix socket."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.helpers.tracing import LAMBDA_ENV, SpanReader, reset_tracing, span_reader


@pytest.fixture
def socket_path() -> Iterator[str]:
    # Unix socket paths are limited to ~108 bytes: pytest's tmp_path is often longer.
    directory = tempfile.mkdtemp(prefix="ag-", dir="/tmp")
    try:
        yield f"{directory}/spans.sock"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def reader(socket_path: str) -> Iterator[SpanReader]:
    with span_reader(socket_path) as running:
        yield running


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, socket_path: str) -> Iterator[str]:
    """A Lambda-like environment with fresh tracing state; yields the socket path the tracer will use."""
    for key, value in LAMBDA_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AFTERGLOW_SOCKET", socket_path)
    for key in ("_X_AMZN_TRACE_ID", "OTEL_TRACES_SAMPLER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(key, raising=False)
    reset_tracing()
    try:
        yield socket_path
    finally:
        reset_tracing()
