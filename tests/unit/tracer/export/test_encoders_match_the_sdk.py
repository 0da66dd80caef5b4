"""The extension's hand-written OTLP encoders against the official path, on generated data covering every field.

For wire span records (``span_encoder``) and log entries (``log_encoder``), the request bytes decoded with
opentelemetry-proto equal, message for message, what the OpenTelemetry SDK's encoder makes of the same data
(``tests/helpers/sdk_reference.py``: SDK objects rebuilt from the records, then ``encode_spans`` / ``encode_logs``),
including the grouping of several resources and scopes in one request. The one deliberate difference, a link's
trace state (which the SDK's encoder leaves out), is added to the reference the way the SDK encodes a span's.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from extension.function_logs import LogEntry
from tests.helpers.sdk_reference import HAS_READABLE_LOG_RECORD, Converter, LogConverter
from tracer import wire
from tracer.export.buffer import Batch
from tracer.export.log_encoder import LogEncoder
from tracer.export.span_encoder import SpanEncoder

EXAMPLES = settings(max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck))

INT64 = st.integers(-(2**63), 2**63 - 1)
UINT32 = st.integers(0, 2**32 - 1)
TIMES = st.integers(0, 2**63 - 1)
text = st.text(max_size=12)
ids16 = st.binary(min_size=16, max_size=16).filter(any)
ids8 = st.binary(min_size=8, max_size=8).filter(any)

# Attribute values the wire allows: str, bool, int64, float (NaN and infinities too), flat lists of them.
scalars = [text, st.booleans(), INT64, st.floats()]
attribute_values = st.one_of(
    *scalars,
    *(st.lists(strategy, max_size=3) for strategy in scalars),  # homogeneous arrays of each type, empty too
    st.lists(st.one_of(*scalars), max_size=3),  # the wire also lets mixed arrays through
)
attribute_maps = st.dictionaries(text, attribute_values, max_size=5)  # "" is a key too
optional_attributes = st.one_of(st.none(), attribute_maps)

# Trace states: canonical, with whitespace and empty members, invalid, duplicated keys, too many members.
state_keys = st.builds(lambda first, rest, vendor: first + rest + vendor, st.sampled_from("abz"),
                       st.text(alphabet="az09_-*/", max_size=4), st.sampled_from(["", "@v", "@x-1"]))
state_values = st.text(alphabet="aZ09!~;<>+- ", min_size=1, max_size=5).filter(lambda value: value[-1] != " ")
members = st.lists(st.tuples(state_keys, state_values), max_size=4, unique_by=lambda pair: pair[0])
trace_states = st.one_of(
    st.none(),
    st.just(""),
    members.map(lambda pairs: ",".join(f"{key}={value}" for key, value in pairs)),
    st.tuples(members, st.sampled_from([", ", " ,", "\t,\t", ",,", " , "])).map(  # optional whitespace, empty members
        lambda args: args[1].join(f"{key}={value}" for key, value in args[0])),
    st.tuples(members, st.sampled_from(["0bad=1", "a=b=c", "k=v ", "K=v", "a@=v"])).map(  # one invalid member
        lambda args: ",".join([*(f"{key}={value}" for key, value in args[0]), args[1]])),
    st.integers(32, 33).map(lambda size: ",".join(f"k{index}=v" for index in range(size))),  # 32 is the most
    state_keys.map(lambda key: f"{key}=a,{key}=b"),  # a key twice
    text,
)

events = st.lists(st.tuples(text, TIMES, optional_attributes).map(list), max_size=3)
links = st.lists(st.tuples(ids16, ids8, st.integers(0, 255), trace_states, optional_attributes).map(list), max_size=3)
scopes = st.sampled_from([("tracer", "0.1.0"), ("tracer", None), ("tracer", ""), ("botocore", None), ("", None),
                          ("requests", "2.32")])


@st.composite
def span_records(draw: Any) -> list[Any]:
    start = draw(st.integers(1, 2**63 - 1))
    scope_name, scope_version = draw(scopes)
    record = [
        draw(ids16), draw(ids8), draw(st.one_of(st.none(), ids8)), draw(text), draw(st.integers(0, 4)),
        start, draw(st.integers(start, 2**63 - 1)), draw(optional_attributes), draw(st.one_of(st.none(), events)),
        draw(st.one_of(st.none(), links)), draw(st.integers(0, 2)), draw(st.one_of(st.none(), text)),
        scope_name, scope_version, draw(st.integers(0, 255)), draw(trace_states), [draw(UINT32) for _ in range(3)],
    ]
    if draw(st.booleans()):  # the usual span, which the encoder writes in one join: half the examples
        record[wire.EVENTS], record[wire.STATUS_CODE], record[wire.TRACE_STATE] = None, 0, None
        record[wire.DROPPED] = [0, 0, 0]
    wire.check_span(record)  # every generated record is one the extension accepts
    return record


# Resources: equal attributes in another dict (and key order) are one resource; empty keys are dropped, as by the SDK.
RESOURCES = [
    {"service.name": "checkout", "cloud.provider": "aws"},
    {"cloud.provider": "aws", "service.name": "checkout"},
    {"service.name": "checkout", "cloud.provider": "aws", "": "dropped"},
    {"service.name": "checkout", "process.pid": 2, "ratio": 0.5, "tags": ["a", "b"], "on": True},
    {"service.name": "checkout", "process.pid": 2.0, "ratio": 0.5, "tags": ["a", "b"], "on": True},
    {"service.name": "checkout", "process.pid": "2", "ratio": 0.5, "tags": ["a", "b"], "on": True},
    {"service.name": "checkout", "process.pid": 2, "ratio": 0.5, "tags": ["a", "b"], "on": 1},
    {"service.name": "billing"},
    {},
]
resources = st.sampled_from(range(len(RESOURCES))).map(lambda index: copy.deepcopy(RESOURCES[index]))


@given(st.lists(st.tuples(resources, st.lists(span_records(), min_size=1, max_size=3)), min_size=1, max_size=4))
@EXAMPLES
def test_span_requests_equal_the_sdk_encoders(batches: list[tuple[dict[str, Any], list[list[Any]]]]) -> None:
    chunk = [Batch(resource, f"r{index}", spans, [1] * len(spans)) for index, (resource, spans) in enumerate(batches)]
    expected = Converter().request(chunk, link_trace_state=True)
    ours = ExportTraceServiceRequest.FromString(SpanEncoder().request(chunk))
    # Compared as canonical bytes: some protobuf versions compare messages holding NaN as unequal to themselves.
    assert same_message(ours, expected), (ours, expected)


def same_message(first: Any, second: Any) -> bool:
    return bool(first.SerializeToString(deterministic=True) == second.SerializeToString(deterministic=True))


def test_grouping_follows_first_appearance_of_resources_and_scopes() -> None:
    def span(name: str, scope: str) -> list[Any]:
        return [b"\x01" * 16, b"\x02" * 8, None, name, 0, 1, 2, None, None, None, 0, None, scope, None, 1, None,
                [0, 0, 0]]

    one, two = {"service.name": "one"}, {"service.name": "two"}
    chunk = [Batch(one, "r1", [span("a", "x"), span("b", "y")], [1, 1]), Batch(two, "r2", [span("c", "y")], [1]),
             Batch(dict(one), "r3", [span("d", "y"), span("e", "x")], [1, 1])]
    ours = ExportTraceServiceRequest.FromString(SpanEncoder().request(chunk))
    layout = [[(scope.scope.name, [s.name for s in scope.spans]) for scope in resource.scope_spans]
              for resource in ours.resource_spans]
    assert layout == [[("x", ["a", "e"]), ("y", ["b", "d"])], [("y", ["c"])]]
    assert ours == Converter().request(chunk)


# The official log encoder is the reference only where the SDK has the records it takes today.
needs_log_reference = pytest.mark.skipif(
    not HAS_READABLE_LOG_RECORD,
    reason="this opentelemetry-sdk has no ReadableLogRecord (its encode_logs took LogData)")


@needs_log_reference
def test_lengths_around_every_varint_boundary_match() -> None:
    """Generated text is short: lengths that need a second (or third) length byte, at every level, and text whose
    UTF-8 is longer than its characters."""
    sizes = [0, 1, 124, 125, 126, 127, 128, 129, 200, 16383, 16384, 70000]
    words = ["x" * size for size in sizes] + ["é" * 63, "é" * 64, "€" * 43]
    attributes = {word[:300] + str(index): word for index, word in enumerate(words)}
    attributes["list"] = words
    records = [[b"\x01" * 16, (index + 1).to_bytes(8, "big"), None, word, 0, 1, 2, attributes,
                [[word, 3, {"k": word}]], [[b"\x03" * 16, b"\x04" * 8, 0, None, {"k": word}]], 2, word, word[:500],
                word[:500], 1, None, [0, 0, 0]] for index, word in enumerate(words)]
    chunk = [Batch({"service.name": "x" * 200, "big": words}, "r", records, [1] * len(records))]
    assert ExportTraceServiceRequest.FromString(SpanEncoder().request(chunk)) == Converter().request(chunk)
    entries = [LogEntry(word, 1, 2) for word in words]
    for entry, word in zip(entries, words, strict=True):
        entry.attributes, entry.severity_text, entry.event_name = {"k": word, word[:200]: [word]}, word, word
    log_chunk = [Batch({"service.name": "x" * 200}, "r", entries, [1] * len(entries))]
    assert ExportLogsServiceRequest.FromString(LogEncoder().request(log_chunk)) == LogConverter().request(log_chunk)


def test_counts_beyond_what_otlp_holds_saturate_instead_of_failing_the_request() -> None:
    record = [b"\x01" * 16, b"\x02" * 8, None, "big", 0, 1, 2, None, None, None, 0, None, "s", None, 1, None,
              [2**40, 2**32, 7]]
    (span,) = ExportTraceServiceRequest.FromString(SpanEncoder().request([Batch({}, "r", [record], [1])])) \
        .resource_spans[0].scope_spans[0].spans
    assert (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count) == (
        2**32 - 1, 2**32 - 1, 7)


# --- log records ------------------------------------------------------------------------------------------------

json_like = st.recursive(
    st.one_of(st.none(), text, st.booleans(), INT64, st.floats(), st.binary(max_size=4)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)),
    max_leaves=8,
)


@st.composite
def log_entries(draw: Any) -> LogEntry:
    entry = LogEntry(draw(json_like), draw(TIMES), draw(TIMES),
                     draw(st.sampled_from(["afterglow.lambda.function", "afterglow.lambda.platform", ""])))
    entry.severity_text = draw(text)
    entry.severity_number = draw(st.integers(0, 30))  # past 24 (FATAL4) is not a SeverityNumber: unspecified
    entry.attributes = draw(st.dictionaries(text, json_like, max_size=4))
    entry.trace_id = draw(st.one_of(st.none(), st.binary(min_size=16, max_size=16)))  # all zeros: no trace
    entry.span_id = draw(st.one_of(st.none(), st.binary(min_size=8, max_size=8)))
    entry.trace_flags = draw(st.integers(0, 255))
    entry.event_name = draw(st.one_of(st.none(), text))
    return entry


@needs_log_reference
@given(st.lists(st.tuples(resources, st.lists(log_entries(), min_size=1, max_size=3)), min_size=1, max_size=4))
@EXAMPLES
def test_log_requests_equal_the_sdk_encoders(batches: list[tuple[dict[str, Any], list[LogEntry]]]) -> None:
    chunk = [Batch(resource, f"r{index}", entries, [1] * len(entries))
             for index, (resource, entries) in enumerate(batches)]
    expected = LogConverter().request(chunk)
    ours = ExportLogsServiceRequest.FromString(LogEncoder().request(chunk))
    assert same_message(ours, expected), (ours, expected)


def test_values_otlp_cannot_hold_exactly_keep_their_content() -> None:
    """Beyond int64 (JSON allows any integer) the digits stay as text; a lone surrogate (JSON allows that too) is
    replaced, not a reason to fail the request. The official encoder drops such attributes and fails on such bodies."""
    entry = LogEntry({"id": 2**70, "note": "a\ud800b", "ok": -(2**63)}, 1, 2)
    entry.attributes = {"big": -(2**64), "ratio": math.inf}
    request = ExportLogsServiceRequest.FromString(LogEncoder().request([Batch({}, "r", [entry], [1])]))
    (record,) = request.resource_logs[0].scope_logs[0].log_records
    body = {pair.key: pair.value for pair in record.body.kvlist_value.values}
    assert body["id"].string_value == str(2**70) and body["ok"].int_value == -(2**63)
    assert body["note"].string_value == "a\ufffdb"
    attributes = {pair.key: pair.value for pair in record.attributes}
    assert attributes["big"].string_value == str(-(2**64)) and attributes["ratio"].double_value == math.inf
