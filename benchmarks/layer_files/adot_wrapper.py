"""The handler ADOT's Lambda layer substitutes (``_HANDLER=adot_wrapper.lambda_handler``), written for this
benchmark: lite mode's provider when asked, the aws-lambda instrumentation around the function's own handler
(``ORIG_HANDLER``), with the X-Ray header Lambda sets as the parent. Instrumenting here rather than under
``opentelemetry-instrument`` keeps the runtime's own import of the handler from undoing it.
"""

from __future__ import annotations

import logging
import os
from importlib import import_module
from typing import Any

from opentelemetry.context import Context
from opentelemetry.instrumentation.aws_lambda import AwsLambdaInstrumentor
from opentelemetry.propagate import get_global_textmap
from opentelemetry.trace import get_current_span

if os.environ.get("AWS_LAMBDA_LITE_MODE", "false").lower() == "true":
    try:
        from amazon.opentelemetry.distro.opentelemetry_lite_sdk import configure_lite_mode

        configure_lite_mode()
    except Exception:
        logging.getLogger(__name__).error("lite mode could not be configured", exc_info=True)


def _parent(event: Any) -> Context:
    """The X-Ray header Lambda put in ``_X_AMZN_TRACE_ID`` wins over any in the event's headers."""
    headers = event.get("headers") if isinstance(event, dict) else None
    carrier = {key: value for key, value in (headers or {}).items() if key.lower() != "x-amzn-trace-id"} \
        if isinstance(headers, dict) else {}
    if os.environ.get("_X_AMZN_TRACE_ID"):
        carrier["X-Amzn-Trace-Id"] = os.environ["_X_AMZN_TRACE_ID"]
    context = get_global_textmap().extract(carrier)
    return context if get_current_span(context).get_span_context().is_valid else Context()


AwsLambdaInstrumentor().instrument(event_context_extractor=_parent)

_module, _, _name = os.environ["ORIG_HANDLER"].rpartition(".")
lambda_handler = getattr(import_module(_module.replace("/", ".")), _name)
