"""The extension process: register, bind the span socket, follow the Lambda lifecycle, flush, report, exit.

Per invocation (DESIGN.md, "One invocation, seen by the extension"): INVOKE -> wait until END, or the Telemetry
API's ``platform.runtimeDone``, or the deadline (or, without telemetry, a short wait for a sign of life) ->
flush per ``AFTERGLOW_FLUSH`` within ``AFTERGLOW_FLUSH_BUDGET_MS`` -> ``event/next``. At SHUTDOWN: finalise what
is open, export within the deadline, log the self-report line, exit.

Start-up matters (the function's cold start waits for every extension's first ``event/next``): only the stdlib
pieces needed to reach ``event/next`` load here; the OTLP exporter loads in the background at the first INVOKE.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

from extension.assembler import Assembler, Outcome
from extension.buffer import SpanBuffer
from extension.exporter import PrintSink, SinkLoader, build_otlp_sink
from extension.flush import Flusher, FlushJob, FlushPolicy, read_flush_policy
from extension.lambda_api import ExtensionsApi, LambdaApiError
from extension.log import log
from extension.otlp_config import OtlpSettings, read_otlp_settings
from extension.receiver import Receiver, SocketSetupError, bind_socket
from extension.stats import Stats
from extension.telemetry import TelemetryListener
from extension.waterfall import WaterfallPrinter
from tracer import config

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, TextIO

    from extension.exporter import Sink


START_WAIT_WITHOUT_TELEMETRY_S = 0.1  # no START/END this long after INVOKE, and no telemetry: assume untraced
SHUTDOWN_MARGIN_S = 0.1  # leave this much of SHUTDOWN's deadline to exit cleanly
TELEMETRY_TYPES = ("platform",)


def configure_logging(stream: TextIO | None = None) -> None:
    """This process's log lines go straight to stderr at ``AFTERGLOW_LOG_LEVEL`` (the self-report always shows)."""
    from extension import log as log_module

    log_module.write_directly(config.read_str(config.AFTERGLOW_LOG_LEVEL, "WARNING"), stream)


class Extension:
    def __init__(
        self,
        api_address: str,
        socket_path: str | None = None,
        settings: OtlpSettings | None = None,
        policy: FlushPolicy | None = None,
        budget_s: float | None = None,
        max_spans: int | None = None,
        use_telemetry: bool = True,
        stdout: TextIO | None = None,
    ) -> None:
        self.api = ExtensionsApi(api_address)
        self.socket_path = socket_path or config.socket_path()
        self.settings = settings
        self.policy = policy or FlushPolicy()
        self.budget_s = budget_s if budget_s is not None else 0.25
        self.stats = Stats()
        self.buffer = SpanBuffer(max_spans or 20000, self.stats)
        self.assembler = Assembler(self.buffer, self.stats)
        self._cancel = threading.Event()
        printer = WaterfallPrinter(stdout)
        resolved = settings

        def factory() -> Sink:
            return build_otlp_sink(resolved, self._cancel) if resolved is not None else PrintSink(printer.write)

        self.loader = SinkLoader(factory)
        self.flusher = Flusher(self.buffer, self.loader, self.stats,
                               request_timeout_s=settings.timeout_s if settings else 10.0)
        self.use_telemetry = use_telemetry
        self.telemetry_active = False
        self.receiver: Receiver | None = None
        self.telemetry: TelemetryListener | None = None
        self.post_response_s: list[float] = []  # per invocation: from "invocation over" to the next event/next
        self._periodic_job: FlushJob | None = None

    @classmethod
    def from_environment(cls) -> Extension:
        address = config.raw("AWS_LAMBDA_RUNTIME_API")
        if not address:
            raise LambdaApiError("start", None, "AWS_LAMBDA_RUNTIME_API is not set: not running inside Lambda")
        return cls(
            address,
            settings=read_otlp_settings(),
            policy=read_flush_policy(),
            budget_s=config.read_int(config.AFTERGLOW_FLUSH_BUDGET_MS, 250) / 1000,
            max_spans=config.read_int(config.AFTERGLOW_MAX_BUFFERED_SPANS, 20000, minimum=1),
        )

    # --- lifecycle ---------------------------------------------------------------------------------------

    def run(self) -> int:
        """Register, set up, then serve events until SHUTDOWN. Returns the process exit code."""
        try:
            self.api.register()
        except LambdaApiError as error:
            log.error("cannot register with the Extensions API: %s", error)
            return 1
        try:
            self._set_up()
        except SocketSetupError as error:
            log.error("%s", error)
            self.api.report_error("init", "Extension.SocketUnavailable", str(error))
            self._tear_down()
            return 1
        try:
            while True:
                event = self.api.next_event()
                kind = event.get("eventType", "").upper()
                if kind == "INVOKE":
                    self.on_invoke(event)
                elif kind == "SHUTDOWN":
                    self.on_shutdown(event)
                    return 0
                else:
                    log.warning("ignoring an unknown event type %r", kind)
        except LambdaApiError as error:
            log.error("lost the Extensions API: %s", error)
            self._finish(time.monotonic() + 0.5, "api_lost")
            return 1
        finally:
            self._tear_down()

    def _set_up(self) -> None:
        listener = bind_socket(self.socket_path)
        self.receiver = Receiver(listener, self.assembler, self.stats)
        self.receiver.start()
        self.flusher.start()
        if self.use_telemetry:
            try:
                self.telemetry = TelemetryListener(self.on_telemetry)
                self.telemetry.start()
                self.telemetry_active = self.api.subscribe_telemetry(self.telemetry.uri, TELEMETRY_TYPES)
            except OSError as error:
                log.info("no telemetry listener (%s): falling back to bounded waits", error)
        if not self.telemetry_active and self.telemetry is not None:
            self.telemetry.stop()
            self.telemetry = None
        target = self.settings.describe() if self.settings else "the log (no OTLP endpoint: printing waterfalls)"
        log.info("ready: spans on %s, exporting to %s, flushing %s within %.0f ms; telemetry %s", self.socket_path,
                 target, self.policy.describe(), self.budget_s * 1000,
                 "subscribed" if self.telemetry_active else "unavailable (bounded waits instead)")

    def _tear_down(self) -> None:
        if self.telemetry is not None:
            self.telemetry.stop()
        if self.receiver is not None:
            self.receiver.stop()
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
        self.flusher.stop()
        self.loader.close()
        self.api.close()

    def on_telemetry(self, event: dict[str, Any]) -> None:
        if event.get("type") == "platform.runtimeDone":
            record = event.get("record")
            if isinstance(record, dict) and isinstance(record.get("requestId"), str):
                self.assembler.runtime_done(record["requestId"], str(record.get("status", "")),
                                            record.get("errorType") if isinstance(record.get("errorType"), str)
                                            else None)

    def _sync(self) -> None:
        if self.receiver is not None:
            self.receiver.sync()

    def on_invoke(self, event: dict[str, Any]) -> Outcome:
        request_id = str(event.get("requestId") or "")
        deadline_ms = event.get("deadlineMs")
        self.loader.begin()  # the exporter imports in the background while the function runs
        stale = self.assembler.open_invocations(exclude=request_id)
        if stale:  # a new INVOKE means the runtime is done with those: their END was lost
            self._sync()
            for old in stale:
                self.assembler.finalize(old, Outcome.INCOMPLETE)
        self.assembler.invoke(request_id, int(deadline_ms) if isinstance(deadline_ms, (int, float)) else 0)
        now = time.monotonic()
        if self.policy.periodic and self._periodic_job is None and self.policy.due(self.flusher.last_flush, now):
            # Export what earlier invocations left while this one runs; wait for it (within budget) at its end.
            self._periodic_job = self.flusher.submit(now + self.budget_s,
                                                     now + self.budget_s + self.flusher.request_timeout_s)
        outcome = self.assembler.wait(request_id, None if self.telemetry_active else START_WAIT_WITHOUT_TELEMETRY_S,
                                      self._sync)
        over = time.monotonic()
        if not self.policy.periodic:
            self.flusher.flush(self.budget_s)
        elif self._periodic_job is not None:
            self._periodic_job.done.wait(max(0.0, self._periodic_job.soft_deadline - time.monotonic()))
            if self._periodic_job.done.is_set():
                self._periodic_job = None
        self.post_response_s.append(time.monotonic() - over)
        if len(self.post_response_s) > 10000:
            del self.post_response_s[:5000]
        if self.stats.new_drops():
            log.report("%s", self.stats.report_line())
        return outcome

    def on_shutdown(self, event: dict[str, Any]) -> None:
        reason = str(event.get("shutdownReason") or "").lower()
        deadline_ms = event.get("deadlineMs")
        remaining = (deadline_ms / 1000 - time.time()) if isinstance(deadline_ms, (int, float)) else 1.0
        deadline = time.monotonic() + max(0.0, min(remaining, 30.0) - SHUTDOWN_MARGIN_S)
        log.info("SHUTDOWN (%s): %d spans to export within %.0f ms", reason or "unknown", self.buffer.held,
                 max(0.0, deadline - time.monotonic()) * 1000)
        self._cancel.set()  # a backoff sleeping in an earlier flush returns now
        self._sync()
        outcome = {"timeout": Outcome.TIMED_OUT, "failure": Outcome.CRASHED}.get(reason, Outcome.INCOMPLETE)
        self.assembler.finalize_open(outcome)
        self._finish(deadline, "shutdown")

    def _finish(self, deadline: float, reason: str) -> None:
        job = self.flusher.submit(deadline, deadline, force=True)
        job.done.wait(max(0.0, deadline - time.monotonic()))
        self.buffer.clear(reason)
        in_flight = self.buffer.held
        if in_flight:
            self.stats.drop(f"{reason}_in_flight", in_flight)
        self.stats.new_drops()
        log.report("%s", self.stats.report_line())


def main() -> int:
    configure_logging()
    try:
        extension = Extension.from_environment()
    except LambdaApiError as error:
        log.error("%s", error)
        return 1
    code = extension.run()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait on exporter threads (gRPC): SHUTDOWN's deadline is absolute
