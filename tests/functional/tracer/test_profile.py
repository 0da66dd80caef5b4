"""The invocation's CPU time on its span (tracer/_profile.py), read by a real socket reader as the extension would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.helpers.tracing import SpanReader, lambda_context
from tracer import _profile, trace_handler, wire

CPU = ("process.cpu.time.user", "process.cpu.time.system")


@pytest.fixture
def env(lambda_env: str, reader: SpanReader) -> SpanReader:
    return reader


def invocation_span(reader: SpanReader, request_id: str) -> list[Any]:
    reader.wait_for_end(request_id)
    return next(span for span in reader.spans() if (span[wire.ATTRIBUTES] or {}).get("faas.invocation_id")
                == request_id)


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_handler_that_burns_50_ms_of_cpu_shows_it(env: SpanReader) -> None:
    @trace_handler
    def handler(event: Any, context: Any) -> str:
        if event.get("burn"):
            burn(0.05)
        return "done"

    handler({}, lambda_context("cold"))  # the first invocation imports what tracing needs
    assert handler({}, lambda_context("idle")) == "done"
    assert handler({"burn": True}, lambda_context("busy")) == "done"
    idle, busy = invocation_span(env, "idle"), invocation_span(env, "busy")
    assert sum(busy[wire.ATTRIBUTES][name] for name in CPU) >= 0.045
    assert all(isinstance(span[wire.ATTRIBUTES][name], float) and span[wire.ATTRIBUTES][name] >= 0
               for span in (idle, busy) for name in CPU)
    assert sum(idle[wire.ATTRIBUTES][name] for name in CPU) < 0.045  # per invocation, not since the process began


def test_async_handlers_and_errors_are_measured_too(env: SpanReader) -> None:
    @trace_handler
    async def handler(event: Any, context: Any) -> None:
        burn(0.02)
        raise KeyError("missing")

    with pytest.raises(KeyError):
        asyncio.run(handler({}, lambda_context("async")))
    span = invocation_span(env, "async")
    assert span[wire.STATUS_CODE] == 2 and sum(span[wire.ATTRIBUTES][name] for name in CPU) >= 0.015


def test_switched_off_nothing_is_measured(env: SpanReader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERGLOW_PROFILE", "false")

    @trace_handler
    def handler(event: Any, context: Any) -> int:
        return 1

    handler({}, lambda_context("off"))
    assert not set(CPU) & set(invocation_span(env, "off")[wire.ATTRIBUTES])


@pytest.mark.tracer_may_fail
def test_a_broken_clock_never_reaches_the_handler(env: SpanReader, monkeypatch: pytest.MonkeyPatch,
                                                  swallowed: list[tuple[str, BaseException]]) -> None:
    @trace_handler
    def handler(event: Any, context: Any) -> str:
        return "untouched"

    handler({}, lambda_context("warm"))

    def broken(who: int) -> Any:
        raise OSError("getrusage failed")

    monkeypatch.setattr(_profile, "_getrusage", broken)
    assert handler({}, lambda_context("broken")) == "untouched"
    span = invocation_span(env, "broken")  # the span still ends and leaves, without the CPU time
    assert not set(CPU) & set(span[wire.ATTRIBUTES])
    assert [what for what, _ in swallowed] == ["reading the CPU time at the start of the invocation"]
