"""One configuration under load, in a process of its own: ``python -m benchmarks.steady_worker`` (started by
``benchmarks.steady``, one per configuration, all at once).

Each sandbox gets its own process because the sandbox's platform runs on a thread of its caller: several
in one process would share one GIL, and every billed duration would include waiting for another
configuration's platform.

Protocol, one JSON line each way:

1. stdin: the spec (``WorkerSpec`` in ``benchmarks.steady``, as a dict).
2. The worker starts its collector (if the configuration exports) and its sandbox, makes the cold start, the
   first warm invocation and the warm-up, then prints ``{"ready": true}`` (or ``{"error": ...}``).
3. stdin: ``go``. The measured invocations run: paced by the wall clock at ``rate_per_s`` (an invocation
   that is due while the previous one is still running starts as soon as it is over: a configuration that
   cannot keep up runs as fast as it can), or back to back when the rate is 0. They stop after ``count``
   invocations or ``max_seconds``.
4. The sandbox shuts down (what SHUTDOWN flushes counts), the collector settles, and the worker prints the
   result: every measured invocation's figures, the first warm one's, what the collector received (freshness
   apart for the spans that ended before the measured invocations: after the warm-up the environment sits frozen
   until every configuration of the phase is ready, holding what it had not yet sent; that wait is the harness's,
   not steady load).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any, TextIO

FUNCTION_TIMEOUT_S = 30.0


class _Stopped(Exception):
    """SIGTERM from the harness: shut the sandbox down and go."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Stopped()


def _one(box: Any, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke once and wait for the invoke phase to end; the figures of it, or ``{"error": ...}``."""
    from benchmarks.runner import trace_header

    try:
        invocation = box.invoke(event, headers=trace_header())
        report = invocation.report(timeout=FUNCTION_TIMEOUT_S + 10)
    except Exception as error:
        return {"error": f"invoke: {type(error).__name__}: {error}"[:500]}
    if invocation.function_error or report.status != "success":
        body = invocation.body.decode(errors="replace")[:300]
        return {"error": f"status {report.status}, error {invocation.function_error or report.error_type}: {body}"}
    try:
        children = int(invocation.json().get("children", 0))
    except (ValueError, TypeError, AttributeError) as error:
        return {"error": f"unexpected response {invocation.body[:200]!r}: {error}"}
    cost = report.cost
    return {
        "children": children,
        "latency_ms": round(invocation.latency_ms, 3),
        "duration_ms": report.duration_ms,
        "billed_ms": report.billed_duration_ms,
        "runtime_ms": report.runtime_duration_ms,
        "post_runtime_ms": report.post_runtime_extensions_ms,
        "init_ms": report.init_duration_ms,
        "cpu_ms": {} if cost is None else {process.name: process.cpu_ms for process in cost.processes},
        "rss_mb": {} if cost is None else {process.name: process.peak_rss_mb for process in cost.processes},
        "frozen": None if cost is None else cost.frozen,
    }


class _Tally:
    """Spans the function made and invocations that failed, over every invocation (warm-up included)."""

    def __init__(self) -> None:
        self.ok = 0
        self.children = 0
        self.errors = 0
        self.error_examples: list[str] = []

    def add(self, figures: dict[str, Any]) -> bool:
        if "error" in figures:
            self.errors += 1
            if len(self.error_examples) < 3:
                self.error_examples.append(figures["error"])
            return False
        self.ok += 1
        self.children += figures["children"]
        return True


def run(spec: dict[str, Any], protocol: TextIO, commands: TextIO) -> dict[str, Any]:
    from pathlib import Path

    from benchmarks.peer_receivers import StdoutSpans
    from benchmarks.runner import last_drop_report
    from benchmarks.services import Collector
    from sandbox import Sandbox

    kind = spec.get("collector") or "otlp"
    delay = spec["collector_delay_ms"]
    collector = None
    printed = StdoutSpans() if delay is not None and kind == "stdout" else None
    if delay is not None and printed is None:
        collector = Collector(kind, delay, Path(spec["ca_dir"]) if spec.get("ca_dir") else None)
    box: Any = None
    tally = _Tally()
    result: dict[str, Any] = {"config": spec["config"]}
    try:
        env = dict(spec["env"])
        if collector is not None:
            env.update(collector.function_env())
        box = Sandbox(spec["task_root"], spec["handler"], layers=spec["layers"], env=env,
                      timeout=FUNCTION_TIMEOUT_S, memory=spec["memory"], function_name="bench",
                      cpu_limit=spec["cpu_limit"], runtime=spec.get("runtime"),
                      on_log=printed.feed if printed is not None else None)
        event = spec["event"]
        cold = _one(box, event)
        tally.add(cold)
        result["cold"] = cold
        first_warm = _one(box, event)
        tally.add(first_warm)
        result["first_warm"] = first_warm
        for _ in range(spec["warmup"]):
            tally.add(_one(box, event))
        if tally.ok == 0:
            raise RuntimeError(f"no invocation succeeded: {tally.error_examples[:1]}")
        print(json.dumps({"ready": True}), file=protocol, flush=True)
        if commands.readline().strip() != "go":
            raise _Stopped()
        period = 1.0 / spec["rate_per_s"] if spec["rate_per_s"] else 0.0
        measured: list[dict[str, Any]] = []
        started = time.monotonic()
        due = started + spec.get("start_offset_s", 0.0)  # spread over the period with the other configurations
        result["measured_since"] = time.time()  # freshness at steady load counts the spans that end from now on
        while len(measured) < spec["count"] and time.monotonic() - started < spec["max_seconds"]:
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            figures = _one(box, event)
            if tally.add(figures):
                measured.append(figures)
            due = max(due + period, time.monotonic())
        result["wall_s"] = time.monotonic() - started
        result["measured"] = measured
        result["notices"] = box.notices
    finally:
        if box is not None:
            box.shutdown(force="measured" not in result)
            result["extension_report"] = last_drop_report(box)
        if printed is not None and "measured" in result:
            result["collector"] = printed.stats(result["measured_since"])
        if collector is not None:
            try:
                if "measured" in result:
                    quiet_s = 0.3 + 2 * spec["collector_delay_ms"] / 1000.0
                    result["collector"] = collector.settled_stats(quiet_s, since=result["measured_since"])
            finally:
                collector.stop()
    result.update(invocations_ok=tally.ok, children=tally.children, errors=tally.errors,
                  error_examples=tally.error_examples)
    return result


def main() -> int:
    # The protocol keeps the real stdout; anything else printed here (or by a library) goes to stderr.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    signal.signal(signal.SIGTERM, _on_sigterm)
    spec = json.loads(sys.stdin.readline())
    try:
        result = run(spec, protocol, sys.stdin)
    except _Stopped:
        return 1
    except Exception as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"[:1000]}), file=protocol, flush=True)
        return 1
    print(json.dumps(result), file=protocol, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
