"""Sampling honours OTEL_TRACES_SAMPLER / _ARG: a built-in fast path for the default, the SDK's samplers else."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.trace.span import NonRecordingSpan, SpanContext, TraceFlags

from tests.unit.tracer.conftest import CollectingSink
from tracer._provider import LeanTracerProvider
from tracer._safe import _warned
from tracer._sampling import sampler_from_env


def tracer_for(monkeypatch: pytest.MonkeyPatch, name: str | None, argument: str | None = None) -> tuple[
    trace_api.Tracer, CollectingSink
]:
    if name is None:
        monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    if argument is None:
        monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", argument)
    sink = CollectingSink()
    return LeanTracerProvider(sink, sampler=sampler_from_env()).get_tracer("t"), sink


def remote_parent(sampled: bool) -> object:
    context = SpanContext(0xAAAA, 0xBBBB, True, TraceFlags(1 if sampled else 0))
    return trace_api.set_span_in_context(NonRecordingSpan(context))


def test_default_is_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    assert sampler_from_env() is None
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "ParentBased_Always_On")
    assert sampler_from_env() is None


def test_default_follows_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    tracer, sink = tracer_for(monkeypatch, None)
    root = tracer.start_span("root")
    assert root.is_recording() and root.get_span_context().trace_flags.sampled
    unsampled = tracer.start_span("server", context=remote_parent(False))
    assert isinstance(unsampled, NonRecordingSpan)
    assert unsampled.get_span_context().trace_id == 0xAAAA  # the trace continues, unrecorded
    with trace_api.use_span(unsampled):
        child = tracer.start_span("child")
        assert not child.is_recording() and child.get_span_context().trace_id == 0xAAAA
        child.end()
    sampled = tracer.start_span("server", context=remote_parent(True))
    assert sampled.is_recording()
    for span in (root, unsampled, sampled):
        span.end()
    assert [span.name for span in sink.ended] == ["root", "server"]


def test_default_matches_the_sdk_sampler_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace.sampling import DEFAULT_ON

    tracer, _ = tracer_for(monkeypatch, None)
    for parent in (None, remote_parent(True), remote_parent(False)):
        ours = tracer.start_span("x", context=parent)  # type: ignore[arg-type]
        theirs = DEFAULT_ON.should_sample(parent, 1, "x")  # type: ignore[arg-type]
        assert ours.is_recording() == theirs.decision.is_recording()
        assert ours.get_span_context().trace_flags.sampled == theirs.decision.is_sampled()


@pytest.mark.parametrize(
    ("name", "argument", "root_sampled", "after_sampled_parent", "after_unsampled_parent"),
    [
        ("always_on", None, True, True, True),
        ("always_off", None, False, False, False),
        ("parentbased_always_off", None, False, True, False),
        ("traceidratio", "0", False, False, False),
        ("traceidratio", "1", True, True, True),
        ("parentbased_traceidratio", "0", False, True, False),
    ],
)
def test_configured_samplers(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    argument: str | None,
    root_sampled: bool,
    after_sampled_parent: bool,
    after_unsampled_parent: bool,
) -> None:
    tracer, sink = tracer_for(monkeypatch, name, argument)
    spans = [
        tracer.start_span("root"),
        tracer.start_span("a", context=remote_parent(True)),  # type: ignore[arg-type]
        tracer.start_span("b", context=remote_parent(False)),  # type: ignore[arg-type]
    ]
    assert [span.get_span_context().trace_flags.sampled for span in spans] == [
        root_sampled,
        after_sampled_parent,
        after_unsampled_parent,
    ]
    for span in spans:
        span.end()
    assert len(sink.ended) == sum((root_sampled, after_sampled_parent, after_unsampled_parent))


def test_ratio_samples_about_the_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    tracer, sink = tracer_for(monkeypatch, "traceidratio", "0.25")
    for _ in range(4000):
        tracer.start_span("root").end()
    assert 800 < len(sink.ended) < 1200


def test_bad_configuration_warns_and_traces_with_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _warned.discard("sampler")
    _warned.discard("sampler_arg")
    with caplog.at_level(logging.WARNING):
        tracer, _ = tracer_for(monkeypatch, "no_such_sampler")
        assert tracer.start_span("x").is_recording()
        tracer, _ = tracer_for(monkeypatch, "traceidratio", "half")
        assert tracer.start_span("x").is_recording()  # rate 1.0, as the SDK does
    assert "no_such_sampler" in caplog.text and "OTEL_TRACES_SAMPLER_ARG='half'" in caplog.text


def test_the_sdk_is_imported_only_for_other_samplers() -> None:
    code = (
        "import sys, os\n"
        "from tracer._sampling import sampler_from_env\n"
        "sampler_from_env(); assert 'opentelemetry.sdk' not in sys.modules\n"
        "os.environ['OTEL_TRACES_SAMPLER'] = 'always_off'\n"
        "sampler_from_env(); assert 'opentelemetry.sdk.trace' in sys.modules\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "."}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
