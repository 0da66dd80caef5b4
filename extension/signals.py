"""What the extension exports, one listener per signal: spans, the function's logs, the invocation profile.

A signal with an export (``SpanSignal``, ``LogSignal``) owns its bounded buffer, its counters, its exporter (loaded
in the background) and the flusher thread that drains the buffer; the flush policies (``extension.policies``)
decide when. Each reacts to the lifecycle for its own needs: the exporter starts loading at the first INVOKE, the
log collector opens and seals each invocation's lines, the profile takes its readings around each invocation.

Logs (``AFTERGLOW_LOGS``): the function's lines and Lambda's reports arrive through the Telemetry API and
leave as OTLP log records by a second flusher, in parallel with the spans and within the same budget. END comes
before the runtime's lines (they are delivered at least 25 ms after they are written, with ``runtimeDone``), so
after END the spans start exporting at once while the extension waits, within the budget, for ``runtimeDone``:
but only when the invocation wrote anything (``/proc/<pid>/io``) or failed (the runtime prints the error after
END). ``deferred`` never waits; lines that come later leave with the next flush.
"""

from __future__ import annotations

from extension.function_logs import LogCollector, platform_resource
from extension.lifecycle import Listener
from tracer import config
from tracer.export.assembler import Outcome
from tracer.export.buffer import SpanBuffer
from tracer.export.diagnostics import log
from tracer.export.exporter import PrintSink, SinkLoader, build_otlp_log_sink, build_otlp_sink
from tracer.export.flush import Flusher, spans_per_request
from tracer.export.stats import Stats

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from typing import Any

    from extension.lifecycle import Invocation
    from extension.profile import RuntimeWatch
    from tracer.export.assembler import Assembler
    from tracer.export.exporter import Sink
    from tracer.export.otlp_config import OtlpSettings
    from tracer.export.waterfall import WaterfallPrinter

LOGS_ON, LOGS_DEFERRED, LOGS_OFF = "true", "deferred", "false"
TELEMETRY_TYPES_WITH_LOGS = ("platform", "function")
LOG_CHUNK_RECORDS = 1024
LINES_WAIT_SHARE = 0.5  # of the flush budget, at most, waiting for an invocation's log lines; the rest is the export's


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


class Signal(Listener):
    """A signal with an export: what the flush policies drive. ``flusher`` is None while it exports nothing."""

    stats: Stats | None = None
    loader: SinkLoader | None = None
    flusher: Flusher | None = None

    def prepare(self, invocation: Invocation, complete: bool) -> None:
        """Before a flush after ``invocation``; ``complete``: the flush is that invocation's own, at its end."""

    def before_exit(self) -> None:
        """Before the last flush."""


class SpanSignal(Signal):
    """The spans: the assembler fills the buffer, this flusher drains it to OTLP or the printed waterfall."""

    def __init__(self, settings: OtlpSettings | None, buffer: SpanBuffer, stats: Stats, cancel: threading.Event,
                 printer: WaterfallPrinter | None, background: bool) -> None:
        """``printer``: where waterfalls go when ``settings`` is None (no OTLP endpoint). ``background``: exports run
        on the background thread, and a flush thread starts only if something else submits one."""
        self.buffer = buffer
        self.background = background
        self.stats: Stats | None = stats

        def factory() -> Sink:
            if settings is not None:
                return build_otlp_sink(settings, cancel)
            assert printer is not None
            return PrintSink(printer.write)

        self.loader: SinkLoader | None = SinkLoader(factory)
        self.flusher: Flusher | None = Flusher(buffer, self.loader, stats,
                                               request_timeout_s=settings.timeout_s if settings else 10.0,
                                               chunk_spans=spans_per_request())

    def start(self, registration: dict[str, Any]) -> None:
        assert self.flusher is not None
        if not self.background:
            self.flusher.start()

    def invoked(self, invocation: Invocation) -> None:
        assert self.loader is not None
        self.loader.begin()  # the exporter imports in the background while the function runs

    def stop(self) -> None:
        assert self.flusher is not None and self.loader is not None
        self.flusher.stop()
        self.loader.close()


class LogSignal(Signal):
    """The function's log lines and Lambda's reports, through the Telemetry API: off unless they have somewhere to go
    (an endpoint, or the printed waterfalls when traces are printed too) and the Telemetry API delivers them."""

    def __init__(self, mode: str, settings: OtlpSettings | None, printed: bool, max_logs: int, max_log_bytes: int,
                 cancel: threading.Event, printer: WaterfallPrinter | None, assembler: Assembler, watch: RuntimeWatch,
                 budget_s: float, background: bool) -> None:
        self.requested = mode
        self.settings = settings
        self.printed = printed  # under each waterfall, not exported
        self.assembler = assembler
        self.watch = watch
        self.budget_s = budget_s
        self.background = background
        self.stats: Stats | None = None
        self.exported_stats: Stats | None = None  # in the self-report line
        self.loader: SinkLoader | None = None
        self.flusher: Flusher | None = None
        self.collector: LogCollector | None = None
        self.description = "off"  # for the "ready" line
        self._registration: dict[str, Any] = {}
        self._function_arn: str | None = None
        self._fallback_resource: dict[str, Any] | None = None
        self.mode = self._set_up(mode, settings, max_logs, max_log_bytes, cancel, printer)
        self.telemetry_types = TELEMETRY_TYPES_WITH_LOGS if self.collector is not None else ()

    def _set_up(self, mode: str, settings: OtlpSettings | None, max_logs: int, max_log_bytes: int,
                cancel: threading.Event, printer: WaterfallPrinter | None) -> str:
        """Logs go to their endpoint; or, when traces are printed and logs have no endpoint of their own, under their
        trace's waterfall; or nowhere (traces exported, no logs endpoint). Returns the mode in effect."""
        if mode == LOGS_OFF or (settings is None and not self.printed):
            return LOGS_OFF
        self.stats = Stats()
        if not self.printed:  # printed under waterfalls, lines are no export to account for
            self.exported_stats = self.stats
        buffer = SpanBuffer(max_logs, self.stats, max_log_bytes)
        self.collector = LogCollector(buffer, self.stats, self.assembler.correlation, self._resource,
                                      keep_untraced=not self.printed, reports=not self.printed,
                                      seal_at_runtime_done=self.background)

        def factory() -> Sink:
            if settings is not None:
                return build_otlp_log_sink(settings, cancel)
            assert printer is not None  # printed: traces are printed too
            return PrintSink(printer.add_logs)

        self.loader = SinkLoader(factory)
        self.flusher = Flusher(buffer, self.loader, self.stats, what="log records",
                               request_timeout_s=settings.timeout_s if settings else 10.0,
                               chunk_spans=LOG_CHUNK_RECORDS,
                               when_unsupported=no_logs_endpoint_line(settings) if settings else None)
        return mode

    def start(self, registration: dict[str, Any]) -> None:
        self._registration = registration

    def ready(self, telemetry_active: bool) -> None:
        if self.collector is None:
            self.description = ("off" if self.requested == LOGS_OFF
                                else "off (traces are exported, logs have no endpoint)")
        elif not telemetry_active:  # the lines come only through the Telemetry API: nothing to export
            self.description = "off (no Telemetry API)"
            self.collector = self.flusher = self.loader = self.stats = self.exported_stats = None
            self.mode = LOGS_OFF
        else:
            assert self.flusher is not None
            if not self.background:  # in the background, exports run on the background thread
                self.flusher.start()
            self.description = ("under each waterfall" if self.settings is None else describe_target(self.settings)) + (
                ", late lines with the next flush" if self.mode == LOGS_DEFERRED and not self.background else "")

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

    def invoked(self, invocation: Invocation) -> None:
        if self.collector is not None and self.loader is not None:
            self.loader.begin()
            self.collector.begin(invocation.request_id)
            if self._function_arn is None and isinstance(invocation.event.get("invokedFunctionArn"), str):
                self._function_arn = invocation.event["invokedFunctionArn"]

    def prepare(self, invocation: Invocation, complete: bool) -> None:
        """Before a flush after ``invocation``: seal its lines; when ``complete`` is asked for (a flush at its end),
        first wait, within part of the budget, for the lines still on their way."""
        if self.collector is None:
            return
        if complete and self._lines_to_wait_for(invocation):
            request_id = invocation.request_id
            log.debug("waiting for the log lines of %s", request_id)
            if not self.assembler.wait_runtime_done(request_id, self.budget_s * LINES_WAIT_SHARE):
                log.debug("the log lines of %s did not all come within the budget: the rest go with the next flush",
                          request_id)
        self.collector.seal()

    def _lines_to_wait_for(self, invocation: Invocation) -> bool:
        """Are there log lines of this invocation still on their way? Only asked when END came first."""
        request_id = invocation.request_id
        if self.mode != LOGS_ON or not invocation.telemetry_active or invocation.outcome is not Outcome.ENDED:
            return False
        if self.flusher is not None and self.flusher.stopped:
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

    def before_exit(self) -> None:
        if self.collector is not None:
            self.collector.seal_all()  # the platform delivered what it had before SHUTDOWN

    def stop(self) -> None:
        if self.flusher is not None and self.loader is not None:
            self.flusher.stop()
            self.loader.close()


class ProfileSignal(Listener):
    """The invocation profile's readings from ``/proc`` (``extension.profile``): a baseline when the runtime goes
    idle, adopted when the next invocation begins; the assembler adds the result to the invocation span."""

    def __init__(self, watch: RuntimeWatch, assembler: Assembler) -> None:
        self.watch = watch
        self.assembler = assembler

    def invoked(self, invocation: Invocation) -> None:
        pid = self.assembler.latest_pid
        if pid:  # a warm process: its checkpoint becomes this invocation's (a new process's: at its START frame)
            self._call(self.watch.begin, invocation.request_id, pid)

    def idle(self, invocation: Invocation) -> None:
        pid = self.assembler.latest_pid
        if pid:  # the runtime is idle now: the next invocation's baseline (profile, output counter)
            self._call(self.watch.checkpoint, pid)

    def _call(self, call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception:  # the profile is a nicety
            log.exception("reading the runtime's profile failed (recovered)")


def describe_target(settings: OtlpSettings) -> str:
    """Where a signal goes, for the "ready" line."""
    return "nowhere (the OTLP settings cannot work, see above)" if settings.problems else settings.describe()
