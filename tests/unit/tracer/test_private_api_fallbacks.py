"""Every private name afterglow borrows from OpenTelemetry or awslambdaric has a fallback for when it is gone.

The extension borrows none: it encodes OTLP itself (``tracer/export/span_encoder.py``,
``tracer/export/log_encoder.py``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext

from tracer._context_keys import SPAN_KEY

REPO = Path(__file__).resolve().parents[3]


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          check=False, timeout=60, cwd=REPO)


def test_the_span_key_is_the_one_the_api_reads() -> None:
    span = NonRecordingSpan(SpanContext(1, 2, is_remote=True))
    assert trace.get_current_span(Context({SPAN_KEY: span})) is span


def test_without_the_apis_suppression_keys_afterglow_makes_its_own_and_still_honours_them() -> None:
    result = _run(
        """
        import opentelemetry.context as api
        del api._SUPPRESS_INSTRUMENTATION_KEY, api._SUPPRESS_HTTP_INSTRUMENTATION_KEY  # an API that renamed them
        from opentelemetry import context
        from instrumentation import _spans
        from tracer import _context_keys as keys

        assert not _spans.suppressed() and not _spans.http_suppressed()
        token = context.attach(context.set_value(keys.SUPPRESS_HTTP_INSTRUMENTATION_KEY, True))
        assert _spans.http_suppressed() and not _spans.suppressed()
        context.detach(token)
        token = context.attach(context.set_value(keys.SUPPRESS_INSTRUMENTATION_KEY, True))
        assert _spans.suppressed() and _spans.http_suppressed()
        print("ok")
        """
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_without_awslambdarics_loader_the_wrapper_loads_the_handler_itself(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {'echo': event}\n")
    result = _run(
        f"""
        import os, sys
        sys.modules["awslambdaric.bootstrap"] = None  # an awslambdaric without the private _get_handler
        sys.path.insert(0, {str(tmp_path)!r})
        os.environ.update(AFTERGLOW_HANDLER="app.handler", OTEL_SDK_DISABLED="true")
        from afterglow.wrapper_bootstrap import handler

        print(handler({{"n": 1}}, None))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'echo': {'n': 1}}"


def test_with_another_runtime_context_spans_go_through_the_apis_context_calls() -> None:
    result = _run(
        """
        import opentelemetry.context as api
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        class Other(ContextVarsRuntimeContext):  # a runtime context of its own, configured through the API
            pass

        api._RUNTIME_CONTEXT = Other()
        from opentelemetry import trace
        from tracer import _provider
        from tracer._provider import LeanTracerProvider

        assert _provider._CURRENT is None
        tracer = LeanTracerProvider().get_tracer("t")
        with tracer.start_as_current_span("outer") as outer:
            with tracer.start_as_current_span("inner") as inner:
                assert trace.get_current_span() is inner and inner.parent.span_id == outer.get_span_context().span_id
            assert trace.get_current_span() is outer
        assert not trace.get_current_span().get_span_context().is_valid
        print("ok")
        """
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_the_apis_context_calls_and_afterglows_share_one_context() -> None:
    from opentelemetry import context

    from tracer._provider import LeanTracerProvider, attach_span, detach_span

    tracer = LeanTracerProvider().get_tracer("t")
    span = tracer.start_span("s")
    token = attach_span(span)
    assert trace.get_current_span() is span
    context.detach(token)  # a token of ours, reset by the API
    assert trace.get_current_span() is not span
    token = context.attach(Context({SPAN_KEY: span}))
    assert trace.get_current_span() is span
    detach_span(token)  # and the other way round
    assert trace.get_current_span() is not span


def test_environment_reads_follow_a_replaced_os_environ() -> None:
    result = _run(
        """
        import os
        from tracer import config

        os.environ["_X_AMZN_TRACE_ID"] = " Root=1-a;Sampled=1 "
        assert config.raw("_X_AMZN_TRACE_ID") == "Root=1-a;Sampled=1"
        del os.environ["_X_AMZN_TRACE_ID"]
        assert config.raw("_X_AMZN_TRACE_ID") is None
        os.environ = {"_X_AMZN_TRACE_ID": "Root=1-b"}  # not os._Environ: read through its own get
        assert config.raw("_X_AMZN_TRACE_ID") == "Root=1-b"
        print("ok")
        """
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
