"""The configurations compared side by side: one function, the same work, different tracing around it."""

from __future__ import annotations

from dataclasses import dataclass, field

PERIODIC_FLUSH = "periodic,1000"
SLOW_COLLECTOR_MS = 50.0


@dataclass(frozen=True)
class Config:
    name: str
    summary: str
    handler: str
    layer: str | None = None  # "afterglow", "otel-standard", "xray-sdk" or "noop-extension"
    env: dict[str, str] = field(default_factory=dict)
    collector: str | None = "otlp"  # "otlp" (OTEL_EXPORTER_OTLP_ENDPOINT), "xray" (UDP daemon address), None
    collector_delay_ms: float = 0.0
    child_spans: bool = True  # the handler's child spans are real spans (bare makes none)
    invocation_span: bool = True  # makes one span per invocation besides the handler's own
    traces_aws_calls: bool = False  # makes one span per AWS SDK call
    optional: bool = False  # left out, with a note, when its packages do not install


CONFIGS: tuple[Config, ...] = (
    Config("bare", "no tracing at all (the OpenTelemetry API is not even imported)", "bare.handler",
           collector=None, child_spans=False, invocation_span=False),
    Config("bare-extension", "no tracing, plus a do-nothing external extension (registers for INVOKE, calls next): "
           "what any extension's presence costs in this sandbox", "bare.handler", layer="noop-extension",
           collector=None, child_spans=False, invocation_span=False),
    Config("afterglow", "handler decorated with trace_handler; the afterglow layer", "app_afterglow.handler",
           layer="afterglow"),
    Config("afterglow-wrapper", "undecorated handler, AWS_LAMBDA_EXEC_WRAPPER=/opt/afterglow-instrument",
           "app.handler", layer="afterglow", env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/afterglow-instrument"},
           traces_aws_calls=True),
    Config("otel-standard", "opentelemetry-instrument + aws-lambda instrumentation, BatchSpanProcessor, "
           "OTLP/HTTP, force_flush per invocation", "app.handler", layer="otel-standard",
           env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument"}),
    Config("afterglow-slow-collector", f"afterglow with a collector answering after {SLOW_COLLECTOR_MS:.0f} ms",
           "app_afterglow.handler", layer="afterglow", collector_delay_ms=SLOW_COLLECTOR_MS),
    Config("otel-standard-slow-collector", f"otel-standard with a collector answering after "
           f"{SLOW_COLLECTOR_MS:.0f} ms", "app.handler", layer="otel-standard",
           env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument"}, collector_delay_ms=SLOW_COLLECTOR_MS),
    Config("periodic", f"afterglow with AFTERGLOW_FLUSH={PERIODIC_FLUSH}", "app_afterglow.handler",
           layer="afterglow", env={"AFTERGLOW_FLUSH": PERIODIC_FLUSH}),
    Config("xray-sdk", "aws-xray-sdk: a subsegment per span, UDP to a loopback daemon address; botocore patched",
           "app_xray.handler", layer="xray-sdk", collector="xray", invocation_span=False, traces_aws_calls=True,
           optional=True),
)

BY_NAME = {config.name: config for config in CONFIGS}
BASELINE = "bare"
EXTENSION_BASELINE = "bare-extension"
