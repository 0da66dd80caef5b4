"""The afterglow Lambda extension: receives finished spans over a Unix socket and exports them after the response.

Data path: ``receiver`` (socket, wire frames) -> ``assembler`` (invocations, crash/timeout markers) ->
``buffer`` (bounded, oldest dropped) -> ``flush`` (policy, budget) -> ``exporter`` (``span_encoder``, then OTLP
with retries and a circuit breaker through ``transport``; or the ``waterfall`` printer). ``main`` drives it from the
Extensions API lifecycle.

Logs: ``telemetry`` (Telemetry API listener) -> ``logs`` (``log_parse``; stamped with the invocation from the
assembler) -> a second buffer and flusher -> ``exporter`` (``log_encoder``, ``/v1/logs``). ``profile`` reads the
runtime process's ``/proc`` for the invocation span's peak memory and network bytes.

Nothing here imports the OpenTelemetry SDK, its OTLP exporter or (for OTLP/HTTP) protobuf: the encoders write OTLP
protobuf by hand (``otlp_proto``). The export path loads in the background from the first INVOKE.
"""
