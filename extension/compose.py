"""The extension's parts, composed: the lifecycle loop and its listeners, in the order the work must happen.

Per invocation (DESIGN.md, "One invocation, seen by the extension"): INVOKE -> wait until END, or the Telemetry
API's ``platform.runtimeDone``, or the deadline (or, without telemetry, a short wait for a sign of life) ->
flush per ``AFTERGLOW_FLUSH`` within ``AFTERGLOW_FLUSH_BUDGET_MS`` -> ``event/next``. At SHUTDOWN: finalise what
is open, export within the deadline, log the self-report line, exit.

``extension.lifecycle`` is the loop; it tells its listeners what happens, in the order composed here: the signals
(``extension.signals``: spans, logs, the profile), the last export, the invocation tracker, the flush policy
(``extension.policies``) and the self-report (``SelfReport``, here). ``extension.main`` loads this module only
once the extension has registered: its imports then overlap the function's runtime starting.
"""

from __future__ import annotations

import threading

from extension.backpressure import BackPressure
from extension.lambda_api import ExtensionsApi
from extension.lifecycle import InvocationTracker, Lifecycle, Listener
from extension.policies import FlushAtEnd, FlushAtExit, FlushInBackground, FlushPeriodically
from extension.profile import RuntimeWatch
from extension.signals import LOGS_OFF, LogSignal, ProfileSignal, SpanSignal, describe_target, read_logs_mode
from tracer import config
from tracer.export.assembler import Assembler
from tracer.export.buffer import DEFAULT_MAX_BYTES, DEFAULT_MAX_LOG_BYTES, SpanBuffer
from tracer.export.diagnostics import log
from tracer.export.flush import FlushPolicy
from tracer.export.otlp_config import OtlpSettings, read_otlp_settings, report_problems
from tracer.export.stats import Stats

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from extension.lifecycle import Invocation, Shutdown


class SelfReport(Listener):
    """The extension's word to the operator: the "ready" line at start, and the self-report line (what was received,
    exported and dropped, per reason) whenever something new was dropped, and once at the end."""

    def __init__(self, spans: SpanSignal, logs: LogSignal, ready_line: Callable[[bool], str]) -> None:
        self.spans = spans
        self.logs = logs
        self.ready_line = ready_line  # given whether the Telemetry API is subscribed

    def ready(self, telemetry_active: bool) -> None:
        log.info("%s", self.ready_line(telemetry_active))

    def line(self) -> str:
        assert self.spans.stats is not None
        return self.spans.stats.report_line(self.logs.exported_stats)

    def report_new_drops(self) -> None:
        """The self-report line, when something was dropped since the last one (after an invocation, an export)."""
        assert self.spans.stats is not None
        if self.spans.stats.new_drops() | (self.logs.stats is not None and self.logs.stats.new_drops()):
            log.report("%s", self.line())

    def idle(self, invocation: Invocation) -> None:
        self.report_new_drops()

    def exiting(self, shutdown: Shutdown) -> None:
        log.report("%s", self.line())


class Extension:
    def __init__(
        self,
        api: ExtensionsApi,
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
        self.socket_path = socket_path or config.socket_path()
        self.settings = settings
        self.policy = policy or FlushPolicy()
        self.budget_s = budget_s if budget_s is not None else 0.25
        self.stats = Stats()
        self.buffer = SpanBuffer(max_spans or 20000, self.stats, max_bytes or DEFAULT_MAX_BYTES)
        self.watch = RuntimeWatch(profile=profile)
        # In the background nothing is woken as an invocation ends, so nothing can read /proc then: the invocation's
        # profile is the CPU time the function measures itself.
        self.assembler = Assembler(self.buffer, self.stats, watch=None if self.policy.background else self.watch)
        cancel = threading.Event()  # set at SHUTDOWN: an export's backoff returns at once
        printing = settings is None  # waterfalls, not OTLP
        printer = None
        if printing:  # loaded only to print: an exporting extension reaches event/next without it
            from tracer.export.waterfall import WaterfallPrinter

            printer = WaterfallPrinter(stdout)
        self.spans = SpanSignal(settings, self.buffer, self.stats, cancel, printer, self.policy.background)
        self.logs = LogSignal(logs, log_settings, printing and log_settings is None, max_logs or 10000,
                              max_log_bytes or DEFAULT_MAX_LOG_BYTES, cancel, printer, self.assembler, self.watch,
                              self.budget_s, self.policy.background)
        # Spans the buffer has no room for wait in the function's ring; with background export the function waits
        # for us after its response (within the budget) when its ring fills up, the others hold the environment.
        self.back_pressure = BackPressure(self.buffer, self.spans.flusher,
                                          round(self.budget_s * 1000) if self.policy.background else 0)
        self.tracker = InvocationTracker(self.socket_path, self.assembler, self.stats,
                                         poll_rings=self.policy.background, back_pressure=self.back_pressure)
        self.report = SelfReport(self.spans, self.logs, self._ready_line)
        signals = [self.spans, self.logs]
        flush: Listener
        if self.policy.background:
            flush = FlushInBackground(signals, self.policy.interval_s, self.tracker.sync_for_export,
                                      self.report.report_new_drops, self.back_pressure)
        elif self.policy.periodic:
            flush = FlushPeriodically(signals, self.policy, self.budget_s, self.back_pressure)
        else:
            flush = FlushAtEnd(signals, one_after_another=printing)
        # The order each event reaches them: a new INVOKE reaches the signals (exporters start loading, the log
        # lines open) before the tracker registers it; the log lines hear the Telemetry API before the tracker
        # hears runtimeDone; SHUTDOWN stops exports' backoffs before the tracker finalises what is open.
        self.lifecycle = Lifecycle(
            api, self.tracker,
            [self.spans, self.logs, ProfileSignal(self.watch, self.assembler),
             FlushAtExit(signals, one_after_another=printing, cancel=cancel), self.tracker, flush, self.report],
            self.budget_s, use_telemetry=use_telemetry)

    @classmethod
    def from_environment(cls, api: ExtensionsApi, settings: OtlpSettings | None, policy: FlushPolicy) -> Extension:
        """The rest of the configuration from the environment; ``settings`` and ``policy`` were read to register
        (``extension.main``)."""
        logs = read_logs_mode(printing=settings is None)
        log_settings = read_otlp_settings("logs") if logs != LOGS_OFF else None
        report_problems({"traces": settings, "logs": log_settings})
        return cls(
            api,
            settings=settings,
            policy=policy,
            budget_s=config.read_int(config.AFTERGLOW_FLUSH_BUDGET_MS, 250) / 1000,
            max_spans=config.read_int(config.AFTERGLOW_MAX_BUFFERED_SPANS, 20000, minimum=1),
            logs=logs,
            log_settings=log_settings,
            max_logs=config.read_int(config.AFTERGLOW_MAX_BUFFERED_LOGS, 10000, minimum=1),
            profile=config.read_bool(config.AFTERGLOW_PROFILE, True),
            max_bytes=config.read_int(config.AFTERGLOW_MAX_BUFFERED_BYTES, DEFAULT_MAX_BYTES, minimum=1),
            max_log_bytes=config.read_int(config.AFTERGLOW_MAX_BUFFERED_LOG_BYTES, DEFAULT_MAX_LOG_BYTES, minimum=1),
        )

    def run(self) -> int:
        """Set up (``extension.main`` has registered), then serve events until SHUTDOWN. Returns the process exit
        code."""
        return self.lifecycle.run()

    def _ready_line(self, telemetry_active: bool) -> str:
        target = (describe_target(self.settings) if self.settings
                  else "the log (no OTLP endpoint: printing waterfalls)")
        return (f"ready: spans on {self.socket_path}, exporting to {target}, flushing {self.policy.describe()} within "
                f"{self.budget_s * 1000:.0f} ms; telemetry "
                f"{'subscribed' if telemetry_active else 'unavailable (bounded waits instead)'}; "
                f"logs: {self.logs.description}")
