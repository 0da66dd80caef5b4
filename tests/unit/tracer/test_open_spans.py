"""The open-span table on its own: spans started through the OpenTelemetry API take slots in a real ring's header,
read back through the extension's ``RingReader`` (what the extension sees once the process is gone): their ids,
parent, kind and name; slots given back as spans end and reused; overflow counted; threads; a fork; an older
extension's and an older tracer's view of the same header."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind

from extension.ring import RingReader
from tracer import wire
from tracer._open_spans import SLOTS, OpenSpans
from tracer._provider import LeanTracerProvider
from tracer._ring import Ring
from tracer._span import LeanSpan

CAPACITY = 4096


class Sink:
    """A span sink that only carries the table (as ``Handoff.open_spans``) and keeps what ends."""

    def __init__(self) -> None:
        self.open_spans = OpenSpans()
        self.ended: list[LeanSpan] = []

    def on_end(self, span: LeanSpan) -> None:
        self.ended.append(span)


@pytest.fixture
def sink() -> Iterator[Sink]:
    yield Sink()


@pytest.fixture
def ring(sink: Sink) -> Iterator[Ring]:
    made = Ring(CAPACITY)
    sink.open_spans.attach(made.header)
    yield made
    sink.open_spans.detach()
    made.close()


@pytest.fixture
def tracer(sink: Sink) -> trace_api.Tracer:
    return LeanTracerProvider(sink).get_tracer("orders")


def read(ring: Ring) -> tuple[list[list[Any]], int]:
    """The table as the extension reads it (its own mapping of the ring's descriptor)."""
    assert ring.fd is not None
    reader = RingReader(ring.fd)
    try:
        return reader.unended()
    finally:
        reader.close()


def names(ring: Ring) -> list[str]:
    return sorted(record[wire.NAME] for record in read(ring)[0])


def test_open_spans_are_in_the_table_with_their_ids_parent_kind_and_name(ring: Ring, tracer: Any) -> None:
    with tracer.start_as_current_span("process_order") as order, \
            tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT) as query:
        records, untracked = read(ring)
        assert untracked == 0
        by_name = {record[wire.NAME]: record for record in records}
        assert sorted(by_name) == ["db.query", "process_order"]
        for span, record in ((order, by_name["process_order"]), (query, by_name["db.query"])):
            context = span.get_span_context()
            assert record[wire.TRACE_ID] == context.trace_id.to_bytes(16, "big")
            assert record[wire.SPAN_ID] == context.span_id.to_bytes(8, "big")
            assert record[wire.START_NS] == span.start_time and record[wire.END_NS] == 0
            assert record[wire.TRACE_FLAGS] == int(context.trace_flags)
            wire.check_span(record, open_span=True)  # what the extension's assembler accepts
        assert by_name["process_order"][wire.PARENT_SPAN_ID] is None
        assert by_name["db.query"][wire.PARENT_SPAN_ID] == order.get_span_context().span_id.to_bytes(8, "big")
        assert by_name["db.query"][wire.KIND] == SpanKind.CLIENT.value
    assert read(ring) == ([], 0)  # both ended: the table is empty again


def test_slots_are_given_back_and_reused(ring: Ring, tracer: Any, sink: Sink) -> None:
    for number in range(10 * SLOTS):
        with tracer.start_as_current_span(f"step-{number}"):
            pass
    assert read(ring) == ([], 0) and sink.open_spans.untracked == 0 and len(sink.ended) == 10 * SLOTS


def test_more_open_spans_than_slots_are_counted_not_waited_for(ring: Ring, tracer: Any) -> None:
    spans = [tracer.start_span(f"task-{number}") for number in range(SLOTS + 5)]
    records, untracked = read(ring)
    assert len(records) == SLOTS and untracked == 5
    for span in spans[:10]:  # ten with slots end: five of the counted ones find no slot still
        span.end()
    records, untracked = read(ring)
    assert len(records) == SLOTS - 10 and untracked == 5
    for span in spans[-5:]:  # the counted ones end: the count goes down
        span.end()
    assert len(read(ring)[0]) == SLOTS - 10 and read(ring)[1] == 0
    for span in spans[10:-5]:
        span.end()
    assert read(ring) == ([], 0)


def test_threads_take_any_free_slot(ring: Ring, tracer: Any) -> None:
    threads, opened, release = 8, threading.Barrier(9), threading.Event()
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            with tracer.start_as_current_span(f"thread-{number}"), \
                    tracer.start_as_current_span(f"thread-{number}.query"):
                opened.wait(10)
                release.wait(10)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=work, args=(number,)) for number in range(threads)]
    for worker in workers:
        worker.start()
    try:
        opened.wait(10)
        records, untracked = read(ring)
        assert untracked == 0 and len(records) == 2 * threads
        parents = {record[wire.NAME]: record[wire.PARENT_SPAN_ID] for record in records}
        ids = {record[wire.NAME]: record[wire.SPAN_ID] for record in records}
        for number in range(threads):  # each thread's stack, whatever slots it got
            assert parents[f"thread-{number}.query"] == ids[f"thread-{number}"]
    finally:
        release.set()
        for worker in workers:
            worker.join(10)
    assert not errors and read(ring) == ([], 0)


def test_a_long_or_odd_name_is_truncated_on_a_character_boundary(ring: Ring, tracer: Any) -> None:
    with tracer.start_as_current_span("é" * 100), tracer.start_as_current_span("bad \ud800 surrogate"):
        found = names(ring)
    assert "é" * 39 in found  # 78 bytes: 39 two-byte characters
    assert "bad ? surrogate" in found


def test_spans_opened_before_the_ring_are_moved_into_it(sink: Sink, tracer: Any) -> None:
    early = tracer.start_span("init")
    ended_early = tracer.start_span("ended before the ring")
    ended_early.end()
    made = Ring(CAPACITY)
    try:
        sink.open_spans.attach(made.header)
        assert names(made) == ["init"]
        early.end()
        assert read(made) == ([], 0)
    finally:
        sink.open_spans.detach()
        made.close()


def test_an_abandoned_ring_table_reads_as_empty(ring: Ring, tracer: Any, sink: Sink) -> None:
    """The function lives on without that ring (the extension went away): its spans must not be read as a crash's."""
    span = tracer.start_span("still running")
    assert names(ring) == ["still running"]
    sink.open_spans.detach(abandon=True)
    assert read(ring) == ([], 0)
    span.end()  # in private memory now: nothing raises


def test_the_invocation_span_leaves_the_table_once_start_stands_for_it(ring: Ring, tracer: Any) -> None:
    span = tracer.start_span("handler", kind=SpanKind.SERVER)
    span.leave_open_spans()
    assert read(ring) == ([], 0)
    span.end()  # its slot is not given back twice
    with tracer.start_as_current_span("a"), tracer.start_as_current_span("b"):
        assert names(ring) == ["a", "b"]


def test_an_older_tracers_ring_has_no_table(ring: Ring, tracer: Any) -> None:
    """A ring whose slot count word is zero (an older tracer never writes it) is read as no table at all."""
    with tracer.start_as_current_span("a"):
        ring.header.cast("Q")[wire.RING_OPEN_SLOTS_WORD] = 0
        assert read(ring) == ([], 0)


def test_the_ring_still_reads_as_before(ring: Ring, tracer: Any) -> None:
    """An older extension reads only the words it knows: the table leaves them and the frames alone."""
    with tracer.start_as_current_span("open"):
        assert ring.put_span([b"\x01" * 16, b"\x02" * 8, None, "ended", 0, 1, 2, None, None, None, 0, None, "s",
                              None, 1, None, [0, 0, 0]]) > 0
        words = ring.header.cast("Q")
        assert words[wire.RING_MAGIC_WORD] == wire.RING_MAGIC and words[wire.RING_CAPACITY_WORD] == CAPACITY
        assert words[wire.RING_READ_WORD] == 0 and words[wire.RING_POLLED_WORD] == 0
        assert words[wire.RING_HOLD_MS_WORD] == 0
        assert [span[wire.NAME] for _, payload in wire.FrameReader(wire.VERSION).feed(ring.take()) for span in payload
                ] == ["ended"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_writes_into_its_parents_table(ring: Ring, tracer: Any) -> None:
    with tracer.start_as_current_span("parent's") as inherited:
        before = read(ring)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: end the span it inherited, open and end its own, leave some open
            status = 0
            try:
                inherited.end()
                with tracer.start_as_current_span("child's"):
                    pass
                tracer.start_span("child's, left open")
                os.write(write_end, b"done")
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write_end)
        assert os.read(read_end, 4) == b"done"
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        assert read(ring) == before  # still the parent's one open span, untouched


def test_without_an_extension_spans_take_no_slot(tmp_path: Any) -> None:
    """The in-process fallback: nothing would ever read the table, so spans do not pay for it."""
    from tracer._handoff import FALLBACK, Handoff

    handoff = Handoff(str(tmp_path / "nobody-listens.sock"))
    try:
        handoff.begin("r1", None)
        assert handoff.mode == FALLBACK
        span = LeanTracerProvider(handoff).get_tracer("orders").start_span("process_order")
        assert span._open_slot is None and len(handoff.open_spans._free) == SLOTS
        span.end()
    finally:
        handoff.close()
