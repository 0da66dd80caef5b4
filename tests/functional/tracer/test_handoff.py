"""The hand-off over a real Unix socket, decoded with tracer.wire.FrameReader as the extension decodes it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.tracing import SpanReader
from tracer import wire
from tracer._handoff import BUFFER_FULL, DISCONNECTED_DROP, ENCODE_ERROR, FALLBACK, OVERSIZED, SOCKET, Handoff
from tracer._limits import SpanLimits
from tracer._span import LeanSpan
from tracer._tracer import LeanTracerProvider

WINDOW_FOREVER = 10**12  # coalesce everything until END: makes write counts deterministic


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
    made = Setup(socket_path, window_ns=WINDOW_FOREVER)
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
    assert end == ["req-1", True, {}]


def test_a_burst_within_the_window_is_one_write(setup: Setup, reader: SpanReader) -> None:
    setup.invocation("req-1", children=10)
    reader.wait_for_end("req-1")
    # HELLO, START, the spans and END in one write: a short invocation writes nothing while the handler runs
    assert setup.handoff.writes == 1
    assert len(reader.spans()) == 11


def test_with_no_window_each_span_leaves_as_it_ends(socket_path: str, reader: SpanReader) -> None:
    made = Setup(socket_path, window_ns=0)
    try:
        made.invocation("req-1", children=4)
        reader.wait_for_end("req-1")
        assert reader.kinds() == ["HELLO", "START"] + ["SPANS"] * 5 + ["END"]
    finally:
        made.handoff.close()


def test_a_batch_that_waited_too_long_leaves_when_the_next_span_starts(socket_path: str, reader: SpanReader) -> None:
    made = Setup(socket_path, window_ns=50_000_000)
    made.handoff.linger = False  # the sender thread would send it first: this is the start of a span's own doing
    try:
        root = made.tracer.start_span("invocation")
        made.handoff.begin("req-1", root)  # type: ignore[arg-type]
        made.tracer.start_span("quick", context=_context_of(root)).end()  # type: ignore[arg-type]
        time.sleep(0.1)
        assert "SPANS" not in reader.kinds()  # still waiting for company
        made.tracer.start_span("later", context=_context_of(root))  # type: ignore[arg-type]
        reader.wait_for(lambda frames: any(kind == wire.SPANS for kind, _ in frames))
        assert [span[wire.NAME] for span in reader.spans()] == ["quick"]
    finally:
        made.handoff.close()


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
    assert reader.wait_for_end("req-1") == ["req-1", False, {}]
    assert reader.kinds() == ["HELLO", "END"]


def test_stalled_reader_bounds_the_buffer_counts_drops_and_never_blocks(socket_path: str, reader: SpanReader) -> None:
    made = Setup(socket_path, window_ns=0, max_pending_bytes=256 * 1024)
    try:
        made.handoff.begin("warm-up", None)
        made.handoff.finish("warm-up", False)
        reader.wait_for_end("warm-up")
        reader.stall()
        done = threading.Event()

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
        assert made.handoff.pending_bytes <= 256 * 1024 + 4096  # the bound, plus the small control frames
        reader.resume()  # the drain thread finishes the writes after "the handler returned"
        end = reader.wait_for_end("req-1")
        dropped = end[2].get(BUFFER_FULL, 0)
        assert dropped > 0 and set(end[2]) <= {BUFFER_FULL}
        assert len(reader.spans()) + dropped == 1001  # every span arrived or was counted, none twice
        assert reader.errors == []
    finally:
        made.handoff.close()


def test_finish_returns_while_the_reader_is_stalled(socket_path: str, reader: SpanReader) -> None:
    setup = Setup(socket_path, window_ns=WINDOW_FOREVER, max_pending_bytes=64 * 1024 * 1024)
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
        assert setup.handoff.pending_bytes > 0  # END is among what waits
        reader.resume()
        assert reader.wait_for_end("req-1") == ["req-1", True, {}]
        assert len([s for s in reader.spans() if s[wire.NAME].startswith("child")]) == 800
    finally:
        setup.handoff.close()


def test_reconnects_once_when_the_extension_restarted(setup: Setup, reader: SpanReader) -> None:
    setup.invocation("req-1")
    reader.wait_for_end("req-1")
    reader.restart()
    reader.frames.clear()
    setup.invocation("req-2")
    reader.wait_for_end("req-2")
    assert reader.connections == 2
    assert reader.kinds() == ["HELLO", "START", "SPANS", "END"]  # a new connection starts with HELLO
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
    made = Setup(socket_path, limits, window_ns=WINDOW_FOREVER)
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
    made = Setup(socket_path, window_ns=WINDOW_FOREVER)
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

        def sendmsg(self, buffers: Any, *args: Any) -> int:
            seen.append(context_api.get_value(context_api._SUPPRESS_INSTRUMENTATION_KEY))
            return int(self._sock.sendmsg(buffers, *args))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._sock, name)

    setup.invocation("req-1")
    reader.wait_for_end("req-1")
    setup.handoff._sock = Watching(setup.handoff._sock)  # type: ignore[assignment]
    setup.invocation("req-2")
    reader.wait_for_end("req-2")
    assert seen and all(value is True for value in seen)
    assert context_api.get_value(context_api._SUPPRESS_INSTRUMENTATION_KEY) is None  # and only while we write


def test_force_flush_sends_the_batch_without_waiting(setup: Setup, reader: SpanReader) -> None:
    root = setup.tracer.start_span("invocation")
    setup.handoff.begin("req-1", root)  # type: ignore[arg-type]
    setup.tracer.start_span("child", context=_context_of(root)).end()  # type: ignore[arg-type]
    assert setup.handoff.pending_bytes > 0  # waiting for company (the window is endless here)
    assert setup.provider.force_flush() is True
    reader.wait_for(lambda frames: any(kind == wire.SPANS for kind, _ in frames))
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
