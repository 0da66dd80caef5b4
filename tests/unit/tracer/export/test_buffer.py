"""The bounded span buffer: drop order, leases, and never sending a chunk twice."""

from __future__ import annotations

from tracer.export.buffer import SpanBuffer
from tracer.export.stats import Stats


def spans(*names: str) -> list[list[str]]:
    return [[name] for name in names]


def names(buffer: SpanBuffer) -> list[str]:
    lease = buffer.take(10_000, 10**9)
    if lease is None:
        return []
    buffer.release(lease)
    return [span[0] for batch in lease.batches for span in batch.spans]


def test_holds_at_most_max_spans_and_drops_the_oldest_first_counted_by_reason() -> None:
    stats = Stats()
    buffer = SpanBuffer(5, stats)
    resource: dict[str, object] = {}
    buffer.add(resource, "r1", spans("a", "b", "c"), [1, 1, 1])
    buffer.add(resource, "r2", spans("d", "e", "f", "g"), [1] * 4)
    assert buffer.held == 5
    assert names(buffer) == ["c", "d", "e", "f", "g"]
    assert stats.dropped == {"buffer_full": 2}


def test_a_lease_is_out_of_the_buffer_until_released_and_comes_back_in_order() -> None:
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    resource: dict[str, object] = {}
    buffer.add(resource, "r1", spans("a", "b"), [1, 1])
    buffer.add(resource, "r2", spans("c"), [1])
    lease = buffer.take(2, 10**9)
    assert lease is not None and lease.spans == 2
    assert buffer.pending == 1 and buffer.held == 3
    second = buffer.take(10, 10**9)  # a concurrent flush never gets the leased spans
    assert second is not None and [s[0] for b in second.batches for s in b.spans] == ["c"]
    buffer.release(second)
    buffer.release(lease)
    assert names(buffer) == ["a", "b", "c"]


def test_committed_spans_are_gone_for_good_and_counted_as_exported() -> None:
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    buffer.add({}, "r1", spans("a", "b"), [1, 1])
    lease = buffer.take(10, 10**9)
    assert lease is not None
    buffer.commit(lease)
    assert buffer.held == 0 and buffer.take(10, 10**9) is None
    assert stats.exported == 2


def test_discarded_spans_are_dropped_with_their_reason() -> None:
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    buffer.add({}, None, spans("a"), [1])
    lease = buffer.take(10, 10**9)
    assert lease is not None
    buffer.discard(lease, "rejected")
    assert buffer.held == 0 and stats.dropped == {"rejected": 1} and stats.exported == 0


def test_a_lease_in_flight_never_makes_newer_spans_drop_and_the_bound_applies_when_it_returns() -> None:
    stats = Stats()
    buffer = SpanBuffer(3, stats)
    buffer.add({}, "r1", spans("a", "b", "c"), [1, 1, 1])
    lease = buffer.take(10, 10**9)
    assert lease is not None
    buffer.add({}, "r2", spans("d", "e"), [1, 1])
    assert stats.dropped == {}
    buffer.release(lease)  # unsent: five held, the two oldest go
    assert names(buffer) == ["c", "d", "e"]
    assert stats.dropped == {"buffer_full": 2}


def test_a_committed_lease_leaves_the_newer_spans_alone() -> None:
    stats = Stats()
    buffer = SpanBuffer(3, stats)
    buffer.add({}, "r1", spans("a", "b"), [1, 1])
    lease = buffer.take(10, 10**9)
    assert lease is not None
    buffer.add({}, "r2", spans("c", "d", "e", "f"), [1] * 4)  # only unleased spans count: "c" goes
    assert stats.dropped == {"buffer_full": 1}
    buffer.commit(lease)
    assert names(buffer) == ["d", "e", "f"]


def test_take_respects_the_span_and_byte_caps_but_always_takes_one_span() -> None:
    buffer = SpanBuffer(100, Stats())
    buffer.add({}, "r1", spans("a", "b", "c"), [10, 10, 10])
    buffer.add({}, "r2", spans("d"), [1000])
    first = buffer.take(2, 10**9)
    assert first is not None and first.spans == 2
    second = buffer.take(10, 25)  # "c" fits, "d" would not
    assert second is not None and [s[0] for b in second.batches for s in b.spans] == ["c"]
    third = buffer.take(10, 25)  # larger than the cap alone: still sent, on its own
    assert third is not None and third.spans == 1 and third.nbytes == 1000


def test_spans_of_one_invocation_and_process_share_a_batch() -> None:
    buffer = SpanBuffer(100, Stats())
    process_a: dict[str, object] = {"service.name": "a"}
    process_b: dict[str, object] = {"service.name": "a"}  # equal but another process: kept apart
    buffer.add(process_a, "r1", spans("a"), [1])
    buffer.add(process_a, "r1", spans("b"), [1])
    buffer.add(process_b, "r1", spans("c"), [1])
    buffer.add(process_b, "r2", spans("d"), [1])
    lease = buffer.take(100, 10**9)
    assert lease is not None
    assert [(b.key, [s[0] for s in b.spans]) for b in lease.batches] == [
        ("r1", ["a", "b"]),
        ("r1", ["c"]),
        ("r2", ["d"]),
    ]
    assert lease.batches[0].resource is process_a and lease.batches[1].resource is process_b


def test_clear_counts_what_could_not_be_sent() -> None:
    stats = Stats()
    buffer = SpanBuffer(100, stats)
    buffer.add({}, "r1", spans("a", "b"), [1, 1])
    assert buffer.clear("shutdown") == 2
    assert stats.dropped == {"shutdown": 2} and buffer.held == 0


def test_holds_at_most_max_bytes_and_drops_the_oldest_first_counted_as_buffer_full() -> None:
    stats = Stats()
    buffer = SpanBuffer(1000, stats, max_bytes=1000)
    resource: dict[str, object] = {}
    buffer.add(resource, "r1", spans("a", "b", "c"), [300, 300, 300])
    assert buffer.held == 3 and buffer.held_bytes == 900 and not stats.dropped
    buffer.add(resource, "r2", spans("d", "e"), [50, 400])  # 1350 bytes: a and b (600) must go
    assert names(buffer) == ["c", "d", "e"]
    assert buffer.held_bytes == 750
    assert stats.dropped == {"buffer_full": 2}


def test_one_span_larger_than_the_byte_bound_is_dropped_itself() -> None:
    stats = Stats()
    buffer = SpanBuffer(1000, stats, max_bytes=1000)
    buffer.add({}, "r1", spans("small"), [10])
    buffer.add({}, "r1", spans("huge"), [5000])
    assert names(buffer) == [] and buffer.held == 0 and buffer.held_bytes == 0
    assert stats.dropped == {"buffer_full": 2}


def test_the_byte_bound_spares_a_lease_in_flight_and_applies_again_when_it_comes_back() -> None:
    stats = Stats()
    buffer = SpanBuffer(1000, stats, max_bytes=1000)
    resource: dict[str, object] = {}
    buffer.add(resource, "r1", spans("a", "b"), [400, 400])
    lease = buffer.take(10, 10**9)
    assert lease is not None and lease.nbytes == 800
    buffer.add(resource, "r2", spans("c", "d"), [400, 400])  # 800 unleased: within the bound
    assert not stats.dropped and buffer.held_bytes == 1600
    assert buffer.release(lease) == 2  # back in front: 1600 > 1000, the oldest (the lease's) go
    assert names(buffer) == ["c", "d"] and buffer.held_bytes == 800
    assert stats.dropped == {"buffer_full": 2}


def test_bytes_leave_with_commits_discards_and_clears() -> None:
    stats = Stats()
    buffer = SpanBuffer(1000, stats, max_bytes=10_000)
    buffer.add({}, "r1", spans("a", "b", "c"), [100, 200, 300])
    first = buffer.take(1, 10**9)
    second = buffer.take(1, 10**9)
    assert first is not None and second is not None
    buffer.commit(first)
    buffer.discard(second, "rejected")
    assert buffer.held_bytes == 300
    buffer.clear("shutdown")
    assert buffer.held_bytes == 0 and buffer.held == 0


def test_passing_the_byte_high_water_mark_calls_back() -> None:
    calls: list[int] = []
    buffer = SpanBuffer(1000, Stats(), max_bytes=10_000)
    buffer.high_water_bytes = 500
    buffer.on_high_water = lambda: calls.append(buffer.held_bytes)
    buffer.add({}, "r1", spans("a"), [300])
    buffer.add({}, "r1", spans("b"), [300])
    assert calls == [600]
