"""An example function: greets the caller and does a little traced work."""

from opentelemetry import trace

from tracer import trace_handler

tracer = trace.get_tracer(__name__)


@trace_handler
def handler(event, context):
    name = event.get("name", "world")
    with tracer.start_as_current_span("compose-greeting") as span:
        span.set_attribute("greeting.name", name)
        message = f"hello, {name}"
    print(f"greeted {name}")  # shows under the trace, as an OTLP log record when exporting
    return {"statusCode": 200, "body": message}
