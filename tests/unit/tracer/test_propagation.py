"""W3C and X-Ray headers: round trips, agreement with OpenTelemetry's own propagator, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace as trace_api
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from tracer import propagation

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def context_with(span_context: SpanContext) -> object:
    return trace_api.set_span_in_context(NonRecordingSpan(span_context))


@given(
    trace_id=st.integers(1, 2**128 - 1),
    span_id=st.integers(1, 2**64 - 1),
    flags=st.integers(0, 255),
)
def test_traceparent_round_trip_agrees_with_opentelemetry(trace_id: int, span_id: int, flags: int) -> None:
    span_context = SpanContext(trace_id, span_id, False, TraceFlags(flags), TraceState([("a", "1"), ("b", "2")]))
    ours: dict[str, str] = {}
    propagation.inject(ours, context_with(span_context))  # type: ignore[arg-type]
    theirs: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(theirs, context_with(span_context))  # type: ignore[arg-type]
    assert ours == theirs
    extracted = propagation.extract_traceparent(ours["traceparent"], ours["tracestate"])
    assert extracted is not None
    assert (extracted.trace_id, extracted.span_id, extracted.trace_flags) == (trace_id, span_id, flags)
    assert extracted.is_remote and dict(extracted.trace_state) == {"a": "1", "b": "2"}


@given(trace_id=st.integers(1, 2**128 - 1), span_id=st.integers(1, 2**64 - 1), sampled=st.booleans())
def test_xray_round_trip(trace_id: int, span_id: int, sampled: bool) -> None:
    span_context = SpanContext(trace_id, span_id, False, TraceFlags(1 if sampled else 0))
    carrier: dict[str, str] = {}
    propagation.inject_xray(carrier, context_with(span_context))  # type: ignore[arg-type]
    header = carrier["X-Amzn-Trace-Id"]
    assert header.startswith("Root=1-") and header.endswith(f";Sampled={int(sampled)}")
    extracted = propagation.extract_xray(header)
    assert extracted is not None
    assert (extracted.trace_id, extracted.span_id, extracted.trace_flags.sampled) == (trace_id, span_id, sampled)


def test_xray_header_as_lambda_sets_it() -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0"
    extracted = propagation.extract_xray(header, require_sampled=True)
    assert extracted is not None
    assert f"{extracted.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
    assert f"{extracted.span_id:016x}" == "53995c3f42cd8ad8"
    # Active tracing off: Lambda still sets the header, with Sampled=0; it must not unsample our trace.
    assert propagation.extract_xray(header.replace("Sampled=1", "Sampled=0"), require_sampled=True) is None
    assert propagation.extract_xray("Root=1-5759e988-bd862e3fe1be46a994272793", require_sampled=False) is None
    # The quick look for a sampled header before parsing keeps what the parse accepts: spaces, any case, any order.
    spaced = "sampled = 1 ; Parent=53995c3f42cd8ad8; ROOT=1-5759e988-bd862e3fe1be46a994272793"
    assert propagation.extract_xray(spaced, require_sampled=True) == extracted
    assert propagation.extract_xray(header.replace("Sampled=1", "Sampled=10"), require_sampled=True) is None


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # three fields
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff is invalid
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # version 00 has four fields
        "00-0x f7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",  # short trace id
    ],
)
def test_invalid_traceparent_is_ignored_like_opentelemetry_does(header: str) -> None:
    assert propagation.extract_traceparent(header) is None
    theirs = TraceContextTextMapPropagator().extract({"traceparent": header})
    assert not trace_api.get_current_span(theirs).get_span_context().is_valid


def test_future_versions_may_append_fields() -> None:
    found = propagation.extract_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more")
    assert found is not None and found.span_id == 0xB7AD6B7169203331


@given(st.text(max_size=80))
def test_garbage_never_raises(text: str) -> None:
    propagation.extract_traceparent(text, text)
    propagation.extract_xray(text)
    propagation.extract({"TraceParent": text, "x-amzn-trace-id": text})


def test_extract_is_case_insensitive_and_prefers_w3c() -> None:
    xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    found = propagation.extract({"TraceParent": TRACEPARENT, "TraceState": "k=v", "X-Amzn-Trace-Id": xray})
    assert found is not None and found.span_id == 0xB7AD6B7169203331 and dict(found.trace_state) == {"k": "v"}
    found = propagation.extract({"X-AMZN-TRACE-ID": xray})
    assert found is not None and found.span_id == 0x53995C3F42CD8AD8
    assert propagation.extract({}) is None and propagation.extract(None) is None


def test_inject_without_a_current_span_adds_nothing() -> None:
    carrier: dict[str, str] = {"existing": "1"}
    propagation.inject(carrier)
    propagation.inject_xray(carrier)
    assert carrier == {"existing": "1"}


def test_xray_propagator_through_the_opentelemetry_api() -> None:
    from opentelemetry.propagate import get_global_textmap  # noqa: F401 - import proves the entry point resolves
    from opentelemetry.propagators.composite import CompositePropagator

    composite = CompositePropagator([TraceContextTextMapPropagator(), propagation.XRayPropagator()])
    span_context = SpanContext(0x1234, 0x5678, False, TraceFlags(1))
    carrier: dict[str, str] = {}
    composite.inject(carrier, context_with(span_context))  # type: ignore[arg-type]
    assert set(carrier) == {"traceparent", "X-Amzn-Trace-Id"}
    extracted = propagation.XRayPropagator().extract({"X-Amzn-Trace-Id": carrier["X-Amzn-Trace-Id"]})
    assert trace_api.get_current_span(extracted).get_span_context().span_id == 0x5678
    assert propagation.XRayPropagator().fields == {"X-Amzn-Trace-Id"}


def test_xray_is_an_opentelemetry_propagator_entry_point() -> None:
    from importlib.metadata import entry_points

    (found,) = entry_points(group="opentelemetry_propagator", name="xray")
    assert found.load() is propagation.XRayPropagator
