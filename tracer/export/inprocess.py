"""The extension's pipeline run inside the function's process: the tracer's fallback when no extension listens.

``feed`` takes wire bytes exactly as the tracer would write them to the socket (any number of frames, split
anywhere); ``flush`` assembles and exports synchronously through the same buffer, flush and exporter code (or
prints the waterfall when no OTLP endpoint is configured), never taking longer than its timeout. Nothing here
raises into the caller for bad input: rejected frames are counted and logged.
"""

from __future__ import annotations

import threading
import time

from tracer import config, wire
from tracer.export.assembler import Assembler
from tracer.export.buffer import SpanBuffer
from tracer.export.diagnostics import log
from tracer.export.exporter import PrintSink, SinkLoader, build_otlp_sink
from tracer.export.flush import Flusher, FlushJob, spans_per_request
from tracer.export.frames import dispatch
from tracer.export.otlp_config import OtlpSettings, read_otlp_settings, report_problems
from tracer.export.stats import Stats
from tracer.export.waterfall import WaterfallPrinter

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import TextIO

    from tracer.export.exporter import Sink


_CONNECTION = 0  # the one logical connection of this process


class InProcessExporter:
    def __init__(self, settings: OtlpSettings | None = None, stream: TextIO | None = None,
                 max_spans: int | None = None) -> None:
        """``settings`` default to the ``OTEL_EXPORTER_OTLP_*`` variables; ``stream`` is where waterfalls go."""
        resolved = settings if settings is not None else read_otlp_settings()
        if settings is None:
            report_problems({"traces": resolved})
        self.stats = Stats()
        limit = max_spans or config.read_int(config.AFTERGLOW_MAX_BUFFERED_SPANS, 20000, minimum=1)
        self.buffer = SpanBuffer(limit, self.stats)
        self._assembler = Assembler(self.buffer, self.stats)
        self._assembler.connected(_CONNECTION)
        self._reader = wire.FrameReader()
        self._lock = threading.Lock()
        printer = WaterfallPrinter(stream)

        def factory() -> Sink:
            return build_otlp_sink(resolved) if resolved is not None else PrintSink(printer.write)

        self._loader = SinkLoader(factory)
        self._flusher = Flusher(self.buffer, self._loader, self.stats,
                                request_timeout_s=resolved.timeout_s if resolved else 10.0,
                                chunk_spans=spans_per_request())

    def feed(self, data: bytes) -> None:
        """Accept wire bytes (possibly several or partial frames). Bad frames are counted, never raised."""
        with self._lock:
            for item in self._reader.frames(bytes(data)):
                if isinstance(item, wire.WireError):
                    if item.fatal:
                        self.stats.add("poisoned_connections")
                        self._reader = wire.FrameReader()  # a stream cannot resync; start clean with the next write
                    else:
                        self.stats.add("malformed_frames")
                    log.warning("in-process exporter rejected wire data: %s", item)
                    continue
                dispatch(self._assembler, _CONNECTION, item[0], item[1])

    def flush(self, timeout_s: float) -> None:
        """Export (or print) everything fed so far, taking at most about ``timeout_s``."""
        now = time.monotonic()
        job = FlushJob(now + timeout_s, now + timeout_s, force=False)
        self._flusher.run(job)
        if self.stats.new_drops() or self.buffer.pending:
            log.warning("afterglow: in-process export: %s; %d spans still buffered", self.stats.report_line(),
                        self.buffer.pending)

    def close(self) -> None:
        """Close the exporter's connection (the tracer calls ``shutdown`` when its process ends)."""
        self._loader.close()

    shutdown = close
