"""The undecorated function: child spans through the plain OpenTelemetry API, as user code writes them.

Used as is by ``afterglow-wrapper`` (AWS_LAMBDA_EXEC_WRAPPER) and ``otel-standard`` (the aws-lambda
instrumentation wraps it), and decorated by ``app_afterglow``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from work import do_work

_tracer = trace.get_tracer("benchmarks.function")


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return do_work(event, _tracer.start_as_current_span)
