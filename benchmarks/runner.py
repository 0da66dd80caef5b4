"""Run every configuration through every scenario in the sandbox, interleaved, and collect raw samples.

Machine noise should hit every configuration alike, so nothing runs one configuration after another for
long: during a scenario all configurations have a warm sandbox open at once and take turns, a short batch
of invocations each, in an order that rotates from batch to batch. Cold starts take turns the same way.
Every invocation waits for its REPORT (the runtime and every extension back at ``next``) before the next
one starts, so no configuration's post-response work overlaps another's measurement.
"""

from __future__ import annotations

import functools
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.configs import Config
from benchmarks.scenarios import COLD_START_EVENT, FIRST_WARM_EVENT, Scenario
from benchmarks.services import AwsTarget, Collector, receiver_files

FUNCTION_DIR = Path(__file__).resolve().parent / "function"
FUNCTION_TIMEOUT_S = 30.0
MEMORY_MB = 1024
Log = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """How many invocations and cold starts; ``batches`` is scaled down for costly scenarios."""

    cold_starts: int
    warmup: int
    batches: int
    batch_size: int

    def batches_for(self, scenario: Scenario) -> int:
        return max(min(self.batches, 3), round(self.batches / math.sqrt(scenario.weight)))


# Sized so that the whole run, with the cost measurement before it, fits in about 15 minutes (--quick: 3) on
# two shared cores.
FULL = Plan(cold_starts=12, warmup=10, batches=50, batch_size=5)
QUICK = Plan(cold_starts=2, warmup=3, batches=8, batch_size=2)


@dataclass
class Samples:
    """Raw measurements of one configuration in one scenario."""

    latency_ms: list[float] = field(default_factory=list)  # caller-observed, warm invocations
    duration_ms: list[float] = field(default_factory=list)  # REPORT duration (what Lambda bills)
    runtime_ms: list[float] = field(default_factory=list)  # platform.runtimeDone duration: start -> runtime's next
    post_response_ms: list[float] = field(default_factory=list)  # REPORT post-runtime extension time
    invocations: int = 0  # every invocation, warm-up included
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    spans_created: int = 0
    spans_exported: int = 0
    duplicates: int = 0
    rss_mb: float | None = None
    rss_hwm_mb: float | None = None
    extension_rss_mb: float | None = None
    extension_rss_hwm_mb: float | None = None
    failure: str | None = None  # the configuration could not run this scenario at all
    extension_report: str | None = None  # the extension's last self-report line that counts drops, if any


@dataclass
class ColdStarts:
    init_ms: list[float] = field(default_factory=list)  # REPORT Init Duration
    first_latency_ms: list[float] = field(default_factory=list)  # caller-observed, init + first invocation
    first_warm_post_runtime_ms: list[float] = field(default_factory=list)  # the next invocation's (10 spans, a line)
    first_warm_billed_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    spans_created: int = 0
    spans_exported: int = 0


@dataclass
class RunResults:
    samples: dict[tuple[str, str], Samples] = field(default_factory=dict)
    cold: dict[str, ColdStarts] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # config -> why it did not run


class Harness:
    """Owns the collectors and layers; runs the phases. ``close()`` stops what it started."""

    def __init__(self, configs: Sequence[Config], layers: dict[str, Path], aws: AwsTarget | None,
                 log: Log = print) -> None:
        self.configs = list(configs)
        self.layers = layers
        self.aws = aws
        self.log = log
        self.collectors: dict[str, Collector] = {}
        self.results = RunResults()
        try:
            for config in self.configs:
                if config.collector is not None and config.collector != "stdout":  # stdout: the function's log
                    ca_dir = receiver_files() if config.collector == "lumigo" else None
                    self.collectors[config.name] = Collector(config.collector, config.collector_delay_ms, ca_dir)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for collector in self.collectors.values():
            collector.stop()

    # --- one sandbox -----------------------------------------------------------------------------------

    def _env(self, config: Config) -> dict[str, str]:
        env = function_env(config, self.layers)
        collector = self.collectors.get(config.name)
        if collector is not None:
            env.update(collector.function_env())
        return env

    def open_sandbox(self, config: Config) -> Any:
        from sandbox import Sandbox

        layers = [self.layers[config.layer]] if config.layer else []
        return Sandbox(FUNCTION_DIR, config.handler, layers=layers, env=self._env(config),
                       timeout=FUNCTION_TIMEOUT_S, memory=MEMORY_MB, function_name="bench", runtime=config.runtime)

    def _spans_made(self, config: Config, body: dict[str, Any]) -> int:
        made = int(body.get("children", 0)) if config.child_spans else 0
        if config.traces_aws_calls:
            made += int(body.get("aws_calls", 0))
        if config.invocation_span:
            made += 1
        return made

    def _exported(self, config: Config) -> tuple[int, int]:
        collector = self.collectors.get(config.name)
        return collector.snapshot() if collector is not None else (0, 0)

    # --- cold starts -----------------------------------------------------------------------------------

    def cold_starts(self, rounds: int) -> None:
        """Each round opens a fresh sandbox per configuration, invokes them one at a time (nothing else runs
        meanwhile: a sandbox has no processes before its first invoke), then once more (the first warm
        invocation), then shuts them all down together."""
        for config in self.configs:
            self.results.cold.setdefault(config.name, ColdStarts())
        for round_index in range(rounds):
            self.log(f"cold starts: round {round_index + 1}/{rounds}")
            skipped = self.results.skipped
            order = [config for config in _rotated(self.configs, round_index) if config.name not in skipped]
            before = {config.name: self._exported(config)[0] for config in order}
            boxes: dict[str, Any] = {}
            try:
                for config in order:
                    try:
                        boxes[config.name] = self.open_sandbox(config)
                    except Exception as error:
                        _note_error(self.results.cold[config.name], f"sandbox: {error}")
                for config in order:
                    if config.name in boxes:
                        self._one_cold_start(config, boxes[config.name])
            finally:
                _shutdown_all(boxes.values())
            for config in order:
                cold = self.results.cold[config.name]
                cold.spans_exported += self._exported(config)[0] - before[config.name]

    def _one_cold_start(self, config: Config, box: Any) -> None:
        cold = self.results.cold[config.name]
        try:
            invocation = box.invoke(COLD_START_EVENT, headers=trace_header())
            report = invocation.report(timeout=FUNCTION_TIMEOUT_S + 10)
        except Exception as error:
            _note_error(cold, f"invoke: {error}")
            return
        if invocation.function_error or report.init_duration_ms is None:
            _note_error(cold, _describe_failure(invocation, report))
            return
        cold.init_ms.append(report.init_duration_ms)
        cold.first_latency_ms.append(invocation.latency_ms)
        cold.spans_created += self._spans_made(config, invocation.json())
        # The first warm invocation, with real work: what an extension defers out of init is billed here.
        try:
            warm = box.invoke(FIRST_WARM_EVENT, headers=trace_header())
            warm_report = warm.report(timeout=FUNCTION_TIMEOUT_S + 10)
        except Exception as error:
            _note_error(cold, f"invoke: {error}")
            return
        if warm.function_error or warm_report.status != "success":
            _note_error(cold, _describe_failure(warm, warm_report))
            return
        cold.spans_created += self._spans_made(config, warm.json())
        if warm_report.post_runtime_extensions_ms is not None:
            cold.first_warm_post_runtime_ms.append(warm_report.post_runtime_extensions_ms)
        cold.first_warm_billed_ms.append(float(warm_report.billed_duration_ms))

    # --- warm invocations ------------------------------------------------------------------------------

    def scenario(self, scenario: Scenario, plan: Plan) -> None:
        event = scenario.event(self.aws)
        boxes: dict[str, Any] = {}
        active: list[Config] = []
        exported_before: dict[str, tuple[int, int]] = {}
        for config in self.configs:
            samples = self.results.samples.setdefault((config.name, scenario.name), Samples())
            if config.name in self.results.skipped:
                samples.failure = self.results.skipped[config.name]
                continue
            exported_before[config.name] = self._exported(config)
            try:
                boxes[config.name] = self.open_sandbox(config)
                active.append(config)
            except Exception as error:
                samples.failure = f"sandbox: {error}"
        try:
            # The first invocation of each sandbox is a cold start: one more init sample.
            for config in active:
                self._invoke(config, boxes[config.name], scenario, event, measure=False, cold=True)
            for index in range(plan.warmup):
                for config in _rotated(active, index):
                    self._invoke(config, boxes[config.name], scenario, event, measure=False)
            batches = plan.batches_for(scenario)
            for batch in range(batches):
                for config in _rotated(active, batch):
                    for _ in range(plan.batch_size):
                        self._invoke(config, boxes[config.name], scenario, event, measure=True)
            for config in active:
                self._read_memory(boxes[config.name], self.results.samples[(config.name, scenario.name)])
        finally:
            _shutdown_in_turn(boxes.values())
        for config in active:
            samples = self.results.samples[(config.name, scenario.name)]
            samples.extension_report = last_drop_report(boxes[config.name])
            distinct_before, duplicates_before = exported_before[config.name]
            distinct_after, duplicates_after = self._exported(config)
            samples.spans_exported = distinct_after - distinct_before
            samples.duplicates = duplicates_after - duplicates_before

    def _invoke(self, config: Config, box: Any, scenario: Scenario, event: dict[str, Any], measure: bool,
                cold: bool = False) -> None:
        samples = self.results.samples[(config.name, scenario.name)]
        samples.invocations += 1
        try:
            invocation = box.invoke(event, headers=trace_header())
            report = invocation.report(timeout=FUNCTION_TIMEOUT_S + 10)
        except Exception as error:
            _note_error(samples, f"invoke: {error}")
            return
        if invocation.function_error or report.status != "success":
            _note_error(samples, _describe_failure(invocation, report))
            return
        try:
            samples.spans_created += self._spans_made(config, invocation.json())
        except (ValueError, TypeError, AttributeError) as error:  # not the function's usual answer
            _note_error(samples, f"unexpected response {invocation.body[:200]!r}: {error}")
            return
        if cold and report.init_duration_ms is not None:
            self.results.cold.setdefault(config.name, ColdStarts()).init_ms.append(report.init_duration_ms)
        if measure:
            samples.latency_ms.append(invocation.latency_ms)
            samples.duration_ms.append(report.duration_ms)
            if report.runtime_duration_ms is not None:
                samples.runtime_ms.append(report.runtime_duration_ms)
            if report.post_runtime_extensions_ms is not None:
                samples.post_response_ms.append(report.post_runtime_extensions_ms)

    def _read_memory(self, box: Any, samples: Samples) -> None:
        runtime = box.runtime_pid
        if runtime is not None:
            samples.rss_mb, samples.rss_hwm_mb = _memory_mb(runtime)
        extensions = [_memory_mb(pid) for pid in box.extension_pids.values()]
        if extensions:
            samples.extension_rss_mb = _sum_known(rss for rss, _ in extensions)
            samples.extension_rss_hwm_mb = _sum_known(hwm for _, hwm in extensions)


def function_env(config: Config, layers: dict[str, Path]) -> dict[str, str]:
    """The function's variables for ``config``, all but the collector's address."""
    env = {"OTEL_SERVICE_NAME": f"bench-{config.name}", **config.env}
    if config.layer == "otel-standard":
        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = _foreign_instrumentors(layers["otel-standard"])
    elif config.layer == "peer-adot":
        from benchmarks.peers import adot_disabled_instrumentations

        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = adot_disabled_instrumentations(layers["peer-adot"])
    return env


@functools.cache
def _foreign_instrumentors(layer: Path) -> str:
    from benchmarks.layers import foreign_instrumentors

    return ",".join(foreign_instrumentors(layer / "python"))


def last_drop_report(box: Any) -> str | None:
    """An extension's own account of what it dropped (its last log line saying ``dropped=``), kept verbatim."""
    lines = [line.text for line in box.logs if line.source == "extension" and "dropped=" in line.text]
    return lines[-1][:400] if lines else None


def _shutdown_all(boxes: Iterable[Any]) -> None:
    """Shut sandboxes down in parallel: spin-down waits mostly on processes exiting, and nothing is measured."""
    threads = [threading.Thread(target=box.shutdown, name="bench-shutdown") for box in boxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _shutdown_in_turn(boxes: Iterable[Any]) -> None:
    """Shut sandboxes down one at a time where what SHUTDOWN exports is measured (spans lost): on Lambda each
    environment's SHUTDOWN has its own CPU, while here, shut down at once, every environment's backlog shared the
    machine's two cores. The others still shut down when one fails; the first failure is raised after."""
    failures: list[Exception] = []
    for box in boxes:
        try:
            box.shutdown()
        except Exception as error:
            failures.append(error)
    if failures:
        raise failures[0]


def _rotated(items: Sequence[Config], shift: int) -> list[Config]:
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def trace_header() -> dict[str, str]:
    """A fresh, sampled X-Ray header per invocation, as Lambda passes with active tracing on (the X-Ray SDK
    records nothing otherwise); every configuration gets the same kind of header."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return {"X-Amzn-Trace-Id": f"Root={root};Parent={secrets.token_hex(8)};Sampled=1"}


def _memory_mb(pid: int) -> tuple[float | None, float | None]:
    """(VmRSS, VmHWM) of a process in MB, from /proc; None where unreadable (the process is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    values: dict[str, float] = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024.0
    return values.get("VmRSS"), values.get("VmHWM")


def _sum_known(values: Any) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _note_error(target: Samples | ColdStarts, message: str) -> None:
    target.errors += 1
    if len(target.error_examples) < 3:
        target.error_examples.append(message[:500])


def _describe_failure(invocation: Any, report: Any) -> str:
    body = invocation.body.decode(errors="replace")[:300]
    return f"status {report.status}, error {invocation.function_error or report.error_type}: {body}"
