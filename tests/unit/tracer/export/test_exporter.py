"""OTLP export through the real HTTP transport to a real loopback collector: retries, Retry-After, breaker, budget.

Durations here are only lower bounds (a wait that must have happened) or generous upper bounds far from the
expected value; nothing depends on this machine being fast.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from extension.function_logs import LogEntry
from tests.helpers.otlp_receiver import OtlpGrpcReceiver, OtlpReceiver
from tracer.export.breaker import CircuitBreaker
from tracer.export.buffer import Batch, SpanBuffer
from tracer.export.exporter import ExportResult, OtlpSink, SinkLoader, build_otlp_log_sink, build_otlp_sink
from tracer.export.flush import Flusher, FlushJob
from tracer.export.otlp_config import GRPC, HTTP, OtlpSettings
from tracer.export.stats import Stats


def batch(count: int = 3) -> Batch:
    trace_id = os.urandom(16)
    spans = [
        [trace_id, os.urandom(8), None, f"s{i}", 0, 1, 2, {"i": i}, None, None, 0, None, "t", None, 1, None, [0, 0, 0]]
        for i in range(count)
    ]
    return Batch({"service.name": "svc"}, "r1", spans, [100] * count)


def sink_for(
    receiver_url: str,
    breaker: CircuitBreaker | None = None,
    timeout_s: float = 5.0,
    headers: tuple[tuple[str, str], ...] = (),
) -> OtlpSink:
    sink = build_otlp_sink(OtlpSettings(HTTP, receiver_url, headers, "none", timeout_s))
    if breaker is not None:
        sink.breaker = breaker
    return sink


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def soon(seconds: float) -> float:
    return time.monotonic() + seconds


def test_a_chunk_arrives_once_with_the_configured_headers(receiver: OtlpReceiver) -> None:
    sink = sink_for(receiver.traces_url, headers=(("authorization", "Bearer t0ken"),))
    outcome = sink.export([batch(3)], soon(1), soon(5))
    assert outcome.result is ExportResult.SUCCESS and outcome.attempts == 1
    assert [span.name for span in receiver.spans] == ["s0", "s1", "s2"]
    assert receiver.requests[0].headers["authorization"] == "Bearer t0ken"
    assert receiver.requests[0].headers["content-type"] == "application/x-protobuf"


def test_gzip_compression(receiver: OtlpReceiver) -> None:
    sink = build_otlp_sink(OtlpSettings(HTTP, receiver.traces_url, (), "gzip", 5.0))
    assert sink.export([batch(2)], soon(1), soon(5)).result is ExportResult.SUCCESS
    assert receiver.requests[0].headers["content-encoding"] == "gzip" and len(receiver.spans) == 2


@pytest.mark.parametrize("protocol", [HTTP, GRPC])
def test_a_partial_success_says_how_many_spans_and_log_records_were_rejected(protocol: str) -> None:
    with OtlpReceiver() if protocol == HTTP else OtlpGrpcReceiver() as collector:
        collector.rejecting = 2

        def settings(signal: str) -> OtlpSettings:
            url = f"{collector.endpoint}/v1/{signal}" if protocol == HTTP else collector.endpoint
            return OtlpSettings(protocol, url, (), "none", 5.0)

        spans = build_otlp_sink(settings("traces"))
        logs = build_otlp_log_sink(settings("logs"))
        try:
            outcome = spans.export([batch(3)], soon(5), soon(10))
            assert outcome.result is ExportResult.SUCCESS and outcome.rejected_spans == 2
            lines = [LogEntry(f"line {index}", 1, 2) for index in range(3)]
            outcome = logs.export([Batch({"service.name": "svc"}, "r1", lines, [100] * 3)], soon(5), soon(10))
            assert outcome.result is ExportResult.SUCCESS and outcome.rejected_spans == 2
            assert len(collector.spans) == 3 and [record.body for record in collector.logs] == [
                "line 0", "line 1", "line 2"]
            collector.rejecting = 0
            assert spans.export([batch(1)], soon(5), soon(10)).rejected_spans == 0
        finally:
            spans.close()
            logs.close()


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_answers_are_retried_within_the_budget(receiver: OtlpReceiver, status: int) -> None:
    receiver.fail(status, count=2)
    sink = sink_for(receiver.traces_url, breaker=CircuitBreaker(threshold=5))
    outcome = sink.export([batch(3)], soon(5), soon(10))
    assert outcome.result is ExportResult.SUCCESS and outcome.attempts == 3
    assert len(receiver.requests) == 3 and len(receiver.spans) == 3  # delivered once


@pytest.mark.parametrize("status", [400, 401, 403, 413, 500])
def test_other_answers_are_not_retried(receiver: OtlpReceiver, status: int) -> None:
    receiver.fail(status, count=1)
    outcome = sink_for(receiver.traces_url).export([batch(1)], soon(5), soon(10))
    assert outcome.result is ExportResult.REJECTED and outcome.attempts == 1
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [404, 405, 415, 501])
def test_an_answer_that_there_is_no_such_endpoint_is_unsupported_and_not_retried(
        receiver: OtlpReceiver, status: int) -> None:
    receiver.fail(status)
    outcome = sink_for(receiver.traces_url).export([batch(1)], soon(5), soon(10))
    assert outcome.result is ExportResult.UNSUPPORTED and outcome.attempts == 1
    assert outcome.detail == f"HTTP {status}" and len(receiver.requests) == 1


def test_retry_after_is_honoured(receiver: OtlpReceiver) -> None:
    receiver.fail(503, count=1, retry_after="0.3")
    sink = sink_for(receiver.traces_url, breaker=CircuitBreaker(threshold=5))
    outcome = sink.export([batch(1)], soon(5), soon(10))
    assert outcome.result is ExportResult.SUCCESS
    first, second = receiver.requests
    assert second.arrived_at - first.arrived_at >= 0.3


def test_retry_after_beyond_the_budget_keeps_the_spans_and_holds_later_flushes_back(receiver: OtlpReceiver) -> None:
    receiver.fail(429, count=1, retry_after="60")
    sink = sink_for(receiver.traces_url)
    assert sink.export([batch(1)], soon(0.5), soon(5)).result is ExportResult.RETRY_LATER
    assert sink.export([batch(1)], soon(0.5), soon(5)).result is ExportResult.BREAKER_OPEN
    assert len(receiver.requests) == 1  # the second flush never touched the network


def test_backoff_grows_and_stops_when_the_next_attempt_would_not_fit(receiver: OtlpReceiver) -> None:
    receiver.fail(503)
    sink = sink_for(receiver.traces_url, breaker=CircuitBreaker(threshold=100))
    outcome = sink.export([batch(1)], soon(0.4), soon(5))
    assert outcome.result is ExportResult.RETRY_LATER
    times = [request.arrived_at for request in receiver.requests]
    assert 2 <= len(times) <= 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.04 for gap in gaps)  # never hammering: at least the first backoff (50 ms -20%)


def test_a_dead_collector_opens_the_breaker_and_later_flushes_do_not_try() -> None:
    now = [0.0]
    clock_breaker = CircuitBreaker(threshold=3, base_cooldown_s=0.2, max_cooldown_s=0.2, clock=lambda: now[0])
    receiver = OtlpReceiver().start()
    receiver.stop()  # the port stays held, never listened on: connection refused
    try:
        sink = sink_for(receiver.traces_url, breaker=clock_breaker)
        first = sink.export([batch(1)], soon(2), soon(5))
        assert first.result is ExportResult.RETRY_LATER and first.attempts == 3
        assert sink.export([batch(1)], soon(2), soon(5)).result is ExportResult.BREAKER_OPEN
        receiver.start()  # the collector comes back on the same port
        assert sink.export([batch(1)], soon(2), soon(5)).result is ExportResult.BREAKER_OPEN  # still cooling down
        now[0] += 0.3  # past the cooldown: one probe goes out and closes the breaker
        assert sink.export([batch(2)], soon(2), soon(5)).result is ExportResult.SUCCESS
        assert len(receiver.spans) == 2
    finally:
        receiver.stop(hold_port=False)


def flusher_for(receiver: OtlpReceiver, buffer: SpanBuffer, stats: Stats, when_unsupported: str | None = None
                ) -> Flusher:
    settings = OtlpSettings(HTTP, receiver.traces_url, (), "none", 5.0)
    loader = SinkLoader(lambda: build_otlp_sink(settings))
    return Flusher(buffer, loader, stats, request_timeout_s=5.0, chunk_spans=4, when_unsupported=when_unsupported)


def test_without_an_endpoint_for_its_signal_a_flusher_says_so_once_stops_and_counts_the_rest_quietly(
        receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    flusher = flusher_for(receiver, buffer, stats, when_unsupported="no endpoint at 100% here ({answer})")
    receiver.fail(405)
    for invocation in range(3):
        buffer.add({"service.name": "svc"}, f"r{invocation}", batch(6).spans, [100] * 6)
        flusher.run(FlushJob(soon(5), soon(10), force=False))
        assert buffer.held == 0 and not stats.new_drops()  # no self-report line per flush: the line said it all
    assert len(receiver.requests) == 1 and flusher.stopped
    assert stats.dropped == {"no_endpoint": 18} and stats.exported == 0
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("afterglow")]
    assert lines == ["no endpoint at 100% here (HTTP 405)"]


def test_a_flusher_not_told_what_to_do_without_an_endpoint_drops_the_chunk_as_rejected_and_keeps_trying(
        receiver: OtlpReceiver) -> None:
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    flusher = flusher_for(receiver, buffer, stats)
    receiver.fail(404, count=1)
    buffer.add({"service.name": "svc"}, "r1", batch(2).spans, [100] * 2)
    flusher.run(FlushJob(soon(5), soon(10), force=False))
    buffer.add({"service.name": "svc"}, "r2", batch(3).spans, [100] * 3)
    flusher.run(FlushJob(soon(5), soon(10), force=False))
    assert stats.dropped == {"rejected": 2} and stats.exported == 3 and not flusher.stopped


def test_a_flush_sends_the_buffer_in_chunks_and_empties_it(receiver: OtlpReceiver) -> None:
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    buffer.add({"service.name": "svc"}, "r1", batch(10).spans, [100] * 10)
    flusher = flusher_for(receiver, buffer, stats)
    job = FlushJob(soon(5), soon(10), force=False)
    flusher.run(job)
    assert job.result is ExportResult.SUCCESS and job.exported == 10
    assert buffer.held == 0 and stats.exported == 10
    assert [request.spans for request in receiver.requests] == [4, 4, 2]


def test_a_flush_told_how_many_sends_that_many_and_leaves_what_came_later(receiver: OtlpReceiver) -> None:
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    buffer.add({"service.name": "svc"}, "r1", batch(6).spans, [100] * 6)
    flusher = flusher_for(receiver, buffer, stats)
    receiver.on_request = lambda meta: buffer.add({"service.name": "svc"}, "r2", batch(1).spans, [100])
    job = FlushJob(soon(5), soon(10), force=False, most=6)
    flusher.run(job)
    assert job.exported == 6 and [request.spans for request in receiver.requests] == [4, 2]
    assert buffer.held == 2  # one span came in during each request: they wait for the next flush


def test_a_slow_collector_does_not_hold_the_flush_past_its_budget_and_nothing_is_sent_twice() -> None:
    with OtlpReceiver(delay_s=0.6) as receiver:
        stats = Stats()
        buffer = SpanBuffer(100, stats)
        buffer.add({"service.name": "svc"}, "r1", batch(3).spans, [100] * 3)
        flusher = flusher_for(receiver, buffer, stats)
        flusher.start()
        try:
            began = time.monotonic()
            job = flusher.flush(0.1)
            waited = time.monotonic() - began
            assert not job.done.is_set() and waited < 0.55  # back well before the collector answers
            buffer.add({"service.name": "svc"}, "r2", batch(2).spans, [100] * 2)
            second = flusher.flush(5.0)  # runs after the first; the first chunk is not in the buffer to resend
            assert second.done.wait(5)
            assert job.done.is_set()
            assert len(receiver.spans) == 5 and len(set(receiver.span_ids())) == 5
            assert buffer.held == 0
        finally:
            flusher.stop()


def test_no_new_request_starts_after_the_budget(receiver: OtlpReceiver) -> None:
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    buffer.add({"service.name": "svc"}, "r1", batch(8).spans, [100] * 8)
    gate = threading.Event()
    receiver.on_request = lambda meta: gate.wait(0.5)  # every request takes a while
    flusher = flusher_for(receiver, buffer, stats)
    job = FlushJob(soon(0.2), soon(5), force=False)
    flusher.run(job)
    assert len(receiver.requests) == 1 and buffer.held == 4  # one chunk went; the rest waits for next time


def test_a_request_sent_whole_and_never_answered_is_counted_and_never_sent_again() -> None:
    with OtlpReceiver(delay_s=1.5) as receiver:
        stats = Stats()
        buffer = SpanBuffer(100, stats)
        buffer.add({"service.name": "svc"}, "r1", batch(3).spans, [100] * 3)
        flusher = Flusher(buffer, SinkLoader(lambda: sink_for(receiver.traces_url, timeout_s=0.3)), stats,
                          request_timeout_s=0.3)
        job = FlushJob(soon(5), soon(5), force=False)
        flusher.run(job)
        assert job.result is ExportResult.UNCONFIRMED
        assert buffer.held == 0 and stats.dropped.get("unconfirmed") == 3
        receiver.wait_for_spans(3, timeout=10)  # the collector did get it, late
        assert len(receiver.requests) == 1  # and only once


def test_a_wait_for_the_answer_that_a_freeze_stretched_counts_as_a_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracer.export import transport

    ours, theirs = socket.socketpair()
    real = time.monotonic
    jumped: list[bool] = []

    def frozen_once() -> float:  # the first reading after the wait began: ten minutes later, as after a freeze
        jumped.append(True)
        return real() + (600.0 if len(jumped) == 2 else 0.0)

    monkeypatch.setattr(transport.time, "monotonic", frozen_once)
    timer = threading.Timer(0.4, lambda: theirs.sendall(b"HTTP/1.1 200 OK\r\n"))
    timer.start()
    try:
        assert transport.await_answer(ours, 0.6)  # 0.25 s counted for the frozen slice, not 600
    finally:
        timer.cancel()
        ours.close()
        theirs.close()


def test_at_shutdown_a_pass_in_progress_ends_after_its_request_and_only_forced_exports_run(
    receiver: OtlpReceiver,
) -> None:
    """``wind_down`` (SHUTDOWN): a background pass that may run for a request timeout stops after the request in
    flight, so SHUTDOWN's own (forced) export gets the rest."""
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    buffer.add({"service.name": "svc"}, "r1", batch(12).spans, [100] * 12)
    arrived, gate = threading.Event(), threading.Event()

    def hold(meta: object) -> None:
        arrived.set()
        gate.wait(5)

    receiver.on_request = hold
    flusher = flusher_for(receiver, buffer, stats)
    background = FlushJob(soon(10), soon(20), force=False)
    thread = threading.Thread(target=flusher.run_here, args=(background,))
    thread.start()
    try:
        assert arrived.wait(5)  # the pass's first request is in flight
        flusher.wind_down()
        receiver.on_request = None
        gate.set()
        thread.join(5)
        assert not thread.is_alive() and background.exported == 4  # its request in flight, no other
        flusher.run_here(FlushJob(soon(5), soon(10), force=False))
        assert buffer.held == 8  # not forced: not run
        last = FlushJob(soon(5), soon(10), force=True)
        flusher.run_here(last)
        assert last.exported == 8 and buffer.held == 0
        assert len(set(receiver.span_ids())) == 12
    finally:
        gate.set()
        thread.join(5)
