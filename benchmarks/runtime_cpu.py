"""The CPU tracing adds to the runtime process per invocation: ``python -m benchmarks.runtime_cpu``.

Two sandboxes run side by side with the same development layer (the real extension, exporting to a loopback
OTLP receiver): one with the handler decorated by ``trace_handler`` (10 spans: the invocation span and 9 children
with five attributes each, and one log line), one with the same handler undecorated (no span, the same line).
They take turns in batches, so machine noise hits both; before and after each batch the runtime's utime+stime is
read from ``/proc/<runtime pid>/stat`` (all its threads), and the difference per invocation, traced minus
untraced, is what tracing costs the function's process. Each invocation is waited for until its REPORT, so the
work after the response (END) is counted in its batch. ``--gap-ms`` leaves the environment idle between
invocations, as real traffic does: other processes then run, and the runtime's caches go cold.

``--tree NAME=PATH`` adds a traced configuration whose layer links the packages of another checkout (e.g. an
older commit unpacked with ``git archive``), to compare hand-offs in one run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "afterglow" / "layer_files" / "extensions" / "afterglow"
GOAL_MS = 0.2

TRACED = '''
from opentelemetry import trace

from tracer import trace_handler

tracer = trace.get_tracer("bench")
ATTRIBUTES = {"app.order_id": "o-12345", "app.items": 3, "app.total": 42.5, "app.priority": True, "app.region": "eu"}


@trace_handler
def handler(event, context):
    for _ in range(9):
        with tracer.start_as_current_span("child", attributes=ATTRIBUTES):
            pass
    LOG_LINE
    return {"ok": True}
'''

UNTRACED = '''
ATTRIBUTES = {"app.order_id": "o-12345", "app.items": 3, "app.total": 42.5, "app.priority": True, "app.region": "eu"}


def handler(event, context):
    for _ in range(9):
        pass
    LOG_LINE
    return {"ok": True}
'''

LOG_LINES = {
    "print": 'print("order o-12345 handled")',
    "logging": 'import logging; logging.getLogger().warning("order o-12345 handled")',
}


def _cpu_ticks(pid: int) -> int:
    """utime + stime of the whole process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _cpu_ns(pid: int) -> int:
    """Time on a CPU of every thread of the process, in ns (``schedstat``: finer than the ticks above)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                total += int(schedstat.read().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            pass
    return total


def _layer(root: Path, tree: Path) -> Path:
    """The shipped launcher, and ``python/`` linking ``tree``'s packages (dependencies come from the venv)."""
    (root / "extensions").mkdir(parents=True)
    launcher = root / "extensions" / "afterglow"
    shutil.copyfile(LAUNCHER, launcher)
    launcher.chmod(0o755)
    (root / "python").mkdir()
    for package in ("tracer", "extension", "instrumentation"):
        (root / "python" / package).symlink_to(tree / package)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=1000, help="measured invocations per configuration")
    parser.add_argument("--batch", type=int, default=50, help="invocations per turn (default 50)")
    parser.add_argument("--log", choices=sorted(LOG_LINES), default="print", help="how the handler logs its line")
    parser.add_argument("--gap-ms", type=float, default=0.0,
                        help="idle time between invocations (traffic is rarely back to back: caches go cold)")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="another checkout to compare, traced (repeatable)")
    args = parser.parse_args(argv)

    from sandbox import Sandbox
    from tests.helpers.otlp_receiver import OtlpReceiver

    others = (tree.split("=", 1) for tree in args.tree)
    trees = {"traced": REPO, **{name: Path(path).resolve() for name, path in others}}
    log_line = LOG_LINES[args.log]
    receiver = OtlpReceiver().start()
    boxes: dict[str, Any] = {}
    ticks: dict[str, int] = {}
    nanoseconds: dict[str, int] = {}
    counted: dict[str, int] = {}
    extension_ticks: dict[str, int] = {}
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    with tempfile.TemporaryDirectory(prefix="runtime-cpu-") as work:
        try:
            for name, tree in [("untraced", REPO), *trees.items()]:
                task = Path(work) / name / "task"
                task.mkdir(parents=True)
                source = UNTRACED if name == "untraced" else TRACED
                (task / "app.py").write_text(source.replace("LOG_LINE", log_line))
                layer = _layer(Path(work) / name / "layer", tree)
                env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
                boxes[name] = Sandbox(task, "app.handler", layers=[layer], env=env, timeout=10)
                for _ in range(30):  # cold start and warm-up: imports, the exporter, first-invocation caches
                    boxes[name].invoke({}).report()
                ticks[name] = nanoseconds[name] = counted[name] = extension_ticks[name] = 0
            while min(counted.values()) < args.invocations:
                order = list(boxes)
                random.shuffle(order)
                for name in order:
                    box = boxes[name]
                    pid, extension = box.runtime_pid, box.extension_pids["afterglow"]
                    before, extension_before, ns_before = _cpu_ticks(pid), _cpu_ticks(extension), _cpu_ns(pid)
                    for _ in range(args.batch):
                        invocation = box.invoke({})
                        invocation.report()
                        if args.gap_ms:
                            time.sleep(args.gap_ms / 1000)
                    ticks[name] += _cpu_ticks(pid) - before
                    nanoseconds[name] += _cpu_ns(pid) - ns_before
                    extension_ticks[name] += _cpu_ticks(extension) - extension_before
                    counted[name] += args.batch
        finally:
            for box in boxes.values():
                box.shutdown()
            receiver.stop()

    per_invocation = {name: ticks[name] * tick_ms / counted[name] for name in boxes}
    scheduled = {name: nanoseconds[name] / 1e6 / counted[name] for name in boxes}
    extension_ms = {name: extension_ticks[name] * tick_ms / counted[name] for name in boxes}
    base, scheduled_base = per_invocation["untraced"], scheduled["untraced"]
    print(f"runtime CPU per invocation, {args.invocations}+ invocations each, batches of {args.batch}, "
          f"{args.gap_ms:g} ms apart, log line by {args.log}: utime+stime from /proc/<pid>/stat (tick {tick_ms:.0f} ms)"
          " and time on CPU from schedstat")
    for name in boxes:
        extra = "" if name == "untraced" else (f"   beyond untraced {per_invocation[name] - base:+.3f} ms"
                                               f" (schedstat {scheduled[name] - scheduled_base:+.3f} ms)")
        print(f"  {name:<12} runtime {per_invocation[name]:.3f} ms (schedstat {scheduled[name]:.3f} ms){extra}"
              f"   extension {extension_ms[name]:.3f} ms")
    added = per_invocation["traced"] - base
    print(f"goal: at most {GOAL_MS} ms beyond untraced -> {'meets' if added <= GOAL_MS else 'MISSES'} ({added:.3f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
