"""What the function's owner pays, measured at steady load: every configuration at once, each in its own process.

Lambda bills the invoke phase until the runtime and every INVOKE extension have called next, freezes every
process between invocations, and below 1,769 MB gives the whole environment a fraction of one vCPU: the CPU
time of every process per invocation, and the billed time, are the bill. The sandbox measures both per
invocation (``Invocation.cost()``).

Phases, one after the other; within a phase every configuration runs at the same time, one worker process
(``benchmarks.steady_worker``) each, so machine noise hits all alike, and the baselines (``bare``, the floor
extension) run in every phase beside the rest:

- steady load, once per collector delay (0, 50, 200 ms): ``rate_per_s`` invocations per second paced by the
  wall clock, each making ``spans`` child spans and printing one line; the configurations' invocations are spread
  evenly over the period (``start_offset_s``), not all due at once;
- scaling: 100 and 1,000 child spans per invocation, back to back (collector answering at once): what each
  span costs the environment, and whether any flush policy drops spans when big invocations come fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from benchmarks.configs import BASELINE, COST, Config
from benchmarks.runner import FUNCTION_DIR, MEMORY_MB, function_env
from benchmarks.services import receiver_files

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CPU_LIMIT_MEMORY_MB = 128  # with --cpu-limit: Lambda's smallest size, about 7% of one vCPU
READY_TIMEOUT_S = 180.0  # cold start, first warm invocation and warm-up, with every worker starting at once
Log = Callable[[str], None]


@dataclass(frozen=True)
class SteadyPhase:
    collector_delay_ms: float
    count: int  # measured invocations per configuration
    max_seconds: float  # a configuration that cannot keep up stops here, with fewer


@dataclass(frozen=True)
class ScalingPhase:
    spans: int  # child spans per invocation
    count: int  # back-to-back invocations per configuration
    max_seconds: float


@dataclass(frozen=True)
class CostPlan:
    rate_per_s: float
    warmup: int
    spans: int  # child spans per invocation at steady load
    steady: tuple[SteadyPhase, ...]
    scaling: tuple[ScalingPhase, ...]
    cpu_limit: bool = False

    @property
    def memory(self) -> int:
        return CPU_LIMIT_MEMORY_MB if self.cpu_limit else MEMORY_MB

    def describe(self) -> str:
        steady = ", ".join(f"{phase.count:,} at collector {phase.collector_delay_ms:g} ms (at most "
                           f"{phase.max_seconds:g} s)" for phase in self.steady)
        scaling = ", ".join(f"{phase.count} back to back with {phase.spans:,} spans" for phase in self.scaling)
        limit = (f"; memory {self.memory} MB with the sandbox's CPU limit" if self.cpu_limit
                 else f"; memory {self.memory} MB, no CPU limit")
        return (f"{self.rate_per_s:g} invocations/s, {self.spans} child spans and one log line each, "
                f"{self.warmup} warm-up invocations; measured: {steady}; scaling: {scaling or 'none'}{limit}")


FULL_COST = CostPlan(rate_per_s=20.0, warmup=40, spans=10,
                     steady=(SteadyPhase(0.0, 1000, 120.0), SteadyPhase(50.0, 300, 40.0),
                             SteadyPhase(200.0, 300, 40.0)),
                     scaling=(ScalingPhase(100, 150, 60.0), ScalingPhase(1000, 40, 60.0)))
QUICK_COST = CostPlan(rate_per_s=20.0, warmup=5, spans=10,
                      steady=(SteadyPhase(0.0, 150, 20.0), SteadyPhase(50.0, 40, 6.0), SteadyPhase(200.0, 30, 6.0)),
                      scaling=(ScalingPhase(100, 20, 10.0), ScalingPhase(1000, 5, 10.0)))


@dataclass
class CostRun:
    """Raw results of one configuration in one phase: the worker's output, or why there is none."""

    config: str
    kind: str  # "steady" or "scaling"
    phase_delay_ms: float  # the collector delay of the phase it ran in
    exports: bool  # False: no collector (the delay did not concern it)
    spans: int  # child spans per invocation asked for
    rate_per_s: float
    spans_created: int = 0  # every span the function made, warm-up and cold start included
    worker: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None

    @property
    def collector_delay_ms(self) -> float | None:
        return self.phase_delay_ms if self.exports else None


@dataclass
class CostResults:
    runs: list[CostRun] = field(default_factory=list)
    plan: CostPlan | None = None
    notices: list[str] = field(default_factory=list)


def cost_configs(configs: Sequence[Config]) -> list[Config]:
    return [config for config in configs if COST in config.phases]


def run_cost(configs: Sequence[Config], layers: dict[str, Path], plan: CostPlan, scratch: Path,
             log: Log = print) -> CostResults:
    """Every phase of ``plan`` for the cost configurations among ``configs``."""
    chosen = cost_configs(configs)
    results = CostResults(plan=plan)
    for phase in plan.steady:
        log(f"cost, steady load, collector {phase.collector_delay_ms:g} ms: {phase.count} invocations at "
            f"{plan.rate_per_s:g}/s per configuration, {len(chosen)} configurations at once")
        results.runs += _run_phase(chosen, layers, plan, scratch, log, kind="steady", spans=plan.spans,
                                   delay=phase.collector_delay_ms, count=phase.count, max_seconds=phase.max_seconds,
                                   rate=plan.rate_per_s)
    scaled = [config for config in chosen if config.name == BASELINE or config.exports]
    for scaling in plan.scaling:
        log(f"cost, scaling: {scaling.count} invocations with {scaling.spans} spans, back to back")
        results.runs += _run_phase(scaled, layers, plan, scratch, log, kind="scaling", spans=scaling.spans,
                                   delay=0.0, count=scaling.count, max_seconds=scaling.max_seconds, rate=0.0)
    for run in results.runs:
        for notice in run.worker.get("notices") or ():
            if notice not in results.notices:
                results.notices.append(notice)
    return results


@dataclass(frozen=True)
class WorkerSpec:
    config: str
    task_root: str
    handler: str
    layers: list[str]
    env: dict[str, str]
    collector_delay_ms: float | None
    memory: int
    cpu_limit: bool
    event: dict[str, Any]
    warmup: int
    rate_per_s: float
    count: int
    max_seconds: float
    collector: str | None = "otlp"  # what receives the spans (``Config.collector``)
    runtime: str | None = None  # Lambda's runtime setting; None: the sandbox's own interpreter
    ca_dir: str | None = None  # where an HTTPS receiver writes the CA certificate the function trusts
    # When its first measured invocation is due after ``go``: the configurations' invocations are spread over the
    # period rather than all due at the same instants, where they queued for the machine's two cores (10 at once
    # added 4 to 6 ms to every handler but the first, a do-nothing extension's included).
    start_offset_s: float = 0.0


class _Worker:
    """One ``benchmarks.steady_worker`` process; its stdout lines arrive on a queue (reads never block us)."""

    def __init__(self, spec: WorkerSpec, stderr_path: Path) -> None:
        self.spec = spec
        self._stderr = stderr_path.open("w")
        self.stderr_path = stderr_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.steady_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, cwd=PROJECT_ROOT, start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()
        self.send(json.dumps(asdict(spec)))

    def _read(self, stream: TextIO) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, line: str) -> None:
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def answer(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return {"error": f"no answer within {timeout:.0f} s"}
        if line is None:
            return {"error": f"the worker exited (status {self.process.wait()}): {self._stderr_tail()}"}
        try:
            answer: dict[str, Any] = json.loads(line)
        except ValueError:
            return {"error": f"unreadable answer {line[:200]!r}"}
        return answer

    def _stderr_tail(self) -> str:
        self._stderr.flush()
        try:
            return " | ".join(self.stderr_path.read_text(errors="replace").strip().splitlines()[-3:])[-600:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._stderr.close()


def _spec(config: Config, layers: dict[str, Path], plan: CostPlan, kind: str, spans: int, delay: float,
          count: int, max_seconds: float, rate: float, ca_dir: Path | None = None,
          start_offset_s: float = 0.0) -> WorkerSpec:
    return WorkerSpec(
        config=config.name, task_root=str(FUNCTION_DIR), handler=config.handler,
        layers=[str(layers[config.layer])] if config.layer else [], env=function_env(config, layers),
        collector_delay_ms=delay if config.exports else None, memory=plan.memory, cpu_limit=plan.cpu_limit,
        event={"scenario": f"cost-{kind}", "spans": spans, "log": True}, warmup=plan.warmup, rate_per_s=rate,
        count=count, max_seconds=max_seconds, collector=config.collector, runtime=config.runtime,
        ca_dir=str(ca_dir) if ca_dir is not None else None, start_offset_s=start_offset_s,
    )


def start_offsets(count: int, rate: float) -> list[float]:
    """When each of ``count`` configurations makes its first measured invocation after ``go``, at ``rate`` a second:
    evenly over one period (back to back, ``rate`` 0: all at once)."""
    return [index / rate / count if rate else 0.0 for index in range(count)]


def _run_phase(configs: Sequence[Config], layers: dict[str, Path], plan: CostPlan, scratch: Path, log: Log, *,
               kind: str, spans: int, delay: float, count: int, max_seconds: float, rate: float) -> list[CostRun]:
    runs = {config.name: CostRun(config.name, kind, delay, config.exports, spans, rate)
            for config in configs}
    workers: dict[str, _Worker] = {}
    try:
        offsets = start_offsets(len(configs), rate)
        for index, config in enumerate(configs):
            # a receiver that cannot make the function wait is not slowed down (its delay would not reach anyone)
            phase_delay = delay if config.waits_for_collector else 0.0
            spec = _spec(config, layers, plan, kind, spans, phase_delay, count, max_seconds, rate,
                         ca_dir=receiver_files(), start_offset_s=offsets[index])
            label = f"{kind}-{spans}-{delay:g}-{config.name}"
            workers[config.name] = _Worker(spec, scratch / f"worker-{label}.log")
        started = time.monotonic()
        ready: list[str] = []
        for name, worker in workers.items():
            answer = worker.answer(max(1.0, READY_TIMEOUT_S - (time.monotonic() - started)))
            if answer.get("ready"):
                ready.append(name)
            else:
                runs[name].failure = str(answer.get("error", answer))[:1000]
                log(f"  {name}: did not start: {runs[name].failure}")
        for name in ready:  # all at once: the measured invocations of every configuration overlap
            workers[name].send("go")
        limit = max_seconds + 180.0  # the measured part, then shutdown and the collector settling
        for name in ready:
            answer = workers[name].answer(max(1.0, limit - (time.monotonic() - started) + READY_TIMEOUT_S))
            if "error" in answer and "measured" not in answer:
                runs[name].failure = str(answer["error"])[:1000]
                log(f"  {name}: failed: {runs[name].failure}")
                continue
            runs[name].worker = answer
    finally:
        for worker in workers.values():
            worker.stop()
    by_name = {config.name: config for config in configs}
    for run in runs.values():
        if run.failure is None:
            config = by_name[run.config]
            run.spans_created = ((run.worker.get("children", 0) if config.child_spans else 0)
                                 + (run.worker.get("invocations_ok", 0) if config.invocation_span else 0))
            measured = run.worker.get("measured") or []
            log(f"  {run.config}: {len(measured)} measured in {run.worker.get('wall_s', 0):.1f} s, "
                f"{run.worker.get('errors', 0)} errors")
    return list(runs.values())

