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
