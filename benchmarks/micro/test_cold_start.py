"""Cold start: a fresh interpreter that imports the tracer, decorates a handler and runs the first invocation.

The target (README, "Benchmarks"): at most 40 ms beyond bare Python (the standard OpenTelemetry stack adds
~240 ms here). Each round is a new process, as a Lambda cold start is; compiled bytecode is allowed (a layer
ships it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GROUP = "cold start: fresh process"
ROUNDS = 15

FIRST_INVOCATION = """
class Context:
    aws_request_id = "req-1"
    function_name = "bench"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
handler({"rawPath": "/", "requestContext": {"http": {"method": "GET", "path": "/"}}}, Context())
"""

AFTERGLOW = """
from opentelemetry import trace
from tracer import trace_handler
tracer = trace.get_tracer("app")

@trace_handler
def handler(event, context):
    with tracer.start_as_current_span("work"):
        return {"statusCode": 200}
""" + FIRST_INVOCATION

STANDARD = """
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", timeout=0.05)))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("app")

def handler(event, context):
    with tracer.start_as_current_span("handler", kind=trace.SpanKind.SERVER):
        with tracer.start_as_current_span("work"):
            return {"statusCode": 200}
""" + FIRST_INVOCATION


def _run(code: str, extra_env: dict[str, str] | None = None) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **(extra_env or {})}
    # os._exit: exit handlers (the SDK flushing at shutdown) are not part of a cold start
    program = code + "\nimport os; os._exit(0)\n"
    subprocess.run([sys.executable, "-c", program], env=env, check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    _run(AFTERGLOW)  # writes __pycache__ for the packages involved, as a layer would ship it
    _run(STANDARD.replace(FIRST_INVOCATION, ""))


@pytest.mark.benchmark(group=GROUP)
def test_baseline_bare_python(benchmark: Any) -> None:
    benchmark.pedantic(_run, args=("pass",), rounds=ROUNDS, warmup_rounds=2)


@pytest.mark.benchmark(group=GROUP)
def test_afterglow_import_decorate_first_invocation(benchmark: Any, reader_socket: str) -> None:
    benchmark.pedantic(_run, args=(AFTERGLOW, {"AFTERGLOW_SOCKET": reader_socket}), rounds=ROUNDS, warmup_rounds=2)


@pytest.mark.benchmark(group=GROUP)
def test_standard_sdk_batch_otlp_http(benchmark: Any) -> None:
    benchmark.pedantic(_run, args=(STANDARD.replace(FIRST_INVOCATION, "handler({}, None)"),), rounds=ROUNDS,
                       warmup_rounds=2)
