"""What the local sandbox adds to an invocation: ``python -m benchmarks.sandbox_overhead [--n N]``.

An empty handler is invoked through the sandbox (caller's HTTP request -> Runtime API -> awslambdaric ->
response; no extensions) and, in the same run, called directly in-process. Batches of each take turns so
machine noise hits both; the difference of the medians is what the sandbox adds (goal: under 2 ms at p50).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HANDLER_SOURCE = "def handler(event, context):\n    return None\n"
GOAL_MS = 2.0


class _Context:
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 3000


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="measured invocations per side (default 2000)")
    parser.add_argument("--batch", type=int, default=100, help="invocations per turn (default 100)")
    args = parser.parse_args(argv)

    from sandbox import Sandbox

    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as root:
        (Path(root) / "app.py").write_text(HANDLER_SOURCE)
        namespace: dict[str, object] = {}
        exec(compile(HANDLER_SOURCE, "app.py", "exec"), namespace)
        handler = namespace["handler"]
        context = _Context()
        event: dict[str, object] = {}
        direct_ms: list[float] = []
        sandbox_ms: list[float] = []
        with Sandbox(root, "app.handler", function_name="bench") as box:
            cold = box.invoke(event)
            init_ms = cold.report().init_duration_ms
            for _ in range(200):  # warm-up: connections, caches, the runtime's first invocations
                box.invoke(event)
            while len(sandbox_ms) < args.n:
                for _ in range(args.batch):
                    started = time.perf_counter()
                    handler(event, context)  # type: ignore[operator]
                    direct_ms.append((time.perf_counter() - started) * 1000)
                for _ in range(args.batch):
                    sandbox_ms.append(box.invoke(event).latency_ms)
            reports = [box.invoke(event).report() for _ in range(50)]

    added_p50 = statistics.median(sandbox_ms) - statistics.median(direct_ms)
    width = 28
    print(f"empty handler, {len(sandbox_ms)} invocations per side, batches of {args.batch}, taking turns")
    print(f"{'':{width}} {'p50 ms':>10} {'p99 ms':>10}")
    print(f"{'direct call (in-process)':{width}} {statistics.median(direct_ms):10.4f} "
          f"{_percentile(direct_ms, 0.99):10.4f}")
    print(f"{'sandbox round trip':{width}} {statistics.median(sandbox_ms):10.4f} "
          f"{_percentile(sandbox_ms, 0.99):10.4f}")
    print(f"{'added by the sandbox':{width}} {added_p50:10.4f}")
    print(f"platform-reported duration p50: {statistics.median(report.duration_ms for report in reports):.3f} ms; "
          f"cold start init: {init_ms:.1f} ms")
    verdict = "meets" if added_p50 < GOAL_MS else "MISSES"
    print(f"goal: under {GOAL_MS:.1f} ms added at p50 -> {verdict} ({added_p50:.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
