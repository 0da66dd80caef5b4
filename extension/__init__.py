"""The afterglow Lambda extension: receives finished spans over a Unix socket and exports them after the response.

Data path: ``receiver`` (socket, wire frames) -> ``assembler`` (invocations, crash/timeout markers) ->
``buffer`` (bounded, oldest dropped) -> ``flush`` (policy, budget) -> ``exporter`` (OTLP with retries and a
circuit breaker, or the ``waterfall`` printer). ``main`` drives it from the Extensions API lifecycle.

Nothing here imports the OpenTelemetry SDK or exporter at start-up: they load after the first response.
"""
