"""The assembler: when an invocation is over, and the invocation span of one that died."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import pytest

from tracer import wire
from tracer.export.assembler import Assembler, Outcome
from tracer.export.buffer import SpanBuffer
from tracer.export.stats import Stats

CONN = 1


def record(name: str, trace_id: bytes, parent: bytes | None = None, end: bool = True, **kw: Any) -> list[Any]:
    start = time.time_ns() - 5_000_000
    return [
        trace_id,
        os.urandom(8),
        parent,
        name,
        kw.get("kind", 0),
        start,
        start + 1_000_000 if end else 0,
        kw.get("attributes", {"a": 1}),
        None,
        None,
        kw.get("status", 0),
        None,
        "tests",
        None,
        1,
        None,
        [0, 0, 0],
    ]


class World:
    def __init__(self) -> None:
        self.stats = Stats()
        self.buffer = SpanBuffer(1000, self.stats)
        self.assembler = Assembler(self.buffer, self.stats)
        self.assembler.connected(CONN)
        self.assembler.hello(CONN, {"tracer": "t", "pid": 1, "resource": {"service.name": "svc"}})
        self.trace_id = os.urandom(16)
        self.syncs = 0

    def sync(self) -> None:
        self.syncs += 1

    def start(self, request_id: str) -> list[Any]:
        root = record("handler", self.trace_id, kind=1, end=False, attributes={"faas.invocation_id": request_id})
        self.assembler.start(CONN, request_id, root)
        return root

    def children(self, root: list[Any], count: int) -> None:
        spans = [record(f"child-{i}", self.trace_id, root[wire.SPAN_ID]) for i in range(count)]
        self.assembler.spans(CONN, spans, [100] * count)

    def buffered(self) -> list[list[Any]]:
        lease = self.buffer.take(10_000, 10**9)
        if lease is None:
            return []
        self.buffer.release(lease)
        return [span for batch in lease.batches for span in batch.spans]


def test_end_completes_the_invocation_with_every_span_buffered() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    root = world.start("r1")
    world.children(root, 9)
    finished = list(root)
    finished[wire.END_NS] = time.time_ns()
    world.assembler.spans(CONN, [finished], [100])
    world.assembler.end(CONN, "r1", True, {})
    assert world.assembler.wait("r1", None, world.sync) is Outcome.ENDED
    spans = world.buffered()
    assert len(spans) == 10 and spans[-1][wire.NAME] == "handler" and spans[-1][wire.STATUS_CODE] == 0
    assert world.stats.received == 10 and world.stats.synthesized == 0


def test_runtime_done_without_start_means_nothing_to_export() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    world.assembler.runtime_done("r1", "success")
    assert world.assembler.wait("r1", None, world.sync) is Outcome.UNTRACED
    assert world.buffered() == [] and world.syncs == 1


def test_a_crash_yields_the_invocation_span_marked_crash_next_to_its_children() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    root = world.start("r1")
    world.children(root, 3)
    world.assembler.runtime_done("r1", "failure", "Runtime.ExitError")
    assert world.assembler.wait("r1", None, world.sync) is Outcome.CRASHED
    spans = world.buffered()
    assert [span[wire.NAME] for span in spans] == ["child-0", "child-1", "child-2", "handler"]
    invocation = spans[-1]
    assert invocation[wire.SPAN_ID] == root[wire.SPAN_ID]
    assert invocation[wire.STATUS_CODE] == 2 and "Runtime.ExitError" in invocation[wire.STATUS_DESCRIPTION]
    assert invocation[wire.ATTRIBUTES] == {"faas.invocation_id": "r1", "faas.error": "crash"}
    assert invocation[wire.END_NS] >= invocation[wire.START_NS]
    assert world.stats.synthesized == 1


def test_an_end_still_in_the_socket_is_read_before_declaring_the_invocation_dead() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    world.start("r1")
    world.assembler.runtime_done("r1", "success")

    def sync() -> None:  # the receiver drains the socket and finds the END
        world.assembler.end(CONN, "r1", True, {})

    assert world.assembler.wait("r1", None, sync) is Outcome.ENDED
    assert world.stats.synthesized == 0


def test_past_the_deadline_the_invocation_span_says_timeout_and_ends_at_the_deadline() -> None:
    world = World()
    deadline_ms = int(time.time() * 1000) + 60
    world.assembler.invoke("r1", deadline_ms)
    root = world.start("r1")
    world.children(root, 3)
    assert world.assembler.wait("r1", 0.01, world.sync) is Outcome.TIMED_OUT
    invocation = world.buffered()[-1]
    assert invocation[wire.STATUS_CODE] == 2 and invocation[wire.STATUS_DESCRIPTION].startswith("Task timed out after")
    assert invocation[wire.ATTRIBUTES]["faas.error"] == "timeout"
    assert invocation[wire.END_NS] == deadline_ms * 1_000_000
    assert len(world.buffered()) == 4


def test_the_platform_reporting_a_timeout_marks_timeout() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    world.start("r1")
    world.assembler.runtime_done("r1", "timeout", "Sandbox.Timedout")
    assert world.assembler.wait("r1", None, world.sync) is Outcome.TIMED_OUT
    assert world.buffered()[-1][wire.ATTRIBUTES]["faas.error"] == "timeout"


def test_the_function_process_going_away_mid_invocation_is_a_crash_without_telemetry() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    root = world.start("r1")
    world.children(root, 2)
    threading.Timer(0.02, world.assembler.disconnected, args=(CONN,)).start()
    assert world.assembler.wait("r1", 0.01, world.sync) is Outcome.CRASHED
    assert world.buffered()[-1][wire.ATTRIBUTES]["faas.error"] == "crash"


def test_without_telemetry_an_untraced_invocation_does_not_hold_until_the_deadline() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 60_000)
    began = time.monotonic()
    assert world.assembler.wait("r1", 0.02, world.sync) is Outcome.PENDING
    assert time.monotonic() - began < 30  # nowhere near the 60 s deadline
    # ...and a late START/END is still assembled: nothing is lost, it goes with the next flush
    root = world.start("r1")
    world.children(root, 2)
    world.assembler.end(CONN, "r1", True, {})
    assert len(world.buffered()) == 2


def test_an_open_invocation_left_behind_by_a_new_invoke_is_emitted_as_incomplete(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="afterglow.extension")
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    world.start("r1")
    assert world.assembler.open_invocations(exclude="r2") == ["r1"]
    world.assembler.finalize("r1", Outcome.INCOMPLETE)
    invocation = world.buffered()[-1]
    assert invocation[wire.STATUS_CODE] == 0 and invocation[wire.ATTRIBUTES]["afterglow.incomplete"] is True
    assert world.assembler.open_invocations() == []
    (said,) = [record.getMessage() for record in caplog.records if "r1" in record.getMessage()]
    assert "afterglow.incomplete" in said and "died" not in said and "ERROR" not in said  # what the span says


def test_end_reports_the_function_sides_drops() -> None:
    world = World()
    world.assembler.end(CONN, "r1", True, {"queue_full": 3, "too_large": 1})
    assert world.stats.dropped == {"function.queue_full": 3, "function.too_large": 1}


def test_spans_outside_any_invocation_are_kept_with_their_process_resource() -> None:
    world = World()
    world.children(record("init", world.trace_id), 2)  # e.g. spans made while the module was imported
    lease = world.buffer.take(10, 10**9)
    assert lease is not None
    assert lease.batches[0].key is None and lease.batches[0].resource == {"service.name": "svc"}


def test_finalize_open_at_shutdown_emits_every_open_invocation() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    world.start("r1")
    assert world.assembler.finalize_open(Outcome.TIMED_OUT) == 1
    assert world.buffered()[-1][wire.ATTRIBUTES]["faas.error"] == "timeout"
    assert world.assembler.finalize_open(Outcome.TIMED_OUT) == 0


def test_the_real_span_of_an_invocation_already_emitted_as_dead_is_not_exported_twice() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    root = world.start("r1")
    world.assembler.finalize("r1", Outcome.INCOMPLETE)
    late = list(root)
    late[wire.END_NS] = time.time_ns()
    world.assembler.spans(CONN, [late], [100])  # its END had been stuck; the real span arrives after all
    assert [span[wire.SPAN_ID] for span in world.buffered()] == [root[wire.SPAN_ID]]
    assert world.stats.dropped == {"superseded": 1}


def test_records_of_untraced_invocations_do_not_pile_up() -> None:
    world = World()
    for index in range(1000):
        world.assembler.invoke(f"r{index}", int(time.time() * 1000) + 3000)
    assert len(world.assembler._invocations) <= 300


def test_spans_open_when_the_process_died_end_with_its_invocation_span() -> None:
    world = World()
    world.assembler.invoke("r1", int(time.time() * 1000) + 3000)
    root = world.start("r1")
    world.children(root, 1)
    order = record("process_order", world.trace_id, root[wire.SPAN_ID], end=False, attributes=None)
    query = record("db.query", world.trace_id, order[wire.SPAN_ID], end=False, attributes=None, kind=2)
    # the table as read once the process is gone; the invocation span in it too (START stands for it)
    world.assembler.unended(CONN, [list(root), order, query])
    world.assembler.disconnected(CONN)
    assert world.assembler.wait("r1", None, world.sync) is Outcome.CRASHED
    spans = {span[wire.NAME]: span for span in world.buffered()}
    assert sorted(spans) == ["child-0", "db.query", "handler", "process_order"]
    invocation = spans["handler"]
    assert invocation[wire.ATTRIBUTES]["faas.error"] == "crash"
    for name in ("process_order", "db.query"):
        span = spans[name]
        assert span[wire.STATUS_CODE] == 2 and span[wire.ATTRIBUTES] == {"afterglow.span.unended": True}
        assert span[wire.END_NS] == invocation[wire.END_NS]
    assert spans["db.query"][wire.PARENT_SPAN_ID] == order[wire.SPAN_ID] and spans["db.query"][wire.KIND] == 2
    assert world.stats.synthesized == 3


def test_a_span_open_when_the_invocation_timed_out_ends_at_the_deadline() -> None:
    world = World()
    deadline_ms = int(time.time() * 1000) + 50
    world.assembler.invoke("r1", deadline_ms)
    root = world.start("r1")
    world.assembler.unended(CONN, [record("slow call", world.trace_id, root[wire.SPAN_ID], end=False)])
    world.assembler.finalize_open(Outcome.TIMED_OUT)
    slow = next(span for span in world.buffered() if span[wire.NAME] == "slow call")
    assert slow[wire.END_NS] == deadline_ms * 1_000_000
    assert "timed out" in slow[wire.STATUS_DESCRIPTION] and slow[wire.ATTRIBUTES]["afterglow.span.unended"] is True


def test_a_span_open_outside_any_invocation_ends_when_the_process_is_gone() -> None:
    world = World()
    before = time.time_ns()
    world.assembler.unended(CONN, [record("background poll", world.trace_id, end=False, attributes=None)])
    (span,) = world.buffered()
    assert span[wire.END_NS] >= before and span[wire.STATUS_CODE] == 2


def test_the_real_span_of_one_emitted_as_unended_is_not_exported_twice() -> None:
    world = World()
    open_one = record("process_order", world.trace_id, end=False, attributes=None)
    world.assembler.unended(CONN, [open_one])
    late = list(open_one)
    late[wire.END_NS] = time.time_ns()
    world.assembler.spans(CONN, [late], [100])
    assert len(world.buffered()) == 1 and world.stats.dropped == {"superseded": 1}
    world.assembler.unended(CONN, [open_one])  # read twice: emitted once
    assert len(world.buffered()) == 1
