"""The ring on its own: frames in, the same frames out (through the extension's reader too), wrapping around,
full, too big, and with the memory barriers arm64 needs switched on here."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator

import pytest

from extension.ring import FunctionStream, RingReader
from tracer import _ring, wire
from tracer._ring import NO_ROOM, TOO_BIG, Ring, count_frames

CAPACITY = 4096


def record(name: str, size: int = 0) -> list[object]:
    return [b"\x01" * 16, b"\x02" * 8, None, name, 0, 1, 2, {"pad": "p" * size} if size else None, None, None, 0,
            None, "scope", None, 1, None, [0, 0, 0]]


@pytest.fixture(params=[False, True], ids=["x86 order", "with barriers"])
def ring(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ring]:
    monkeypatch.setattr(_ring, "NEEDS_FENCE", request.param)
    monkeypatch.setattr(wire, "RING_NEEDS_FENCE", request.param)
    made = Ring(CAPACITY)
    yield made
    made.close()


def names(frames: bytes) -> list[str]:
    return [span[wire.NAME] for kind, payload in wire.FrameReader(wire.VERSION).feed(frames) for span in payload]


def test_spans_come_back_in_order_across_the_wrap(ring: Ring) -> None:
    written: list[str] = []
    for lap in range(12):  # ~1.5 KB per lap through a 4 KiB ring: frames wrap around its end
        for number in range(5):
            name = f"{lap}-{number}"
            assert ring.put_span(record(name, 200)) != NO_ROOM
            written.append(name)
        assert names(ring.take()) == written[-5:]
    assert ring.unread == 0


def test_a_full_ring_refuses_without_writing_and_a_frame_over_the_limit_is_too_big(ring: Ring) -> None:
    results = [ring.put_span(record(str(number), 500)) for number in range(10)]
    assert NO_ROOM in results
    kept = [str(number) for number, result in enumerate(results) if result != NO_ROOM]
    assert names(ring.take()) == kept  # what did not fit left no trace
    big = Ring(1 << 23)
    try:
        assert big.put_span(record("huge", wire.MAX_PAYLOAD)) == TOO_BIG
        assert big.written == 0
    finally:
        big.close()


def test_the_extension_reads_what_was_written_and_the_function_sees_the_room_it_made(ring: Ring) -> None:
    assert ring.fd is not None
    reader = RingReader(os.dup(ring.fd))
    try:
        for lap in range(8):
            for number in range(6):
                assert ring.put_span(record(f"{lap}-{number}", 100)) != NO_ROOM
            assert names(reader.read_to(ring.written)) == [f"{lap}-{number}" for number in range(6)]
            assert ring.unread == 0  # the read position the extension stored
    finally:
        reader.close()


def test_frames_carried_to_another_ring_arrive_whole(ring: Ring) -> None:
    ring.put_span(record("earlier"))
    ring.take()
    ring.put_span(record("lost-with-the-reader"))
    since = ring.written
    assert ring.put(wire.START, ["req-1", record("invocation")]) is True
    ring.put_span(record("child"))
    carried = ring.unread_since(since)
    assert count_frames(carried, wire.SPANS) == 1 and count_frames(ring.unread_since(0), wire.SPANS) == 2
    other = Ring(CAPACITY)
    try:
        assert other.put_frames(carried)
        frames = wire.FrameReader(wire.VERSION).feed(other.take())
        assert [kind for kind, _ in frames] == [wire.START, wire.SPANS]
    finally:
        other.close()


def test_a_stream_reads_the_ring_up_to_end_and_everything_at_drain() -> None:
    ring = Ring(CAPACITY)
    stream = FunctionStream()
    try:
        assert ring.fd is not None
        hello = wire.frame(wire.HELLO, {"tracer": "t", "pid": 1, "resource": {}, "ring": CAPACITY})
        assert next(iter(stream.receive(hello, [os.dup(ring.fd)])))[0] == wire.HELLO  # type: ignore[index]
        ring.put(wire.START, ["req-1", record("invocation")])
        ring.put_span(record("a"))
        ring.put_span(record("b"))
        end_at = ring.written
        ring.put_span(record("after-end"))
        items = list(stream.receive(wire.frame(wire.END, ["req-1", True, {}, end_at])))
        assert [item[0] for item in items] == [wire.START, wire.SPANS, wire.END]  # type: ignore[index]
        assert [span[wire.NAME] for span in items[1][1]] == ["a", "b"]  # type: ignore[index]  # merged
        assert [span[wire.NAME] for _, payload in stream.drain() for span in payload] == ["after-end"]  # type: ignore[misc]
    finally:
        stream.close()
        ring.close()


def test_without_memfd_the_ring_lives_in_an_unlinked_file_the_extension_can_map(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "memfd_create", refuse)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read once and cached
    ring = Ring(CAPACITY)
    try:
        assert ring.fd is not None and os.listdir(str(tmp_path)) == []  # already unlinked
        ring.put_span(record("kept"))
        reader = RingReader(os.dup(ring.fd))
        try:
            assert names(reader.read_to(ring.written)) == ["kept"]
        finally:
            reader.close()
    finally:
        ring.close()


def test_a_large_read_hands_back_only_pages_whose_frames_it_just_read() -> None:
    """The function may write into a page as soon as the read position has passed it: pages read earlier must
    never be handed back by a later read (the kernel would zero frames not read yet)."""
    ring = Ring(1 << 20)
    assert ring.fd is not None
    reader = RingReader(os.dup(ring.fd))
    expected: list[str] = []
    got: list[str] = []

    def write(count: int) -> None:
        for _ in range(count):
            name = f"s{len(expected)}"
            assert ring.put_span(record(name, 900)) < ring.capacity
            expected.append(name)

    try:
        write(200)  # ~200 KB, read in one small read: nothing handed back
        got += names(reader.read_to(ring.written))
        write(500)
        drain_at = ring.written  # as a DRAIN would name it
        write(450)  # past the end: onto the first pages, read above
        assert ring.written > ring.capacity + 4 * mmap.PAGESIZE
        got += names(reader.read_to(drain_at))  # a large read: its own pages go back
        got += names(reader.read_to(ring.written))
        assert got == expected
    finally:
        reader.close()
        ring.close()


def test_once_everything_is_read_the_next_invocation_starts_on_the_first_page(ring: Ring) -> None:
    assert ring.fd is not None
    stream = FunctionStream()
    try:
        stream.receive(wire.frame(wire.HELLO, {"tracer": "t", "pid": 1, "resource": {}, "ring": CAPACITY}),
                       [os.dup(ring.fd)])
        for number in range(10):
            ring.rewind()
            assert ring.written % CAPACITY == 0  # each invocation starts a lap
            ring.put(wire.START, [f"req-{number}", record("invocation")])
            ring.put_span(record(f"child-{number}", 100))
            items = list(stream.receive(wire.frame(wire.END, [f"req-{number}", True, {}, ring.written])))
            assert [item[0] for item in items] == [wire.START, wire.SPANS, wire.END]  # type: ignore[index]
            assert items[1][1][0][wire.NAME] == f"child-{number}"  # type: ignore[index]
        ring.put_span(record("unread"))
        before = ring.written
        ring.rewind()  # something unread: no skip
        assert ring.written == before
    finally:
        stream.close()


def test_a_burst_is_read_a_step_at_a_time_and_each_step_frees_its_room() -> None:
    """A ring read in steps (as the extension reads a burst): each step is marked read before the next is copied,
    so the function may write again while the extension decodes, and what comes out is every frame, in order,
    whole even where a frame straddles two steps."""
    from extension import ring as reading

    ring = Ring(1 << 20)
    assert ring.fd is not None
    stream = FunctionStream()
    try:
        list(stream.receive(wire.frame(wire.HELLO, {"tracer": "t", "pid": 1, "resource": {}, "ring": 1 << 20}),
                            [os.dup(ring.fd)]))
        expected = [f"s{number}" for number in range(900)]
        for name in expected:
            assert ring.put_span(record(name, 997)) < ring.capacity  # ~1 KB each, not a divisor of a step
        items = stream.drain()
        got: list[str] = []
        read_positions: list[int] = []
        for item in items:
            assert not isinstance(item, wire.WireError)
            got += [span[wire.NAME] for span in item[1]]
            read_positions.append(ring.read)
        assert got == expected
        assert ring.read == ring.written > 3 * reading.READ_STEP
        assert len(set(read_positions)) >= 3  # the function saw its room come back step by step
        assert all(position % mmap.PAGESIZE == 0 for position in sorted(set(read_positions))[:-1])
    finally:
        stream.close()
        ring.close()


def test_the_function_writes_into_a_steps_room_while_the_rest_of_the_burst_is_read() -> None:
    """A step's room is the function's again before the next step is copied (its pages handed back to the kernel):
    frames written there meanwhile come out whole, after the burst, and the burst's own frames are untouched."""
    ring = Ring(1 << 20)
    assert ring.fd is not None
    stream = FunctionStream()
    try:
        list(stream.receive(wire.frame(wire.HELLO, {"tracer": "t", "pid": 1, "resource": {}, "ring": 1 << 20}),
                            [os.dup(ring.fd)]))
        burst = [f"b{number}" for number in range(900)]
        for name in burst:
            assert ring.put_span(record(name, 997)) < ring.capacity
        reading = iter(stream.drain())
        got = [span[wire.NAME] for span in next(reading)[1]]  # type: ignore[index]
        later = [f"l{number}" for number in range(200)]  # ~200 KB: past the ring's end, onto the first step's pages
        for name in later:
            assert ring.put_span(record(name, 997)) < ring.capacity
        got += [span[wire.NAME] for item in reading for span in item[1]]  # type: ignore[index]
        assert got == burst
        assert [span[wire.NAME] for item in stream.drain() for span in item[1]] == later  # type: ignore[index]
    finally:
        stream.close()
        ring.close()


def test_a_capped_read_stops_where_there_is_no_room_and_the_rest_waits_in_the_ring() -> None:
    """Back-pressure: a pass's read (``drain(capped=True)``) and a DRAIN's stop before a step when ``room`` says
    no; what they did not take stays in the ring, unread (the function sees it), and comes out whole, in order,
    once there is room again. END's reads are never cut short."""
    ring = Ring(1 << 20)
    assert ring.fd is not None
    stream = FunctionStream(polled=True)
    allowed = [1]  # steps the buffer has room for

    def room() -> bool:
        allowed[0] -= 1
        return allowed[0] >= 0

    stream.room = room
    try:
        list(stream.receive(wire.frame(wire.HELLO, {"tracer": "t", "pid": 1, "resource": {}, "ring": 1 << 20}),
                            [os.dup(ring.fd)]))
        burst = [f"s{number}" for number in range(900)]  # ~900 KB: several steps
        for name in burst:
            ring.put_span(record(name, 997))
        got = [span[wire.NAME] for item in stream.drain(capped=True) for span in item[1]]  # type: ignore[index]
        assert 0 < len(got) < len(burst)  # one step, then no room
        assert ring.unread > 0  # the rest waits where the function wrote it
        drain_at = ring.written
        allowed[0] = 0
        assert list(stream.receive(wire.frame(wire.DRAIN, [drain_at]))) == []  # no room: DRAIN reads nothing
        allowed[0] = 1_000
        got += [span[wire.NAME] for item in stream.receive(wire.frame(wire.DRAIN, [drain_at]))
                for span in item[1]]  # type: ignore[index]
        assert got == burst and ring.unread == 0
        assert list(stream.receive(wire.frame(wire.DRAIN, [drain_at - 1]))) == []  # a DRAIN already read past
        allowed[0] = 0
        ring.put(wire.START, ["req-2", record("invocation")])
        ring.put_span(record("child"))
        items = list(stream.receive(wire.frame(wire.END, ["req-2", True, {}, ring.written])))  # no room: read anyway
        assert [item[0] for item in items] == [wire.START, wire.SPANS, wire.END]  # type: ignore[index]
    finally:
        stream.close()
        ring.close()


def test_the_hold_bound_the_extension_stores_is_what_the_function_reads() -> None:
    """The ring's hold word (``wire.RING_HOLD_MS_WORD``): zero until an extension stores it (an older one never
    does), stored on HELLO and whenever it changes."""
    ring = Ring(CAPACITY)
    assert ring.fd is not None
    stream = FunctionStream(polled=True)
    try:
        assert ring.hold_ms == 0
        stream.hold(250)  # before HELLO: stored when the ring arrives
        list(stream.receive(wire.frame(wire.HELLO, {"tracer": "t", "pid": 1, "resource": {}, "ring": CAPACITY}),
                            [os.dup(ring.fd)]))
        assert ring.hold_ms == 250
        stream.hold(0)  # the collector failing: never wait for us
        assert ring.hold_ms == 0
    finally:
        stream.close()
        ring.close()


@pytest.fixture(params=[True, False], ids=["counted at SHUTDOWN's start", "counted at the halt"])
def counted_first(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_a_halted_stream_counts_what_it_did_not_read_without_decoding_it(counted_first: bool) -> None:
    """SHUTDOWN with no time left (``halt``): the read in progress stops at its next step, and the spans not read
    are counted off the frames' headers (at SHUTDOWN's start, less what was decoded since; or at the halt): the rest
    of the ring, a frame the last step cut in two, a version 1 socket's SPANS frames of many spans. Read plus
    counted is every span written."""
    ring = Ring(1 << 20)
    assert ring.fd is not None
    stream = FunctionStream(polled=True)
    try:
        list(stream.receive(wire.frame(wire.HELLO, {"tracer": "t", "pid": 1, "resource": {}, "ring": 1 << 20}),
                            [os.dup(ring.fd)]))
        ring.put(wire.START, ["req-1", record("invocation")])
        for number in range(900):
            ring.put_span(record(f"s{number}", 997))  # ~900 KB: several steps, frames straddling them
        ring.put(wire.END, ["req-1", True, {}, ring.written])
        if counted_first:
            stream.count_unread()
        read = 0
        for item in stream.drain():
            assert not isinstance(item, wire.WireError)
            if item[0] == wire.SPANS:
                read += len(item[1])
            if read:
                stream.halt()  # during the first step's frames: the next step is not read
        assert 0 < read < 900 and ring.unread > 0
        assert list(stream.drain()) == []  # halted: nothing more is read
        assert read + stream.unread_spans() == 900
        many = wire.frame(wire.SPANS, [record(f"v{number}") for number in range(300)], wire.PREVIOUS_VERSION)
        assert wire.count_spans(many + wire.frame(wire.SPANS, [record("one")])[:12]) == 301  # array 16; cut short
    finally:
        stream.close()
        ring.close()
