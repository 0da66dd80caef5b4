"""The extension process: register, bind the span socket, follow the Lambda lifecycle, flush, report, exit.

Per invocation (DESIGN.md, "One invocation, seen by the extension"): INVOKE -> wait until END, or the Telemetry
API's ``platform.runtimeDone``, or the deadline (or, without telemetry, a short wait for a sign of life) ->
flush per ``AFTERGLOW_FLUSH`` within ``AFTERGLOW_FLUSH_BUDGET_MS`` -> ``event/next``. At SHUTDOWN: finalise what
is open, export within the deadline, log the self-report line, exit.

Logs (``AFTERGLOW_LOGS``): the function's lines and Lambda's reports arrive through the Telemetry API and
leave as OTLP log records by a second flusher, in parallel with the spans and within the same budget. END comes
before the runtime's lines (they are delivered at least 25 ms after they are written, with ``runtimeDone``), so
after END the spans start exporting at once while the extension waits, within the budget, for ``runtimeDone``:
but only when the invocation wrote anything (``/proc/<pid>/io``) or failed (the runtime prints the error after
END). ``deferred`` never waits; lines that come later leave with the next flush.

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
from extension.background import BackgroundExporter
from extension.buffer import DEFAULT_MAX_BYTES, DEFAULT_MAX_LOG_BYTES, SpanBuffer
from extension.exporter import PrintSink, SinkLoader, build_otlp_log_sink, build_otlp_sink
from extension.flush import Flusher, FlushJob, FlushPolicy, read_flush_policy
from extension.lambda_api import ExtensionsApi, LambdaApiError
from extension.log import log
from extension.logs import LogCollector, platform_resource
from extension.otlp_config import OtlpSettings, read_otlp_settings, report_problems
from extension.profile import RuntimeWatch
from extension.receiver import Receiver, SocketSetupError, bind_socket
from extension.stats import Stats
from extension.telemetry import TelemetryListener
from extension.waterfall import WaterfallPrinter
from tracer import config

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO

    from extension.exporter import Sink


START_WAIT_WITHOUT_TELEMETRY_S = 0.1  # no START/END this long after INVOKE, and no telemetry: assume untraced
# Leave this much of SHUTDOWN's deadline to count, write the self-report and exit: Lambda SIGKILLs at the deadline,
# and an export retrying against a dead collector runs until the margin (0.1 s was not always enough on a loaded
# machine, and the report line is what says what was lost).
SHUTDOWN_MARGIN_S = 0.3
TELEMETRY_TYPES = ("platform",)
TELEMETRY_TYPES_WITH_LOGS = ("platform", "function")
LOG_CHUNK_RECORDS = 1024
LINES_WAIT_SHARE = 0.5  # of the flush budget, at most, waiting for an invocation's log lines; the rest is the export's
LOGS_ON, LOGS_DEFERRED, LOGS_OFF = "true", "deferred", "false"
TELEMETRY_BUFFER_MS = 25  # following each invocation: its runtimeDone as early as Lambda sends it
TELEMETRY_BUFFER_MS_BACKGROUND = 1000  # background export: one delivery a second at most, not one per invocation
HIGH_WATER_SHARE = 0.25  # of a buffer's bound: past it, the background export goes at once


def read_logs_exporter() -> str:
    """``OTEL_LOGS_EXPORTER``: ``otlp`` (the default) or ``none``; anything else warns once and means ``otlp``."""
    text = (config.raw(config.OTEL_LOGS_EXPORTER) or "otlp").lower()
    if text not in ("otlp", "none"):
        log.warning("ignoring %s=%r: expected otlp or none; using otlp", config.OTEL_LOGS_EXPORTER, text)
        return "otlp"
    return text


def read_logs_mode(printing: bool = False) -> str:
    """``AFTERGLOW_LOGS``: ``deferred``, ``true`` or ``false``; ``OTEL_LOGS_EXPORTER=none`` means false.

    The default is ``deferred`` when exporting: the Telemetry API delivers a line at least 25 ms after it was
    written, so waiting for an invocation's lines (``true``) would keep the environment, billed, that much
    longer after every response that printed; deferred lines leave with the next flush, or at SHUTDOWN.
    With no endpoint (``printing`` waterfalls, as in ``afterglow run``) the default is ``true``, so each trace
    is printed with its own lines.
    """
    default = LOGS_ON if printing else LOGS_DEFERRED
    if read_logs_exporter() == "none":
        return LOGS_OFF
    text = config.read_str(config.AFTERGLOW_LOGS, default).lower()
    if text in ("true", "1", "yes", "on"):
        return LOGS_ON
    if text in ("false", "0", "no", "off"):
        return LOGS_OFF
    if text == LOGS_DEFERRED:
        return LOGS_DEFERRED
    log.warning("ignoring %s=%r: expected deferred, true or false; using %s", config.AFTERGLOW_LOGS, text, default)
    return default


def no_logs_endpoint_line(settings: OtlpSettings) -> str:
    """The one line logged when the collector answers that it has no logs endpoint (``{answer}``: its answer)."""
    return (f"the collector has no logs endpoint ({settings.where()} answered {{answer}}): log records are no longer "
            f"exported in this environment and are counted as dropped; set OTEL_LOGS_EXPORTER=none to stop "
            f"sending them")


def _describe(settings: OtlpSettings) -> str:
    return "nowhere (the OTLP settings cannot work, see above)" if settings.problems else settings.describe()


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
        logs: str = LOGS_OFF,
        log_settings: OtlpSettings | None = None,
        max_logs: int | None = None,
        profile: bool = True,
        max_bytes: int | None = None,
        max_log_bytes: int | None = None,
    ) -> None:
        self.api = ExtensionsApi(api_address)
        self.socket_path = socket_path or config.socket_path()
        self.settings = settings
        self.policy = policy or FlushPolicy()
        self.background: BackgroundExporter | None = None
        self.budget_s = budget_s if budget_s is not None else 0.25
        self.stats = Stats()
        self.buffer = SpanBuffer(max_spans or 20000, self.stats, max_bytes or DEFAULT_MAX_BYTES)
        self.watch = RuntimeWatch(profile=profile)
        # In the background nothing is woken as an invocation ends, so nothing can read /proc then: the invocation's
        # profile is the CPU time the function measures itself.
        self.assembler = Assembler(self.buffer, self.stats, watch=None if self.policy.background else self.watch)
        self._cancel = threading.Event()
        printer = WaterfallPrinter(stdout)
        resolved = settings

        def factory() -> Sink:
            return build_otlp_sink(resolved, self._cancel) if resolved is not None else PrintSink(printer.write)

        self.loader = SinkLoader(factory)
        self.flusher = Flusher(self.buffer, self.loader, self.stats,
                               request_timeout_s=settings.timeout_s if settings else 10.0)
        self.log_settings = log_settings
        self.log_stats: Stats | None = None
        self._exported_log_stats: Stats | None = None  # in the self-report line
        self.log_loader: SinkLoader | None = None
        self.log_flusher: Flusher | None = None
        self.collector: LogCollector | None = None
        self._registration: dict[str, Any] = {}
        self._function_arn: str | None = None
        self._fallback_resource: dict[str, Any] | None = None
        self._logs_requested = logs
        self.logs_mode = self._set_up_logs(logs, log_settings, max_logs or 10000, printer,
                                           max_log_bytes or DEFAULT_MAX_LOG_BYTES)
        self.use_telemetry = use_telemetry
        self.telemetry_active = False
        self.receiver: Receiver | None = None
        self.telemetry: TelemetryListener | None = None
        self.post_response_s: list[float] = []  # per invocation: from "invocation over" to the next event/next
        self._periodic_job: FlushJob | None = None
        self._periodic_log_job: FlushJob | None = None

    def _set_up_logs(self, logs: str, settings: OtlpSettings | None, max_logs: int, printer: WaterfallPrinter,
                     max_log_bytes: int) -> str:
        """Logs go to their endpoint; or, when traces are printed and logs have no endpoint of their own, under their
        trace's waterfall; or nowhere (traces exported, no logs endpoint). Returns the mode in effect."""
        printed = self.settings is None and settings is None
        if logs == LOGS_OFF or (settings is None and not printed):
            return LOGS_OFF
        self.log_stats = Stats()
        if not printed:  # printed under waterfalls, lines are no export to account for
            self._exported_log_stats = self.log_stats
        buffer = SpanBuffer(max_logs, self.log_stats, max_log_bytes)
        self.collector = LogCollector(buffer, self.log_stats, self.assembler.correlation, self._resource,
                                      keep_untraced=not printed, reports=not printed,
                                      seal_at_runtime_done=self.policy.background)

        def factory() -> Sink:
            return build_otlp_log_sink(settings, self._cancel) if settings is not None else PrintSink(printer.add_logs)

        self.log_loader = SinkLoader(factory)
        self.log_flusher = Flusher(buffer, self.log_loader, self.log_stats, what="log records",
                                   request_timeout_s=settings.timeout_s if settings else 10.0,
                                   chunk_spans=LOG_CHUNK_RECORDS,
                                   when_unsupported=no_logs_endpoint_line(settings) if settings else None)
        return logs

    @classmethod
    def from_environment(cls) -> Extension:
        address = config.raw("AWS_LAMBDA_RUNTIME_API")
        if not address:
            raise LambdaApiError("start", None, "AWS_LAMBDA_RUNTIME_API is not set: not running inside Lambda")
        settings = read_otlp_settings()
        logs = read_logs_mode(printing=settings is None)
        log_settings = read_otlp_settings("logs") if logs != LOGS_OFF else None
        report_problems({"traces": settings, "logs": log_settings})
        return cls(
            address,
            settings=settings,
            policy=read_flush_policy(printing=settings is None),
            budget_s=config.read_int(config.AFTERGLOW_FLUSH_BUDGET_MS, 250) / 1000,
            max_spans=config.read_int(config.AFTERGLOW_MAX_BUFFERED_SPANS, 20000, minimum=1),
            logs=logs,
            log_settings=log_settings,
            max_logs=config.read_int(config.AFTERGLOW_MAX_BUFFERED_LOGS, 10000, minimum=1),
            profile=config.read_bool(config.AFTERGLOW_PROFILE, True),
            max_bytes=config.read_int(config.AFTERGLOW_MAX_BUFFERED_BYTES, DEFAULT_MAX_BYTES, minimum=1),
            max_log_bytes=config.read_int(config.AFTERGLOW_MAX_BUFFERED_LOG_BYTES, DEFAULT_MAX_LOG_BYTES, minimum=1),
        )

    # --- lifecycle ---------------------------------------------------------------------------------------

    def run(self) -> int:
        """Register, set up, then serve events until SHUTDOWN. Returns the process exit code."""
        events = ("SHUTDOWN",) if self.policy.background else ("INVOKE", "SHUTDOWN")
        try:
            self._registration = self.api.register(events)
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
        background = self.policy.background
        self.receiver = Receiver(listener, self.assembler, self.stats, poll_rings=background)
        self.receiver.start()
        if not background:  # in the background, exports run on the background thread (a flush thread only if needed)
            self.flusher.start()
        # Following invocations needs runtimeDone; background export needs the Telemetry API only for the logs.
        if self.use_telemetry and (self.collector is not None or not background):
            try:
                # Polled rings are read before each batch: its lines then find their invocation's START.
                self.telemetry = TelemetryListener(self.on_telemetry, on_failure=self._telemetry_failed,
                                                   before_batch=self._sync if background else None)
                self.telemetry.start()
                types = TELEMETRY_TYPES_WITH_LOGS if self.collector is not None else TELEMETRY_TYPES
                self.telemetry_active = self.api.subscribe_telemetry(
                    self.telemetry.uri, types, TELEMETRY_BUFFER_MS_BACKGROUND if background else TELEMETRY_BUFFER_MS)
            except OSError as error:
                log.info("no telemetry listener (%s): falling back to bounded waits", error)
        if not self.telemetry_active and self.telemetry is not None:
            self.telemetry.stop()
            self.telemetry = None
        target = _describe(self.settings) if self.settings else "the log (no OTLP endpoint: printing waterfalls)"
        if self.collector is None:
            logs = "off" if self._logs_requested == LOGS_OFF else "off (traces are exported, logs have no endpoint)"
        elif not self.telemetry_active:  # the lines come only through the Telemetry API: nothing to export
            logs = "off (no Telemetry API)"
            self.collector = self.log_flusher = self.log_loader = self.log_stats = self._exported_log_stats = None
            self.logs_mode = LOGS_OFF
        else:
            assert self.log_flusher is not None
            if not background:
                self.log_flusher.start()
            logs = ("under each waterfall" if self.log_settings is None else _describe(self.log_settings)) + (
                ", late lines with the next flush" if self.logs_mode == LOGS_DEFERRED and not background else "")
        if background:
            self._start_background()
        log.info("ready: spans on %s, exporting to %s, flushing %s within %.0f ms; telemetry %s; logs: %s",
                 self.socket_path, target, self.policy.describe(), self.budget_s * 1000,
                 "subscribed" if self.telemetry_active else "unavailable (bounded waits instead)", logs)

    def _telemetry_failed(self) -> None:
        """The listener stopped for good: follow invocations with bounded waits, as without the Telemetry API."""
        self.telemetry_active = False

    def _start_background(self) -> None:
        flushers = [self.flusher] + ([self.log_flusher] if self.log_flusher is not None else [])
        self.background = BackgroundExporter(flushers, self.policy.interval_s, self._after_background_pass,
                                             before_pass=self._sync)
        for flusher in flushers:
            flusher.buffer.high_water = max(1, int(flusher.buffer.max_spans * HIGH_WATER_SHARE))
            flusher.buffer.high_water_bytes = max(1, int(flusher.buffer.max_bytes * HIGH_WATER_SHARE))
            flusher.buffer.on_high_water = self.background.high_water
        self.loader.begin()  # the exporter is light (no SDK): it loads now, not in an invocation's thaw
        if self.log_loader is not None:
            self.log_loader.begin()
        self.background.start()

    def _after_background_pass(self) -> None:
        if self.stats.new_drops() | (self.log_stats is not None and self.log_stats.new_drops()):
            log.report("%s", self.stats.report_line(self._exported_log_stats))

    def _tear_down(self) -> None:
        if self.background is not None:
            self.background.stop()
        if self.telemetry is not None:
            self.telemetry.stop()
        if self.receiver is not None:
            self.receiver.stop()
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
        self.flusher.stop()
        self.loader.close()
        if self.log_flusher is not None and self.log_loader is not None:
            self.log_flusher.stop()
            self.log_loader.close()
        self.api.close()

    def _resource(self) -> dict[str, Any]:
        """The resource of log records that no traced invocation claims: the last HELLO's, else the platform's."""
        if self.assembler.latest_resource:
            return self.assembler.latest_resource
        if self._fallback_resource is None:
            self._fallback_resource = platform_resource(
                self._registration.get("functionName"), self._registration.get("functionVersion"),
                self._function_arn, config.raw("OTEL_SERVICE_NAME"), config.raw("OTEL_RESOURCE_ATTRIBUTES"))
        return self._fallback_resource

    def on_telemetry(self, event: dict[str, Any]) -> None:
        if self.collector is not None:
            self.collector.on_event(event)  # before runtimeDone wakes the main thread: the lines are in by then
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
        if self.collector is not None and self.log_loader is not None:
            self.log_loader.begin()
            self.collector.begin(request_id)
            if self._function_arn is None and isinstance(event.get("invokedFunctionArn"), str):
                self._function_arn = event["invokedFunctionArn"]
        pid = self.assembler.latest_pid
        if pid:  # a warm process: its checkpoint becomes this invocation's (a new process's: at its START frame)
            self._watch_call(self.watch.begin, request_id, pid)
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
            if self.log_flusher is not None and self._periodic_log_job is None:
                self._periodic_log_job = self.log_flusher.submit(
                    now + self.budget_s, now + self.budget_s + self.log_flusher.request_timeout_s)
        outcome = self.assembler.wait(request_id, None if self.telemetry_active else START_WAIT_WITHOUT_TELEMETRY_S,
                                      self._sync)
        over = time.monotonic()
        if not self.policy.periodic:
            self._flush_at_end(request_id, outcome, over + self.budget_s)
        else:
            if self.collector is not None:
                self.collector.seal()
            self._periodic_job = self._wait_periodic(self._periodic_job)
            self._periodic_log_job = self._wait_periodic(self._periodic_log_job)
        pid = self.assembler.latest_pid
        if pid:  # the runtime is idle now: the next invocation's baseline (profile, output counter)
            self._watch_call(self.watch.checkpoint, pid)
        self.post_response_s.append(time.monotonic() - over)
        if len(self.post_response_s) > 10000:
            del self.post_response_s[:5000]
        if self.stats.new_drops() | (self.log_stats is not None and self.log_stats.new_drops()):
            log.report("%s", self.stats.report_line(self._exported_log_stats))
        return outcome

    def _wait_periodic(self, job: FlushJob | None) -> FlushJob | None:
        if job is None:
            return None
        job.done.wait(max(0.0, job.soft_deadline - time.monotonic()))
        return None if job.done.is_set() else job

    def _watch_call(self, call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception:  # the profile is a nicety
            log.exception("reading the runtime's profile failed (recovered)")

    def _submit(self, flusher: Flusher, until: float, force: bool = False) -> FlushJob:
        return flusher.submit(until, until if force else until + flusher.request_timeout_s, force)

    def _flush_at_end(self, request_id: str, outcome: Outcome, until: float) -> None:
        """Spans and log records, in parallel, within the budget (``until``, monotonic)."""
        if self.collector is None or self.log_flusher is None:
            self._submit(self.flusher, until).done.wait(max(0.0, until - time.monotonic()))
            return
        jobs = []
        printing = self.settings is None  # a waterfall prints its lines: they must be there first
        if not printing:
            jobs.append(self._submit(self.flusher, until))  # spans leave while the lines are awaited
        if self._lines_to_wait_for(request_id, outcome):
            log.debug("waiting for the log lines of %s", request_id)
            if not self.assembler.wait_runtime_done(request_id, self.budget_s * LINES_WAIT_SHARE):
                log.debug("the log lines of %s did not all come within the budget: the rest go with the next flush",
                          request_id)
        self.collector.seal()
        jobs.append(self._submit(self.log_flusher, until))
        if printing:
            jobs[-1].done.wait(max(0.0, until - time.monotonic()))
            jobs.append(self._submit(self.flusher, until))
        for job in jobs:
            job.done.wait(max(0.0, until - time.monotonic()))

    def _lines_to_wait_for(self, request_id: str, outcome: Outcome) -> bool:
        """Are there log lines of this invocation still on their way? Only asked when END came first."""
        if self.logs_mode != LOGS_ON or not self.telemetry_active or outcome is not Outcome.ENDED:
            return False
        if self.log_flusher is not None and self.log_flusher.stopped:
            return False  # the collector takes no logs: nothing to wait for
        if self.assembler.runtime_done_seen(request_id):
            return False  # its lines came before it
        pid, failed = self.assembler.process_of(request_id)
        if failed:
            return True  # the runtime prints the error after END
        try:
            wrote = self.watch.wrote(request_id, pid)
        except Exception:
            log.exception("reading the runtime's output counter failed (recovered)")
            wrote = None
        return wrote is not False  # unknown: wait, within the budget

    def on_shutdown(self, event: dict[str, Any]) -> None:
        reason = str(event.get("shutdownReason") or "").lower()
        deadline_ms = event.get("deadlineMs")
        remaining = (deadline_ms / 1000 - time.time()) if isinstance(deadline_ms, (int, float)) else 1.0
        deadline = time.monotonic() + max(0.0, min(remaining, 30.0) - SHUTDOWN_MARGIN_S)
        log.info("SHUTDOWN (%s): %d spans to export within %.0f ms", reason or "unknown", self.buffer.held,
                 max(0.0, deadline - time.monotonic()) * 1000)
        self._cancel.set()  # a backoff sleeping in an earlier flush returns now
        # A burst the frozen extension had not read yet (up to a ring's worth) is read before anything is counted or
        # exported: spans read after the self-report would be lost without a count. Half the deadline at most.
        if self.receiver is not None and not self.receiver.sync(max(0.5, (deadline - time.monotonic()) / 2)):
            log.warning("SHUTDOWN: the span receiver has not read everything the function handed over within half "
                        "the deadline; what it reads from now on is not in the self-report")
        outcome = {"timeout": Outcome.TIMED_OUT, "failure": Outcome.CRASHED}.get(reason, Outcome.INCOMPLETE)
        self.assembler.finalize_open(outcome)
        self._finish(deadline, "shutdown")

    def _finish(self, deadline: float, reason: str) -> None:
        """Export everything left, spans and log records side by side, by ``deadline``; count what is not."""
        if self.collector is not None:
            self.collector.seal_all()  # the platform delivered what it had before SHUTDOWN
        pairs = [(self.flusher, self.buffer, self.stats)]
        if self.log_flusher is not None and self.log_stats is not None:
            pairs.insert(0, (self.log_flusher, self.log_flusher.buffer, self.log_stats))  # lines before waterfalls
        jobs = []
        for flusher, _, _ in pairs:
            jobs.append(self._submit(flusher, deadline, force=True))
            if self.settings is None:  # printing: one after the other, so that lines find their trace
                jobs[-1].done.wait(max(0.0, deadline - time.monotonic()))
        for job in jobs:
            job.done.wait(max(0.0, deadline - time.monotonic()))
        for _, buffer, stats in pairs:
            buffer.clear(reason)
            in_flight = buffer.held
            if in_flight:
                stats.drop(f"{reason}_in_flight", in_flight)
            stats.new_drops()
        log.report("%s", self.stats.report_line(self._exported_log_stats))


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
