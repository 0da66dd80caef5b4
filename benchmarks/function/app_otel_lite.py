"""``otel-lite``: the same work with lambda-otel-lite, as its README sets it up (``init_telemetry`` once, the
handler wrapped by ``create_traced_handler``, child spans through the OpenTelemetry API).

In its default (``sync``) processor mode it exports at the end of each invocation, as one OTLP line on stdout
(gzip, base64, JSON envelope) for a log subscription to forward: the benchmark counts spans in the function's log.
"""

from __future__ import annotations

from typing import Any

from lambda_otel_lite import create_traced_handler, init_telemetry
from work import do_work

_tracer, _completion_handler = init_telemetry()
_traced = create_traced_handler("benchmark-handler", _completion_handler)


@_traced
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return do_work(event, _tracer.start_as_current_span)
