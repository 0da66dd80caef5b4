"""The extension's word to the operator: the "ready" line at start, and the self-report line (what was received,
exported and dropped, per reason) whenever something new was dropped, and once at the end."""

from __future__ import annotations

from extension.lifecycle import Listener
from tracer.export.diagnostics import log

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from extension.lifecycle import Invocation, Shutdown
    from extension.signals import LogSignal, SpanSignal


class SelfReport(Listener):
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
