"""A thread of the extension that fails: restarted (spans still arrive), or, when it keeps failing, one log line,
a clear pass-through and counted drops. Real sockets and threads; the failure is injected (a selector, a
condition, an accept that raises), since nothing here fails on its own."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from extension.background import BackgroundExporter
from extension.telemetry import TelemetryListener
from tests.functional.extension.fake_platform import new_span_id, new_trace_id, span_record
from tests.functional.extension.receiver_world import WAIT_S, ReceiverWorld, post_telemetry, wait_until
from tracer.export import supervise
from tracer.export.buffer import Batch, SpanBuffer
from tracer.export.exporter import PrintSink, SinkLoader
from tracer.export.flush import FLUSHER_FAILED, Flusher
from tracer.export.stats import Stats


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "BACKOFF_S", 0.01)


@pytest.fixture
def caught(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="afterglow.extension")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if text in record.getMessage()]


class Failing:
    """Wraps a callable: raises ``error`` for the next ``times`` calls (forever with ``times=None``)."""

    def __init__(self, call: Callable[..., Any], error: Exception, times: int | None = 1) -> None:
        self.call = call
        self.error = error
        self.times = times
        self.raised = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.times is None or self.raised < self.times:
            self.raised += 1
            raise self.error
        return self.call(*args, **kwargs)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ReceiverWorld]:
    running = ReceiverWorld(tmp_path)
    yield running
    running.close()


def test_a_selector_error_restarts_the_receiver_and_spans_still_arrive(
        world: ReceiverWorld, caught: pytest.LogCaptureFixture) -> None:
    selector = world.receiver._selector
    failing = Failing(selector.select, OSError("selector broke"))
    selector.select = failing  # type: ignore[method-assign]
    world.receiver.start()
    world.connect()
    world.send_spans(5)
    assert wait_until(lambda: world.buffer.held == 5)
    assert failing.raised == 1
    (failure,) = lines(caught, "the span receiver thread failed")
    assert failure.exc_info is not None and "selector broke" in str(failure.exc_info[1])  # with its traceback
    assert lines(caught, "restarting the span receiver thread (1 of 3)")
    assert not world.receiver.failed and not world.stats.dropped


def test_a_receiver_that_keeps_failing_says_so_once_and_counts_what_it_held(
        world: ReceiverWorld, caught: pytest.LogCaptureFixture) -> None:
    selector = world.receiver._selector
    real_select = selector.select
    world.receiver.start()
    world.connect()
    world.send_spans(3)
    world.receiver.sync()
    assert world.buffer.held == 3
    failing = Failing(real_select, OSError("selector broke for good"), times=None)
    selector.select = failing  # type: ignore[method-assign]
    world.receiver.sync()  # the loop wakes, and its next select fails
    world.send_spans(7)  # nobody reads these any more
    world.receiver._thread.join(WAIT_S)
    assert not world.receiver._thread.is_alive() and world.receiver.failed
    assert failing.raised == 4  # the first failure and three restarts
    assert len(lines(caught, "the span receiver thread failed")) == 4
    (gave_up,) = lines(caught, "stopped for good")
    assert "spans are no longer received" in gave_up.getMessage()
    assert world.stats.dropped == {"receiver_failed": 7}
    assert world.buffer.held == 3  # what arrived before stays, for export
    with pytest.raises(ConnectionRefusedError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as late:
        late.connect(world.path)  # a function connecting now fails at once and counts on its side


class FailingCondition(threading.Condition):
    def __init__(self, times: int | None) -> None:
        super().__init__()
        self.failing = Failing(super().wait, RuntimeError("condition broke"), times)

    def wait(self, timeout: float | None = None) -> bool:
        return bool(self.failing(timeout))


class FlushWorld:
    def __init__(self, failures: int | None) -> None:
        self.stats = Stats()
        self.buffer = SpanBuffer(10_000, self.stats)
        self.exported: list[Any] = []
        self.loader = SinkLoader(lambda: PrintSink(self.write))
        self.flusher = Flusher(self.buffer, self.loader, self.stats)
        self.condition = FailingCondition(failures)
        self.flusher._cond = self.condition

    def write(self, batches: Sequence[Batch]) -> None:
        self.exported.extend(span for batch in batches for span in batch.spans)

    def add(self, count: int) -> None:
        trace_id = new_trace_id()
        self.buffer.add({}, "r1", [span_record("s", trace_id, new_span_id()) for _ in range(count)], [100] * count)


@pytest.fixture
def flush_world(request: pytest.FixtureRequest) -> Iterator[FlushWorld]:
    running = FlushWorld(request.param)
    yield running
    running.flusher.stop()
    running.loader.close()


@pytest.mark.parametrize("flush_world", [1], indirect=True)
def test_a_flusher_thread_that_fails_once_is_restarted_and_exports(
        flush_world: FlushWorld, caught: pytest.LogCaptureFixture) -> None:
    flush_world.flusher.start()
    assert wait_until(lambda: flush_world.condition.failing.raised == 1)
    flush_world.add(4)
    assert flush_world.flusher.flush(WAIT_S).done.wait(WAIT_S)
    assert len(flush_world.exported) == 4 and flush_world.stats.exported == 4
    assert len(lines(caught, "the spans export thread failed")) == 1
    assert not flush_world.flusher.failed


@pytest.mark.parametrize("flush_world", [None], indirect=True)
def test_a_flusher_that_keeps_failing_drops_and_counts_instead_of_leaving_flushes_waiting(
        flush_world: FlushWorld, caught: pytest.LogCaptureFixture) -> None:
    flush_world.add(6)
    flush_world.flusher.start()
    assert flush_world.flusher._thread is not None
    flush_world.flusher._thread.join(WAIT_S)
    assert flush_world.flusher.failed
    (gave_up,) = lines(caught, "stopped for good")
    assert "spans are no longer exported" in gave_up.getMessage()
    assert flush_world.stats.dropped == {FLUSHER_FAILED: 6}
    flush_world.add(2)
    job = flush_world.flusher.flush(WAIT_S)
    assert job.done.is_set()  # nobody waits for a flush that no thread would run
    assert flush_world.stats.dropped == {FLUSHER_FAILED: 8} and flush_world.exported == []
    assert len(lines(caught, "stopped for good")) == 1


class BrokenEvent(threading.Event):
    def wait(self, timeout: float | None = None) -> bool:
        raise RuntimeError("wake broke")


def test_a_background_exporter_that_keeps_failing_hands_high_water_exports_to_the_flushers(
        caught: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    flush_world = FlushWorld(failures=0)
    flush_world.flusher.start()
    background = BackgroundExporter([flush_world.flusher], interval_s=3600)
    monkeypatch.setattr(background, "_wake", BrokenEvent())
    try:
        background.start()
        assert background._thread is not None
        background._thread.join(WAIT_S)
        assert background.failed
        (gave_up,) = lines(caught, "stopped for good")
        assert "only when a buffer passes its high-water mark" in gave_up.getMessage()
        flush_world.add(3)
        background.high_water()  # what a buffer calls past its mark
        assert wait_until(lambda: len(flush_world.exported) == 3)
        flush_world.add(2)  # a buffer calls at every add past its mark: one export at a time is handed over
        assert wait_until(lambda: background.high_water() or len(flush_world.exported) == 5)
        assert flush_world.stats.exported == 5 and not flush_world.stats.dropped
    finally:
        background.stop()
        flush_world.flusher.stop()
        flush_world.loader.close()


def test_a_telemetry_listener_that_fails_once_is_restarted_and_still_receives(
        caught: pytest.LogCaptureFixture) -> None:
    received: list[dict[str, Any]] = []
    listener = TelemetryListener(received.append)
    failing = Failing(listener._server.accept, RuntimeError("accept broke"))
    listener._server = type("Wrapped", (), {"accept": failing, "close": listener._server.close,
                                            "shutdown": listener._server.shutdown,
                                            "fileno": listener._server.fileno})()  # type: ignore[assignment]
    try:
        listener.start()
        assert post_telemetry(listener.port, [{"type": "platform.start", "record": {"requestId": "r1"}}]) == 200
        assert [event["type"] for event in received] == ["platform.start"]
        assert len(lines(caught, "the Telemetry API listener thread failed")) == 1
        assert not listener.failed
    finally:
        listener.stop()


def test_a_telemetry_listener_that_keeps_failing_says_so_once_and_tells_the_extension(
        caught: pytest.LogCaptureFixture) -> None:
    failures: list[bool] = []
    listener = TelemetryListener(lambda event: None, on_failure=lambda: failures.append(True))
    real = listener._server
    listener._server = type("Wrapped", (), {"accept": Failing(real.accept, RuntimeError("accept broke"), times=None),
                                            "close": real.close, "shutdown": real.shutdown,
                                            "fileno": real.fileno})()  # type: ignore
    waiting = socket.create_connection(("127.0.0.1", listener.port))  # a connection to accept: each attempt fails
    try:
        listener.start()
        listener._thread.join(WAIT_S)
        assert listener.failed and failures == [True]
        (gave_up,) = lines(caught, "stopped for good")
        assert "log lines and Lambda's platform reports are no longer received" in gave_up.getMessage()
        with pytest.raises(ConnectionRefusedError):
            post_telemetry(listener.port, [])  # closed: Lambda's deliveries fail at once
    finally:
        waiting.close()
        listener.stop()
