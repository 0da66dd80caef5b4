"""The export pipeline: wire frames -> invocations -> bounded buffers -> OTLP (or the printed waterfall).

Imported by the extension, and by the function only in fallback mode (``tracer._fallback`` loads ``inprocess``
when no extension listens). Nothing under ``tracer`` imports this package otherwise, so the function's cold start
never pays for it. It may import ``tracer.config`` and ``tracer.wire``, never the function side's private modules
(``tracer._*``) or the ``extension`` package (the import contracts in pyproject.toml check both).

``frames`` (decoded frames into the ``assembler``) -> ``buffer`` (bounded, oldest dropped) -> ``flush`` (budget,
retries) -> ``exporter`` (``span_encoder`` / ``log_encoder`` over ``otlp_proto``, sent by ``transport`` behind a
``breaker``; or the ``waterfall`` printer). ``otlp_config`` reads the ``OTEL_EXPORTER_OTLP_*`` settings,
``stats`` counts what is dropped, ``supervise`` restarts a failed thread, ``diagnostics`` writes afterglow's own
log lines. ``inprocess`` runs the whole pipeline inside the function, for the fallback.
"""
