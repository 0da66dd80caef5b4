"""Lean spans behave as the SDK's where a caller can see it: the same scenario runs against both providers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.span import INVALID_SPAN, NonRecordingSpan, SpanContext, TraceFlags, TraceState

from tests.unit.tracer.conftest import Pair
from tracer import wire
from tracer._span import LeanSpan

Scenario = Callable[[trace_api.Tracer], Any]


def summary_of_lean(spans: list[LeanSpan]) -> dict[str, Any]:
    names = {span.get_span_context().span_id: span.name for span in spans}
    out = {}
    for span in spans:
        parent = span.parent
        out[span.name] = {
            "kind": span.kind,
            "parent": names.get(parent.span_id, "remote") if parent else None,
            "status": (span.status.status_code, span.status.description),
            "attributes": dict(span.attributes),
            "events": [(name, _comparable(attributes)) for name, _, attributes in span.events],
            "sampled": span.get_span_context().trace_flags.sampled,
        }
    return out


def summary_of_sdk(spans: list[Any]) -> dict[str, Any]:
    names = {span.context.span_id: span.name for span in spans}
    out = {}
    for span in spans:
        out[span.name] = {
            "kind": span.kind,
            "parent": names.get(span.parent.span_id, "remote") if span.parent else None,
            "status": (span.status.status_code, span.status.description),
            "attributes": {key: list(value) if isinstance(value, tuple) else value
                           for key, value in span.attributes.items()},
            "events": [(event.name, _comparable(event.attributes)) for event in span.events],
            "sampled": span.context.trace_flags.sampled,
        }
    return out


def _comparable(attributes: Any) -> dict[str, Any]:
    out = dict(attributes)
    if "exception.escaped" in out:
        # The SDK sends the string "True"/"False"; we send the boolean the conventions define.
        out["exception.escaped"] = str(out["exception.escaped"])
    if "exception.stacktrace" in out:
        # The SDK's trace also shows its own generator frames (use_span); the user's frames are the same.
        out["exception.stacktrace"] = out["exception.stacktrace"].splitlines()[-3:]
    return out


def run_both(pair: Pair, scenario: Scenario) -> tuple[dict[str, Any], dict[str, Any]]:
    for tracer in (pair.lean.get_tracer("test", "1.0"), pair.sdk.get_tracer("test", "1.0")):
        with contextlib.suppress(Exception):
            scenario(tracer)
    return summary_of_lean(pair.sink.ended), summary_of_sdk(list(pair.exporter.get_finished_spans()))


# --- parents, context, current span -----------------------------------------------------------------------


def nested(tracer: trace_api.Tracer) -> None:
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"a": 1}) as root:
        assert trace_api.get_current_span() is root
        with tracer.start_as_current_span("child") as child:
            assert trace_api.get_current_span() is child
            child.set_attribute("b", "x")
            child.add_event("checkpoint", {"n": 2})
            detached = tracer.start_span("detached")  # parent: the current span, but not made current
            assert trace_api.get_current_span() is child
            detached.end()
        assert trace_api.get_current_span() is root
        explicit = tracer.start_span("explicit", context=trace_api.set_span_in_context(child))
        explicit.end()
        with trace_api.use_span(tracer.start_span("used"), end_on_exit=True):
            pass
    assert trace_api.get_current_span() is INVALID_SPAN


def test_parents_and_current_span_match_the_sdk(pair: Pair) -> None:
    lean, sdk = run_both(pair, nested)
    assert lean == sdk
    assert lean["child"]["parent"] == "root"
    assert lean["detached"]["parent"] == "child"
    assert lean["explicit"]["parent"] == "child"
    spans = pair.sink.by_name()
    assert len({span.get_span_context().trace_id for span in spans.values()}) == 1


def test_root_span_flags_match_the_sdk(pair: Pair) -> None:
    lean_span = pair.lean.get_tracer("t").start_span("root")
    sdk_span = pair.sdk.get_tracer("t").start_span("root")
    # sampled, plus the W3C "random trace id" flag: our ids are random; newer SDKs set it too (1.27 did not)
    assert lean_span.get_span_context().trace_flags == 0x03
    assert sdk_span.get_span_context().trace_flags | 0x02 == 0x03
    assert not lean_span.get_span_context().is_remote


def test_remote_parent_from_context(pair: Pair) -> None:
    remote = SpanContext(0x1234, 0x5678, True, TraceFlags(1), TraceState([("vendor", "v1")]))

    def scenario(tracer: trace_api.Tracer) -> None:
        with tracer.start_as_current_span("server", context=trace_api.set_span_in_context(NonRecordingSpan(remote))):
            pass

    lean, sdk = run_both(pair, scenario)
    assert lean == sdk == {"server": lean["server"]}
    span = pair.sink.ended[0]
    assert span.get_span_context().trace_id == 0x1234
    assert span.get_span_context().trace_state == remote.trace_state
    record = span.to_record()
    assert record[wire.PARENT_SPAN_ID] == (0x5678).to_bytes(8, "big")
    assert record[wire.TRACE_STATE] == "vendor=v1"


def test_context_crosses_threads_and_asyncio_tasks(provider: Any, sink: Any) -> None:
    tracer = provider.get_tracer("t")

    async def child_task() -> None:
        with tracer.start_as_current_span("in-task"):
            await asyncio.sleep(0)

    async def main() -> None:
        with tracer.start_as_current_span("root"):
            await asyncio.gather(asyncio.create_task(child_task()), asyncio.create_task(child_task()))

    asyncio.run(main())
    with tracer.start_as_current_span("threaded-root"):
        context = context_api.get_current()

        def work() -> None:
            token = context_api.attach(context)
            try:
                tracer.start_span("in-thread").end()
            finally:
                context_api.detach(token)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    spans = sink.ended
    root = next(s for s in spans if s.name == "root")
    assert [s.parent.span_id for s in spans if s.name == "in-task"] == [root.get_span_context().span_id] * 2
    threaded = next(s for s in spans if s.name == "threaded-root")
    assert next(s for s in spans if s.name == "in-thread").parent.span_id == threaded.get_span_context().span_id


# --- start_as_current_span as a decorator ---------------------------------------------------------------


def test_decorator_sync_and_async(pair: Pair) -> None:
    def scenario(tracer: trace_api.Tracer) -> None:
        @tracer.start_as_current_span("sync-op")
        def sync_op(x: int) -> int:
            return x + 1

        @tracer.start_as_current_span("async-op")
        async def async_op() -> str:
            await asyncio.sleep(0.01)
            return "done"

        assert sync_op(1) == 2
        assert sync_op(2) == 3
        assert asyncio.run(async_op()) == "done"

    run_both(pair, scenario)
    lean = pair.sink.ended
    assert [span.name for span in lean] == ["sync-op", "sync-op", "async-op"]
    assert lean[0].get_span_context().span_id != lean[1].get_span_context().span_id  # one span per call
    async_span = lean[2]
    assert async_span.end_time - async_span.start_time >= 10_000_000  # covers the awaited work


def test_decorated_function_keeps_its_signature(provider: Any) -> None:
    import inspect

    @provider.get_tracer("t").start_as_current_span("op")
    def operation(a: int, b: str = "x") -> str:
        """Docs."""
        return b * a

    assert operation.__name__ == "operation" and operation.__doc__ == "Docs."
    assert str(inspect.signature(operation)) == "(a: 'int', b: 'str' = 'x') -> 'str'"  # postponed annotations


# --- exceptions and status ---------------------------------------------------------------------------------


def test_exception_in_start_as_current_span_matches_the_sdk(pair: Pair) -> None:
    def scenario(tracer: trace_api.Tracer) -> None:
        with tracer.start_as_current_span("failing"):
            raise KeyError("missing")

    lean, sdk = run_both(pair, scenario)
    assert lean == sdk
    failing = lean["failing"]
    assert failing["status"] == (StatusCode.ERROR, "KeyError: 'missing'")
    (name, attributes), = failing["events"]
    assert name == "exception"
    assert attributes["exception.type"] == "KeyError"
    assert attributes["exception.message"] == "'missing'"
    assert attributes["exception.stacktrace"][-2].strip() == "raise KeyError(\"missing\")"


def test_exception_in_with_start_span_records_escaped(pair: Pair) -> None:
    class Custom(Exception):
        pass

    def scenario(tracer: trace_api.Tracer) -> None:
        with tracer.start_span("manual"):
            raise Custom("boom")

    lean, sdk = run_both(pair, scenario)
    assert lean == sdk
    event = pair.sink.ended[0].events[0]
    assert event[2]["exception.escaped"] is True
    assert event[2]["exception.type"].endswith("test_exception_in_with_start_span_records_escaped.<locals>.Custom")


def test_exception_options_off(pair: Pair) -> None:
    def scenario(tracer: trace_api.Tracer) -> None:
        with tracer.start_as_current_span("quiet", record_exception=False, set_status_on_exception=False):
            raise ValueError("x")

    lean, sdk = run_both(pair, scenario)
    assert lean == sdk
    assert lean["quiet"]["events"] == [] and lean["quiet"]["status"] == (StatusCode.UNSET, None)


def test_base_exceptions_that_are_not_errors_leave_status_alone(pair: Pair) -> None:
    def scenario(tracer: trace_api.Tracer) -> None:
        try:
            with tracer.start_as_current_span("exiting"):
                raise SystemExit(0)
        except SystemExit:
            pass

    lean, sdk = run_both(pair, scenario)
    assert lean == sdk
    assert lean["exiting"]["status"][0] is StatusCode.UNSET


def test_status_rules_match_the_sdk(pair: Pair) -> None:
    def scenario(tracer: trace_api.Tracer) -> None:
        span = tracer.start_span("a")
        span.set_status(StatusCode.ERROR, "first")
        span.set_status(StatusCode.UNSET)  # ignored
        span.end()
        span = tracer.start_span("b")
        span.set_status(Status(StatusCode.OK))
        span.set_status(StatusCode.ERROR, "too late")  # OK is final
        span.end()
        span = tracer.start_span("c")
        span.set_status(StatusCode.OK, "dropped description")
        span.end()
        span = tracer.start_span("d")
        span.set_status(StatusCode.ERROR, "one")
        span.set_status(Status(StatusCode.ERROR, "two"))
        span.end()

    lean, sdk = run_both(pair, scenario)
    assert lean == sdk
    assert lean["a"]["status"] == (StatusCode.ERROR, "first")
    assert lean["b"]["status"] == (StatusCode.OK, None)
    assert lean["c"]["status"] == (StatusCode.OK, None)
    assert lean["d"]["status"] == (StatusCode.ERROR, "two")


# --- ended spans, names, times -------------------------------------------------------------------------


def test_ended_span_ignores_writes_and_second_end(provider: Any, sink: Any, caplog: pytest.LogCaptureFixture) -> None:
    span = provider.get_tracer("t").start_span("op", start_time=1_000)
    span.update_name("renamed")
    span.end(end_time=5_000)
    assert not span.is_recording()
    with caplog.at_level(logging.WARNING):
        span.set_attribute("late", 1)
        span.add_event("late")
        span.update_name("later")
        span.set_status(StatusCode.ERROR)
        span.end()
    assert len(sink.ended) == 1
    assert (span.name, span.start_time, span.end_time) == ("renamed", 1_000, 5_000)
    assert dict(span.attributes) == {} and span.events == [] and span.status.status_code is StatusCode.UNSET
    assert "Calling end() on an ended span." in caplog.text


# --- links ----------------------------------------------------------------------------------------------


def test_links_at_start_and_added_later(pair: Pair) -> None:
    linked = SpanContext(0xABC, 0xDEF, True, TraceFlags(1), TraceState([("k", "v")]))
    invalid = SpanContext(0, 0, False)

    def scenario(tracer: trace_api.Tracer) -> None:
        span = tracer.start_span("linked", links=[Link(linked, {"why": "batch"}), Link(invalid)])
        span.add_link(linked)
        span.add_link(invalid)  # no ids, no attributes: ignored by both
        span.end()

    run_both(pair, scenario)
    lean_links = pair.sink.ended[0].to_record()[wire.LINKS]
    sdk_links = pair.exporter.get_finished_spans()[0].links
    assert len(lean_links) == len(sdk_links) == 2
    assert lean_links[0] == [(0xABC).to_bytes(16, "big"), (0xDEF).to_bytes(8, "big"), 1, "k=v", {"why": "batch"}]
    assert lean_links[1][4] is None


# --- limits -------------------------------------------------------------------------------------------


def test_long_strings_are_truncated_not_dropped(provider: Any, sink: Any) -> None:
    span = provider.get_tracer("t").start_span("op", attributes={"big": "x" * 10_000})
    span.set_attribute("list", ["y" * 9_000, "short"])
    span.add_event("e", {"long": "z" * 9_000})
    span.end()
    attributes = sink.ended[0].attributes
    assert attributes["big"] == "x" * 8192  # the default limit
    assert attributes["list"] == ["y" * 8192, "short"]
    assert sink.ended[0].events[0][2]["long"] == "z" * 8192


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.tracer.conftest import CollectingSink
    from tracer._limits import SpanLimits
    from tracer._provider import LeanTracerProvider

    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3")
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "2")
    monkeypatch.setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "1")
    sink = CollectingSink()
    tracer = LeanTracerProvider(sink, limits=SpanLimits.from_env()).get_tracer("t")
    span = tracer.start_span("op", attributes={"a": "0123456789abcdef", "b": 1})
    for key in ("c", "d", "e"):
        span.set_attribute(key, True)
    span.set_attribute("a", "replaced, not counted")  # an existing key is replaced even at the limit
    for number in range(4):
        span.add_event(f"e{number}")
    for number in range(3):
        span.add_link(SpanContext(number + 1, number + 1, False))
    span.end()
    record = sink.ended[0].to_record()
    assert record[wire.ATTRIBUTES] == {"a": "replaced, ", "b": 1, "c": True}
    assert [event[0] for event in record[wire.EVENTS]] == ["e0", "e1"]
    assert len(record[wire.LINKS]) == 1
    assert record[wire.DROPPED] == [2, 2, 2]


def test_bad_limit_values_fall_back(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from tracer import config
    from tracer._limits import SpanLimits

    config._warned.discard("OTEL_SPAN_EVENT_COUNT_LIMIT")
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "lots")
    with caplog.at_level(logging.WARNING):
        assert SpanLimits.from_env().max_events == 128
    assert "OTEL_SPAN_EVENT_COUNT_LIMIT" in caplog.text


# --- attribute values become what the wire carries ------------------------------------------------------


class Opaque:
    pass


class Described:
    def __str__(self) -> str:
        return "described"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        (True, True),
        (3, 3),
        (2.5, 2.5),
        (2**70, str(2**70)),
        ((1, 2, 3), [1, 2, 3]),
        (["a", None, "b"], ["a", "b"]),
        (b"bytes", "bytes"),
        ({"k": "v"}, "{'k': 'v'}"),
        (Described(), "described"),
        (Opaque(), None),
        (None, None),
    ],
)
def test_attribute_values(provider: Any, sink: Any, value: Any, expected: Any) -> None:
    span = provider.get_tracer("t").start_span("op")
    span.set_attribute("key", value)
    span.end()
    assert sink.ended[0].attributes.get("key") == expected
    wire.check_span(sink.ended[0].to_record())


def test_bad_keys_are_counted(provider: Any, sink: Any) -> None:
    span = provider.get_tracer("t").start_span("op", attributes={"": 1, "ok": 2})
    span.set_attribute(None, 3)  # type: ignore[arg-type]
    span.end()
    assert dict(sink.ended[0].attributes) == {"ok": 2}
    assert sink.ended[0].to_record()[wire.DROPPED][0] == 2


def test_records_pass_the_wire_check(provider: Any, sink: Any) -> None:
    tracer = provider.get_tracer("scope", "2.0")
    with tracer.start_as_current_span("parent", kind=SpanKind.CONSUMER, attributes={"x": [1.5, 2.5]}) as parent:
        parent.add_event("e", {"k": ("a", "b")}, timestamp=123)
        try:
            with tracer.start_as_current_span("child"):
                raise RuntimeError("fail")
        except RuntimeError:
            pass
    for span in sink.ended:
        record = span.to_record()
        wire.check_span(record)
        assert record[wire.SCOPE_NAME] == "scope" and record[wire.SCOPE_VERSION] == "2.0"
    frame = wire.frame(wire.SPANS, [span.to_record() for span in sink.ended])
    (kind, payload), = wire.FrameReader().feed(frame)
    assert kind == wire.SPANS and [span[wire.NAME] for span in payload] == ["child", "parent"]
    assert payload[1][wire.KIND] == SpanKind.CONSUMER.value


def test_open_span_record_for_start(provider: Any) -> None:
    span = provider.get_tracer("t").start_span("open")
    record = span.to_record()
    assert record[wire.END_NS] == 0
    wire.check_span(record, open_span=True)
