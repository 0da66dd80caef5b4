"""Whatever a caller passes as attributes, the span's record is one the wire (and the extension) accepts."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.tracer.conftest import CollectingSink
from tracer import wire
from tracer._limits import SpanLimits
from tracer._provider import LeanTracerProvider
from tracer._resource import parse_arn, parse_resource_attributes

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
    ),
    max_leaves=10,
)
keys = st.one_of(st.text(max_size=10), st.none(), st.integers())


@settings(max_examples=300, deadline=None)
@given(attributes=st.dictionaries(keys, values, max_size=8), event=st.dictionaries(keys, values, max_size=4))
def test_any_attributes_make_a_valid_record(attributes: dict[Any, Any], event: dict[Any, Any]) -> None:
    sink = CollectingSink()
    tracer = LeanTracerProvider(sink, limits=SpanLimits(max_span_attributes=5, max_value_length=16)).get_tracer("t")
    span = tracer.start_span("op", attributes=attributes)
    for key, value in attributes.items():
        span.set_attribute(key, value)
    span.add_event("e", event)
    span.end()
    record = sink.ended[0].to_record()
    wire.check_span(record)
    (kind, payload), = wire.FrameReader().feed(wire.frame(wire.SPANS, [record]))
    assert kind == wire.SPANS and len(payload[0][wire.ATTRIBUTES] or {}) <= 5


def test_resource_attributes_are_percent_decoded() -> None:
    assert parse_resource_attributes("a=1, b = x%2Cy ,c=%F0%9F%98%80,=bad,novalue,") == {
        "a": "1",
        "b": "x,y",
        "c": "\N{GRINNING FACE}",
    }
    assert parse_resource_attributes(None) == {}


def test_arn_parsing() -> None:
    assert parse_arn("arn:aws:lambda:eu-west-1:123456789012:function:f:prod") == (
        "eu-west-1",
        "123456789012",
        "arn:aws:lambda:eu-west-1:123456789012:function:f",
    )
    assert parse_arn("arn:aws:s3:::bucket") is None and parse_arn(None) is None


def test_a_dict_used_again_gives_each_span_what_it_holds_at_that_moment() -> None:
    """The cleaned copy kept for a dict passed again and again (``tracer._limits``) never outlives a change."""
    sink = CollectingSink()
    tracer = LeanTracerProvider(sink, limits=SpanLimits(max_span_value_length=4)).get_tracer("t")
    attributes: dict[str, Any] = {"a": 1, "b": "text", "c": 0.0}
    seen = []
    for change in (None, ("a", True), ("a", 1.0), ("c", -0.0), ("b", "longer"), ("d", [1, 2]), ("d", [1, 3])):
        if change is not None:
            attributes[change[0]] = change[1]
        for _ in range(2):  # the second span of each state is the one the kept copy could answer
            with tracer.start_as_current_span("s", attributes=attributes) as span:
                span.set_attribute("own", 1)  # a span's own additions stay its own
        seen.append(sink.ended[-1].to_record()[wire.ATTRIBUTES])
        assert sink.ended[-2].to_record()[wire.ATTRIBUTES] == seen[-1]
    assert [(type(record["a"]), record["a"]) for record in seen[:3]] == [(int, 1), (bool, True), (float, 1.0)]
    assert str(seen[2]["c"]) == "0.0" and str(seen[3]["c"]) == "-0.0"
    assert seen[4]["b"] == "long" and seen[5]["d"] == [1, 2] and seen[6]["d"] == [1, 3]
    assert all(record["own"] == 1 for record in seen) and "own" not in attributes
