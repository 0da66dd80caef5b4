"""The hand-off over a real Unix socket and a real shared ring, read as the extension reads them
(``extension.ring.FunctionStream``)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.tracing import SpanReader, span_reader
from tracer import wire
from tracer._handoff import BUFFER_FULL, DISCONNECTED_DROP, ENCODE_ERROR, FALLBACK, OVERSIZED, SOCKET, Handoff
from tracer._limits import SpanLimits
from tracer._provider import LeanTracerProvider
from tracer._span import LeanSpan


class Setup:
    def __init__(self, path: str, limits: SpanLimits | None = None, **options: int) -> None:
        self.handoff = Handoff(path, **options)
        self.handoff.resource = {"service.name": "svc"}
        self.provider = LeanTracerProvider(self.handoff, limits=limits)
        self.tracer = self.provider.get_tracer("test")

    def invocation(self, request_id: str, children: int = 3, attribute: str = "v") -> None:
        root = self.tracer.start_span("invocation")
        assert isinstance(root, LeanSpan)
        self.handoff.begin(request_id, root)
        for number in range(children):
            span = self.tracer.start_span(f"child-{number}", context=_context_of(root))
            span.set_attribute("payload", attribute)
            span.end()
        root.end()
        self.handoff.finish(request_id, True)


def _context_of(span: LeanSpan) -> object:
    from opentelemetry import trace as trace_api

    return trace_api.set_span_in_context(span)


@pytest.fixture
def setup(socket_path: str) -> Iterator[Setup]:
    made = Setup(socket_path)
    yield made
    made.handoff.close()


def test_frames_arrive_in_order(setup: Setup, reader: SpanReader) -> None:
    setup.invocation("req-1")
    end = reader.wait_for_end("req-1")
    assert reader.kinds() == ["HELLO", "START", "SPANS", "END"]
    frames = reader.snapshot()
    hello, (request_id, start_span) = frames[0][1], frames[1][1]
    assert hello["resource"] == {"service.name": "svc"} and hello["tracer"].startswith("afterglow-python")
    assert request_id == "req-1" and start_span[wire.NAME] == "invocation" and start_span[wire.END_NS] == 0
    names = [span[wire.NAME] for span in reader.spans()]
    assert names == ["child-0", "child-1", "child-2", "invocation"]  # the invocation span last
    root = reader.spans()[-1]
    assert all(span[wire.PARENT_SPAN_ID] == root[wire.SPAN_ID] for span in reader.spans()[:-1])
    assert end[:3] == ["req-1", True, {}]


def test_spans_end_without_a_write_and_the_invocation_writes_once(setup: Setup, reader: SpanReader) -> None:
    setup.invocation("warm-up", children=0)  # connects: HELLO, then END
    reader.wait_for_end("warm-up")
    before = setup.handoff.writes
    root = setup.tracer.start_span("invocation")
    setup.handoff.begin("req-1", root)  # type: ignore[arg-type]
    for number in range(10):
        setup.tracer.start_span(f"child-{number}", context=_context_of(root)).end()  # type: ignore[arg-type]
    root.end()
    assert setup.handoff.writes == before  # START and eleven spans: not one write, nothing woken
    setup.handoff.finish("req-1", True)
    reader.wait_for_end("req-1")
    assert setup.handoff.writes == before + 1  # END, after the response
    assert len([span for span in reader.spans() if span[wire.NAME] != "invocation"]) == 10


def test_for_a_polling_extension_an_invocation_makes_no_write_at_all(socket_path: str) -> None:
    with span_reader(socket_path, polled=True) as reader:
        made = Setup(socket_path)
        try:
            made.invocation("warm-up", children=0)  # connects: HELLO over the socket, END into the ring
            reader.drain()
            assert reader.kinds() == ["HELLO", "START", "SPANS", "END"]
            before = made.handoff.writes
            made.invocation("req-1", children=10)
            made.invocation("req-2", children=2)
            assert made.handoff.writes == before  # END too went into the ring: nothing woken, no system call
            reader.drain()  # the extension's next pass
            assert [frame[1][0] for frame in reader.frames if frame[0] == wire.END] == ["warm-up", "req-1", "req-2"]
            assert len(reader.spans()) == 1 + 11 + 3
        finally:
            made.handoff.close()


def test_for_a_polling_extension_end_takes_the_socket_when_the_ring_is_full(socket_path: str) -> None:
    with span_reader(socket_path, polled=True) as reader:
        made = Setup(socket_path, ring_capacity=64 * 1024)
        try:
            made.invocation("warm-up", children=0)
            reader.drain()
            reader.stall()  # the ring is not read meanwhile: it fills
            big = "big-" + "r" * 250  # an END larger than whatever room the last span that did not fit left
            made.invocation(big, children=2000, attribute="x")
            reader.resume()
            end = reader.wait_for_end(big)  # over the socket (no drain asked): the ring had no room for it
            assert end[2].get(BUFFER_FULL)  # with the count of what did not fit, as ever
        finally:
            made.handoff.close()


def test_an_ended_span_is_with_the_extension_before_any_end(setup: Setup, reader: SpanReader) -> None:
    root = setup.tracer.start_span("invocation")
    setup.handoff.begin("req-1", root)  # type: ignore[arg-type]
    setup.tracer.start_span("ended", context=_context_of(root)).end()  # type: ignore[arg-type]
    reader.drain()  # what the extension does before it declares an invocation dead
    assert reader.kinds() == ["HELLO", "START", "SPANS"]
    assert [span[wire.NAME] for span in reader.spans()] == ["ended"]


def test_spans_from_init_go_with_the_first_invocation(setup: Setup, reader: SpanReader) -> None:
    setup.tracer.start_span("module-import").end()
    time.sleep(0.05)
    assert reader.connections == 0  # nothing connects before the first invocation
    setup.invocation("req-1", children=0)
    reader.wait_for_end("req-1")
    assert [span[wire.NAME] for span in reader.spans()] == ["module-import", "invocation"]


def test_unsampled_invocation_sends_only_end(setup: Setup, reader: SpanReader) -> None:
    setup.handoff.begin("req-1", None)
    setup.handoff.finish("req-1", False)
    assert reader.wait_for_end("req-1")[:3] == ["req-1", False, {}]
    assert reader.kinds() == ["HELLO", "END"]


def test_stalled_reader_bounds_the_buffer_counts_drops_and_never_blocks(socket_path: str, reader: SpanReader) -> None:
    made = Setup(socket_path, ring_capacity=256 * 1024)
    try:
        made.handoff.begin("warm-up", None)
        made.handoff.finish("warm-up", False)
        reader.wait_for_end("warm-up")
        reader.stall()
        done = threading.Event()
        writes = made.handoff.writes

        def invoke() -> None:
            root = made.tracer.start_span("invocation")
            made.handoff.begin("req-1", root)  # type: ignore[arg-type]
            big = "x" * 8000
            for number in range(1000):  # ~8 MB: far more than the socket and the bound together
                span = made.tracer.start_span(f"s{number}", context=_context_of(root))  # type: ignore[arg-type]
                span.set_attribute("big", big)
                span.end()
            root.end()
            made.handoff.finish("req-1", True)
            done.set()

        thread = threading.Thread(target=invoke)
        thread.start()
        # A hang detector, not a timing goal: a write waiting for the stalled reader would never return.
        assert done.wait(60), "the handler blocked on a stalled extension"
        thread.join()
        assert made.handoff.unread_bytes <= 256 * 1024  # the ring's bound
        assert made.handoff.writes - writes == 2  # one DRAIN and END: a stalled reader is not asked again and again
        reader.resume()
        end = reader.wait_for_end("req-1")
        dropped = end[2].get(BUFFER_FULL, 0)
        assert dropped > 0 and set(end[2]) <= {BUFFER_FULL}
        assert len(reader.spans()) + dropped == 1001  # every span arrived or was counted, none twice
        assert reader.errors == []
    finally:
        made.handoff.close()


def test_finish_returns_while_the_reader_is_stalled(socket_path: str, reader: SpanReader) -> None:
    setup = Setup(socket_path)
    try:
        setup.invocation("warm-up", children=0)
        reader.wait_for_end("warm-up")
        reader.stall()
        done = threading.Event()

        def invoke() -> None:
            setup.invocation("req-1", children=800, attribute="y" * 8000)  # ~6.4 MB: more than sockets hold
            done.set()

        thread = threading.Thread(target=invoke)
        thread.start()
        assert done.wait(60), "the handler blocked on a stalled extension"  # a hang detector, not a timing goal
        thread.join()
        assert setup.handoff.unread_bytes > 6_400_000  # in the ring, not read yet
        reader.resume()
        assert reader.wait_for_end("req-1")[:3] == ["req-1", True, {}]
        assert len([s for s in reader.spans() if s[wire.NAME].startswith("child")]) == 800
    finally:
        setup.handoff.close()


def test_reconnects_once_when_the_extension_restarted(setup: Setup, reader: SpanReader) -> None:
    setup.invocation("req-1")
    reader.wait_for_end("req-1")
    reader.restart()
    reader.frames.clear()
    setup.invocation("req-2")  # noticed at END: the invocation's frames move into the new connection's ring
    end = reader.wait_for_end("req-2")
    assert reader.connections == 2
    assert reader.kinds() == ["HELLO", "START", "SPANS", "END"]  # a new connection starts with HELLO
    assert len(reader.spans()) == 4 and end[2] == {}  # nothing of the invocation was lost
    assert setup.handoff.mode == SOCKET


def test_extension_gone_for_good_counts_and_recovers_when_it_returns(setup: Setup, reader: SpanReader) -> None:
    setup.invocation("req-1")
    reader.wait_for_end("req-1")
    reader.stop()
    setup.invocation("req-2")  # the write fails, the one reconnect fails: spans are counted, nothing raises
    assert setup.handoff.drops.get(DISCONNECTED_DROP, 0) >= 3
    reader.start()
    reader.frames.clear()
    setup.invocation("req-3")
    end = reader.wait_for_end("req-3")
    assert end[2].get(DISCONNECTED_DROP, 0) >= 3  # reported with the next END that gets through
    assert reader.kinds()[0] == "HELLO"


def test_counts_in_an_end_that_did_not_get_through_go_with_the_next_one(setup: Setup, reader: SpanReader) -> None:
    setup.invocation("req-1")
    reader.wait_for_end("req-1")
    root = setup.tracer.start_span("invocation")
    setup.handoff.begin("req-2", root)  # type: ignore[arg-type]
    bad = setup.tracer.start_span("bad", context=_context_of(root))  # type: ignore[arg-type]
    bad._attributes = {"slipped": object()}  # type: ignore[attr-defined]
    bad.end()  # one encode_error, to be reported in req-2's END
    reader.stop()  # the extension goes away before END is written
    root.end()
    setup.handoff.finish("req-2", True)
    reader.start()
    reader.frames.clear()
    setup.invocation("req-3", children=0)
    assert reader.wait_for_end("req-3")[2] == {ENCODE_ERROR: 1, DISCONNECTED_DROP: 1}  # the invocation span of req-2


def test_a_span_msgpack_cannot_encode_is_dropped_and_counted(setup: Setup, reader: SpanReader) -> None:
    root = setup.tracer.start_span("invocation")
    setup.handoff.begin("req-1", root)  # type: ignore[arg-type]
    bad = setup.tracer.start_span("bad", context=_context_of(root))  # type: ignore[arg-type]
    bad._attributes = {"slipped": object()}  # type: ignore[attr-defined]  # past the limits, somehow
    bad.end()
    setup.tracer.start_span("good", context=_context_of(root)).end()  # type: ignore[arg-type]
    root.end()
    setup.handoff.finish("req-1", True)
    end = reader.wait_for_end("req-1")
    assert end[2] == {ENCODE_ERROR: 1}
    assert [span[wire.NAME] for span in reader.spans()] == ["good", "invocation"]


def test_a_span_larger_than_a_frame_is_dropped_and_counted(socket_path: str, reader: SpanReader) -> None:
    limits = SpanLimits(max_span_value_length=8 * 1024 * 1024)
    made = Setup(socket_path, limits)
    try:
        root = made.tracer.start_span("invocation")
        made.handoff.begin("req-1", root)  # type: ignore[arg-type]
        huge = made.tracer.start_span("huge", context=_context_of(root))  # type: ignore[arg-type]
        huge.set_attribute("blob", "z" * (wire.MAX_PAYLOAD + 1))
        huge.end()
        root.end()
        made.handoff.finish("req-1", True)
        assert reader.wait_for_end("req-1")[2] == {OVERSIZED: 1}
    finally:
        made.handoff.close()


def test_spans_from_many_threads(setup: Setup, reader: SpanReader) -> None:
    root = setup.tracer.start_span("invocation")
    setup.handoff.begin("req-1", root)  # type: ignore[arg-type]

    def work(number: int) -> None:
        for index in range(50):
            setup.tracer.start_span(f"t{number}-{index}", context=_context_of(root)).end()  # type: ignore[arg-type]

    threads = [threading.Thread(target=work, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    root.end()
    setup.handoff.finish("req-1", True)
    reader.wait_for_end("req-1")
    names = [span[wire.NAME] for span in reader.spans()]
    assert len(names) == len(set(names)) == 401 and reader.errors == []


def test_no_extension_falls_back_with_one_warning(socket_path: str, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from tracer import _safe

    _safe._warned.discard("fallback")
    made = Setup(socket_path)
    try:
        with caplog.at_level(logging.WARNING, logger="afterglow"):
            made.invocation("req-1")
            made.invocation("req-2")
        assert made.handoff.mode == FALLBACK
        assert caplog.text.count("no extension listening") == 1
    finally:
        made.handoff.close()


def test_our_socket_io_runs_with_instrumentation_suppressed(setup: Setup, reader: SpanReader) -> None:
    from opentelemetry import context as context_api

    seen: list[object] = []

    class Watching:
        """Wraps the real socket: records whether instrumentation is suppressed while we write."""

        def __init__(self, sock: Any) -> None:
            self._sock = sock

        def send(self, data: bytes, *args: Any) -> int:
            seen.append(context_api.get_value(context_api._SUPPRESS_INSTRUMENTATION_KEY))
            return int(self._sock.send(data, *args))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._sock, name)

    setup.invocation("req-1")
    reader.wait_for_end("req-1")
    connection = setup.handoff._connection
    assert connection is not None
    connection._sock = Watching(connection._sock)  # type: ignore[assignment]
    setup.invocation("req-2")
    reader.wait_for_end("req-2")
    assert seen and all(value is True for value in seen)
    assert context_api.get_value(context_api._SUPPRESS_INSTRUMENTATION_KEY) is None  # and only while we write


def test_force_flush_has_nothing_to_wait_for(setup: Setup, reader: SpanReader) -> None:
    root = setup.tracer.start_span("invocation")
    setup.handoff.begin("req-1", root)  # type: ignore[arg-type]
    setup.tracer.start_span("child", context=_context_of(root)).end()  # type: ignore[arg-type]
    writes = setup.handoff.writes
    assert setup.provider.force_flush() is True
    assert setup.handoff.writes == writes  # handing over is the flush: the span is already in the ring
    reader.drain()
    assert [span[wire.NAME] for span in reader.spans()] == ["child"]


def test_a_forked_child_gets_its_own_connection_and_the_parent_stream_stays_whole(
    setup: Setup, reader: SpanReader
) -> None:
    setup.invocation("req-1")  # connected
    reader.wait_for_end("req-1")
    root = setup.tracer.start_span("invocation")
    setup.handoff.begin("req-2", root)  # type: ignore[arg-type]
    with setup.tracer.start_as_current_span("before-fork"):
        pass
    child = os.fork()
    if child == 0:  # the child: spans made here go over its own connection, at once (it may _exit any time)
        try:
            with setup.tracer.start_as_current_span("in-child"):
                pass
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    with setup.tracer.start_as_current_span("after-fork"):
        pass
    root.end()
    setup.handoff.finish("req-2", True)
    reader.wait_for_end("req-2")
    reader.wait_for(lambda frames: any(k == wire.SPANS and p[0][wire.NAME] == "in-child" for k, p in frames))
    names = [span[wire.NAME] for span in reader.spans()]
    assert sorted(names.count(name) for name in ("before-fork", "in-child", "after-fork")) == [1, 1, 1]
    assert reader.errors == [] and reader.connections == 2  # no interleaved garbage; one connection each
    hellos = [payload["pid"] for kind, payload in reader.snapshot() if kind == wire.HELLO]
    assert child in hellos and os.getpid() in hellos


CRASHING = """
import ctypes, os, signal, sys, time
from opentelemetry import trace as trace_api
from tracer._handoff import Handoff
from tracer._provider import LeanTracerProvider

path, children, death = sys.argv[1], int(sys.argv[2]), sys.argv[3]
handoff = Handoff(path)
tracer = LeanTracerProvider(handoff).get_tracer("crash")
root = tracer.start_span("invocation")
handoff.begin("req-1", root)
for number in range(children):
    tracer.start_span(f"child-{number}", context=trace_api.set_span_in_context(root)).end()
if death == "os._exit":
    os._exit(3)
if death == "segfault":
    ctypes.string_at(0)
print("ended", flush=True)  # SIGKILL from outside
time.sleep(60)
"""


@pytest.mark.parametrize("children", [1, 3, 7])
@pytest.mark.parametrize("death", ["os._exit", "SIGKILL", "segfault"])
def test_every_span_that_ended_before_a_hard_crash_arrives(
    socket_path: str, reader: SpanReader, children: int, death: str
) -> None:
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    process = subprocess.Popen([sys.executable, "-c", CRASHING, socket_path, str(children), death],
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        if death == "SIGKILL":
            assert process.stdout is not None and process.stdout.readline().strip() == "ended"
            process.send_signal(signal.SIGKILL)
        assert process.wait(30) != 0
    finally:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
    # the function process is gone: the reader learns it from the closed connection and reads the ring
    reader.wait_for(lambda frames: len(reader.spans()) == children)
    assert reader.kinds() == ["HELLO", "START", "SPANS"]
    assert sorted(span[wire.NAME] for span in reader.spans()) == [f"child-{n}" for n in range(children)]
    assert reader.errors == []


def test_a_long_invocation_wakes_the_reader_only_at_high_water(socket_path: str, reader: SpanReader) -> None:
    made = Setup(socket_path, ring_capacity=64 * 1024)
    try:
        made.invocation("short", children=5)
        reader.wait_for_end("short")
        writes, before = made.handoff.writes, len(reader.spans())
        made.invocation("long", children=2000, attribute="d" * 200)  # ~560 KB through a 64 KiB ring
        end = reader.wait_for_end("long")
        drains = made.handoff.writes - writes - 1  # all but END
        spans = reader.spans()
        # What the long invocation put through the ring: its spans as the ring holds them (a frame each), and START
        # (no bigger than the invocation span's frame). Spans that found the ring full were never written.
        long_spans = spans[before:]
        through_ring = sum(len(wire.frame(wire.SPANS, [span])) for span in long_spans) + max(
            len(wire.frame(wire.SPANS, [span])) for span in long_spans)
        # Another DRAIN only once the extension read past the last one and a quarter waits again: at most one per
        # quarter of what went through (a slow reader makes fewer, not more).
        assert 1 <= drains <= through_ring // (64 * 1024 // 4) + 1
        children = [span for span in spans if span[wire.NAME].startswith("child")]
        dropped = end[2].get(BUFFER_FULL, 0)
        assert len(children) + dropped >= 2000 + 5
        assert set(end[2]) <= {BUFFER_FULL} and reader.errors == []
    finally:
        made.handoff.close()


def test_spans_from_init_beyond_the_ring_are_counted_and_no_frame_exceeds_the_limit(
    socket_path: str, reader: SpanReader
) -> None:
    made = Setup(socket_path, ring_capacity=1024 * 1024)
    try:
        for number in range(300):  # ~2.4 MB before any invocation: more than the ring holds
            made.tracer.start_span(f"import-{number}", attributes={"blob": "i" * 8000}).end()
        made.invocation("req-1", children=0)
        end = reader.wait_for_end("req-1")
        names = [span[wire.NAME] for span in reader.spans()]
        dropped = end[2].get(BUFFER_FULL, 0)
        assert dropped > 0 and set(end[2]) == {BUFFER_FULL}
        assert len([name for name in names if name.startswith("import")]) + dropped == 300
        assert "invocation" in names and reader.errors == []
    finally:
        made.handoff.close()


def test_a_child_forked_in_fallback_mode_exports_nothing_of_the_parent_and_takes_no_held_lock(
    socket_path: str, monkeypatch: pytest.MonkeyPatch, otlp_receiver: Any
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_receiver.endpoint)
    made = Setup(socket_path)  # nobody listens: in-process fallback
    try:
        made.invocation("req-1", children=1)
        assert made.handoff.mode == FALLBACK
        otlp_receiver.wait_for_spans(2)
        root = made.tracer.start_span("invocation")
        made.handoff.begin("req-2", root)  # type: ignore[arg-type]
        made.tracer.start_span("parent-before-fork", context=_context_of(root)).end()  # type: ignore[arg-type]
        held = threading.Event()
        release = threading.Event()

        def hold_the_locks() -> None:  # a thread of the parent is inside the hand-off at the moment of the fork
            fallback = made.handoff._fallback
            assert fallback is not None
            with made.handoff._lock, fallback._lock:
                held.set()
                release.wait(10)

        holder = threading.Thread(target=hold_the_locks)
        holder.start()
        assert held.wait(10)
        child = os.fork()
        if child == 0:  # the child: ends a span, finishes an invocation of its own, exports it
            code = 1
            try:
                made.tracer.start_span("in-child").end()
                made.handoff.finish("child-req", True)
                code = 0
            finally:
                os._exit(code)
        release.set()
        holder.join()
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0  # it never waited on the parent's held locks
        root.end()
        made.handoff.finish("req-2", True)
        spans = otlp_receiver.wait_for_spans(5)
        names = sorted(span.name for span in spans)
        assert names == sorted(["invocation", "child-0", "in-child", "parent-before-fork", "invocation"])
    finally:
        made.handoff.close()


def _behind(made: Setup, reader: SpanReader, request_id: str) -> None:
    """An invocation whose spans (~100 KB) the stalled reader has not read: past the hold mark of a 256 KiB ring."""
    reader.stall()
    made.invocation(request_id, children=100, attribute="z" * 1000)
    assert made.handoff.unread_bytes > 256 * 1024 // 16


def test_after_the_response_the_function_waits_for_a_reader_that_is_behind(socket_path: str) -> None:
    """Back-pressure: the reader stores a hold bound; after the response, behind by more than the mark, the function
    wakes it (DRAIN) and returns once it has read below the mark, not before."""
    with span_reader(socket_path, polled=True, hold_ms=60_000) as reader:
        made = Setup(socket_path, ring_capacity=256 * 1024)
        try:
            made.invocation("warm-up", children=0)
            reader.drain()
            _behind(made, reader, "req-1")
            posted = threading.Thread(target=made.handoff.response_posted)
            posted.start()
            reader.resume()  # reads the ring at the DRAIN the wait sent
            posted.join(60)
            assert not posted.is_alive()
            assert made.handoff.unread_bytes < 256 * 1024 // 16  # it returned once the reader had caught up
            assert (made.handoff.holds, made.handoff.stalls) == (1, 0)
            reader.drain()
            assert [frame[1][0] for frame in reader.frames if frame[0] == wire.END] == ["warm-up", "req-1"]
        finally:
            made.handoff.close()


def test_without_a_hold_bound_the_function_never_waits(socket_path: str) -> None:
    """A reader that stores no bound (an older extension, or a collector failing): nothing waits after the response,
    however far behind it is."""
    with span_reader(socket_path, polled=True) as reader:
        made = Setup(socket_path, ring_capacity=256 * 1024)
        try:
            made.invocation("warm-up", children=0)
            reader.drain()
            _behind(made, reader, "req-1")
            made.handoff.response_posted()  # returns with the ring still unread
            assert made.handoff.holds == 0
            assert made.handoff.unread_bytes > 256 * 1024 // 16
            reader.resume()
        finally:
            made.handoff.close()


def test_a_reader_that_reads_nothing_is_waited_for_once(socket_path: str) -> None:
    """A reader that stopped (dead, hung): one wait runs to the bound (here the invocation's time left, 0.1 s), and
    the function does not wait on it again until it reads."""
    with span_reader(socket_path, polled=True, hold_ms=60_000) as reader:
        made = Setup(socket_path, ring_capacity=256 * 1024)
        try:
            made.invocation("warm-up", children=0)
            reader.drain()
            _behind(made, reader, "req-1")
            made.handoff.finish("req-1", True, fallback_timeout_s=0.1)  # what the context says is left
            made.handoff.response_posted()
            assert (made.handoff.holds, made.handoff.stalls) == (1, 1)
            made.invocation("req-2", children=10)
            made.handoff.response_posted()
            assert (made.handoff.holds, made.handoff.stalls) == (1, 1)  # not again
            reader.resume()
            reader.drain()  # it reads again: the next time it is behind, it is waited for again
            _behind(made, reader, "req-3")
            reader.resume()
            made.handoff.response_posted()
            assert made.handoff.holds == 2
        finally:
            made.handoff.close()


def test_a_wait_for_the_reader_stays_within_what_the_context_says_is_left(socket_path: str) -> None:
    """The decorator gives the handoff a way to ask the invocation's time left, not the figure (asking costs a few
    us per invocation): it is asked only when the function is about to wait, and bounds that wait (a wait past the
    function's timeout would make Lambda time the invocation out)."""
    asked: list[float] = []

    def time_left() -> float:
        asked.append(0.1)
        return 0.1

    with span_reader(socket_path, polled=True, hold_ms=60_000) as reader:
        made = Setup(socket_path, ring_capacity=256 * 1024)
        try:
            made.invocation("warm-up", children=0)
            reader.drain()
            _behind(made, reader, "req-1")
            made.handoff.finish("req-1", True, time_left=time_left)  # the default figure (5 s) is not the bound
            made.handoff.response_posted()  # the stalled reader: the wait runs to the 0.1 s left, not to 60 s
            assert asked == [0.1]
            assert (made.handoff.holds, made.handoff.stalls) == (1, 1)
            reader.resume()
            reader.drain()
            made.invocation("req-2", children=1)
            made.handoff.finish("req-2", True, time_left=time_left)
            made.handoff.response_posted()  # not behind: nothing to wait for, nothing asked
            assert asked == [0.1]
        finally:
            made.handoff.close()
