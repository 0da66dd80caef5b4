"""The afterglow Lambda extension: receives finished spans over a Unix socket and exports them after the response.

``lifecycle`` is the loop (Extensions API events, Telemetry API subscription) and the invocation tracker it waits
on (the span socket's ``receiver``, which reads each function's ``ring``, and the assembler: when an invocation is
over). It tells its listeners what happens: ``signals`` (spans, the function's logs, the profile), ``policies``
(when to flush, per ``AFTERGLOW_FLUSH``; ``background`` is the background export thread) and the self-report.
``main`` reads the configuration and composes them.

Data path: ``receiver`` -> ``tracer.export`` (``assembler`` -> ``buffer`` -> ``flush`` -> ``exporter``: OTLP
through ``transport``, or the ``waterfall`` printer). Logs: ``telemetry`` (Telemetry API listener) ->
``function_logs`` (``log_parse``; stamped with the invocation from the assembler) -> a second buffer and flusher ->
``exporter`` (``log_encoder``, ``/v1/logs``). ``profile`` reads the runtime process's ``/proc`` for the invocation
span's peak memory and network bytes.

Nothing here imports the OpenTelemetry SDK, its OTLP exporter or (for OTLP/HTTP) protobuf: the encoders write OTLP
protobuf by hand (``tracer.export.otlp_proto``). The export path loads in the background from the first INVOKE.
"""
