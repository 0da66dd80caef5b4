"""The hand-written protobuf primitives against opentelemetry-proto: the collector's answers it reads, and values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tracer.export.otlp_proto import any_value, partial_success_rejected


@given(st.integers(0, 2**63 - 1), st.text(max_size=300))
def test_the_rejected_count_of_a_partial_success_is_read_for_both_signals(rejected: int, message: str) -> None:
    traces = ExportTraceServiceResponse()
    traces.partial_success.rejected_spans = rejected
    traces.partial_success.error_message = message
    logs = ExportLogsServiceResponse()
    logs.partial_success.rejected_log_records = rejected
    logs.partial_success.error_message = message
    assert partial_success_rejected(traces.SerializeToString()) == rejected
    assert partial_success_rejected(logs.SerializeToString()) == rejected


def test_an_empty_answer_rejected_nothing_and_garbage_is_an_error() -> None:
    assert partial_success_rejected(b"") == 0
    assert partial_success_rejected(ExportTraceServiceResponse().SerializeToString()) == 0
    for garbage in (b"\x0a\x05\x08", b"\xff", b"\x0a\x02\x08\xff", b"\x0f"):
        with pytest.raises(ValueError):
            partial_success_rejected(garbage)


@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(), st.booleans(), st.text(), st.binary()))
def test_scalars_decode_to_what_was_encoded(value: object) -> None:
    decoded = AnyValue.FromString(any_value(value))
    kind = decoded.WhichOneof("value")
    expected = {bool: "bool_value", int: "int_value", float: "double_value", str: "string_value",
                bytes: "bytes_value"}[type(value)]
    assert kind == expected
    got = getattr(decoded, kind)
    assert got == value or (got != got and value != value)  # NaN
