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
older commit unpacked with ``git archive``), to compare hand-offs in one run. ``--disable LIBS`` adds one traced
with ``AFTERGLOW_DISABLE=LIBS`` (e.g. ``threads``), to see what an instrumentation costs when the handler does not
use its library.

``--api-only`` adds the floor of any tracer built on the OpenTelemetry API: the traced handler's spans made through
the API with no SDK installed (its no-op spans: context attached and detached, nothing recorded or handed over),
and no invocation span.

``--runtime python3.12`` runs every configuration on that Lambda runtime (an interpreter installed here, see
docs/sandbox.md): its dependencies then come from ``afterglow layer build --python 3.12``, the checkouts' own
packages linked over the built ones. On python3.12 and later awslambdaric waits for each next event on a
thread of its own, so the runtime's thread count (read while the environment is frozen between invocations,
where each waiting thread costs a thaw and a freeze) is printed per configuration too. That thread ends every
invocation, so schedstat (a sum over the threads alive when read) misses its CPU there; utime+stime and the
sandbox's COST line (the runtime's cgroup from thaw to freeze, every thread) count it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "afterglow" / "layer_files" / "extensions" / "afterglow"
CACHE = REPO / "benchmarks" / ".cache"  # git-ignored
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

API_ONLY = TRACED.replace("from tracer import trace_handler\n", "").replace("@trace_handler\n", "")
assert "trace_handler" not in API_ONLY, "the API-only handler must not be decorated: TRACED changed its form"

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


PACKAGES = ("tracer", "extension", "instrumentation")


def _layer(root: Path, tree: Path, dependencies: Path | None) -> Path:
    """The shipped launcher, and ``python/`` linking ``tree``'s packages; the dependencies come from the venv, or
    from ``dependencies`` (a layer's ``python/`` built for another runtime)."""
    (root / "extensions").mkdir(parents=True)
    launcher = root / "extensions" / "afterglow"
    shutil.copyfile(LAUNCHER, launcher)
    launcher.chmod(0o755)
    (root / "python").mkdir()
    for package in PACKAGES:
        (root / "python" / package).symlink_to(tree / package)
    if dependencies is not None:
        for entry in dependencies.iterdir():
            if entry.name not in PACKAGES:
                (root / "python" / entry.name).symlink_to(entry)
    return root


def _dependencies_for(runtime: str, work: Path) -> Path:
    """``python/`` of the layer built for ``runtime``'s Python (``afterglow layer build --python X.Y``)."""
    version = runtime.removeprefix("python")
    output = work / f"afterglow-layer-{version}.zip"
    print(f"building the afterglow layer for Python {version}", flush=True)
    subprocess.run([sys.executable, "-m", "afterglow", "layer", "build", "--python", version, "--output", str(output)],
                   cwd=REPO, check=True, capture_output=True, text=True)
    unpacked = work / f"afterglow-layer-{version}"
    with zipfile.ZipFile(output) as zipped:
        zipped.extractall(unpacked)
    return unpacked / "python"


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=1000, help="measured invocations per configuration")
    parser.add_argument("--batch", type=int, default=50, help="invocations per turn (default 50)")
    parser.add_argument("--log", choices=sorted(LOG_LINES), default="print", help="how the handler logs its line")
    parser.add_argument("--gap-ms", type=float, default=0.0,
                        help="idle time between invocations (traffic is rarely back to back: caches go cold)")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="another checkout to compare, traced (repeatable)")
    parser.add_argument("--disable", action="append", default=[], metavar="LIBS",
                        help="also a traced configuration with AFTERGLOW_DISABLE=LIBS (repeatable)")
    parser.add_argument("--api-only", action="store_true",
                        help="also the same spans through the OpenTelemetry API with no SDK (no-op spans): the floor")
    parser.add_argument("--runtime", default=None, help="Lambda's runtime setting, e.g. python3.12 (default: ours)")
    parser.add_argument("--built-dependencies", action="store_true",
                        help="take the dependencies from the built layer on our own runtime too (as on Lambda)")
    args = parser.parse_args(argv)

    from sandbox import Sandbox, runtimes
    from tests.helpers.otlp_receiver import OtlpReceiver

    others = (tree.split("=", 1) for tree in args.tree)
    trees = {"traced": REPO, **{name: Path(path).resolve() for name, path in others}}
    disabled = {f"no-{libraries}": libraries for libraries in args.disable}
    runtime = args.runtime or runtimes.own_name()
    log_line = LOG_LINES[args.log]
    receiver = OtlpReceiver().start()
    boxes: dict[str, Any] = {}
    ticks: dict[str, int] = {}
    nanoseconds: dict[str, int] = {}
    counted: dict[str, int] = {}
    extension_ticks: dict[str, int] = {}
    threads: dict[str, set[int]] = {}
    costed: dict[str, float] = {}  # the sandbox's COST for the runtime, summed over the measured invocations
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    CACHE.mkdir(exist_ok=True)
    # Not in /tmp: the sandbox gives its processes a private one, where links into ours would dangle.
    with tempfile.TemporaryDirectory(prefix="runtime-cpu-", dir=CACHE) as work:
        try:
            own = runtime == runtimes.own_name() and not args.built_dependencies
            dependencies = None if own else _dependencies_for(runtime, Path(work))
            configurations = [("untraced", REPO), *trees.items(), *((name, REPO) for name in disabled),
                              *([("api-only", REPO)] if args.api_only else [])]
            for name, tree in configurations:
                task = Path(work) / name / "task"
                task.mkdir(parents=True)
                source = {"untraced": UNTRACED, "api-only": API_ONLY}.get(name, TRACED)
                (task / "app.py").write_text(source.replace("LOG_LINE", log_line))
                layer = _layer(Path(work) / name / "layer", tree, dependencies)
                env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
                if name in disabled:
                    env["AFTERGLOW_DISABLE"] = disabled[name]
                boxes[name] = Sandbox(task, "app.handler", layers=[layer], env=env, timeout=10, runtime=runtime)
                for _ in range(30):  # cold start and warm-up: imports, the exporter, first-invocation caches
                    boxes[name].invoke({}).report()
                ticks[name] = nanoseconds[name] = counted[name] = extension_ticks[name] = 0
                threads[name], costed[name] = set(), 0.0
            while min(counted.values()) < args.invocations:
                order = list(boxes)
                random.shuffle(order)
                for name in order:
                    box = boxes[name]
                    pid, extension = box.runtime_pid, box.extension_pids.get("afterglow")
                    if extension is None:
                        print("\n".join(line.text for line in box.logs[-40:]))
                        raise SystemExit(f"{name}: the extension is gone")
                    before, extension_before, ns_before = _cpu_ticks(pid), _cpu_ticks(extension), _cpu_ns(pid)
                    for _ in range(args.batch):
                        invocation = box.invoke({})
                        cost = invocation.report().cost
                        if cost is not None:
                            costed[name] += next(process.cpu_ms for process in cost.processes
                                                 if process.name == "runtime")
                        if args.gap_ms:
                            time.sleep(args.gap_ms / 1000)
                    ticks[name] += _cpu_ticks(pid) - before
                    nanoseconds[name] += _cpu_ns(pid) - ns_before
                    extension_ticks[name] += _cpu_ticks(extension) - extension_before
                    counted[name] += args.batch
                    threads[name].add(_threads(pid))  # frozen now, waiting for the next event
        finally:
            for box in boxes.values():
                box.shutdown()
            receiver.stop()

    per_invocation = {name: ticks[name] * tick_ms / counted[name] for name in boxes}
    scheduled = {name: nanoseconds[name] / 1e6 / counted[name] for name in boxes}
    extension_ms = {name: extension_ticks[name] * tick_ms / counted[name] for name in boxes}
    from_cost = {name: costed[name] / counted[name] for name in boxes}
    base, scheduled_base, cost_base = per_invocation["untraced"], scheduled["untraced"], from_cost["untraced"]
    print(f"{runtime}: runtime CPU per invocation, {args.invocations}+ invocations each, batches of {args.batch}, "
          f"{args.gap_ms:g} ms apart, log line by {args.log}: utime+stime from /proc/<pid>/stat (tick {tick_ms:.0f} ms)"
          " and time on CPU from schedstat (threads alive at the reading only), and the sandbox's COST line"
          " (thaw to freeze, every thread)")
    for name in boxes:
        extra = "" if name == "untraced" else (f"   beyond untraced {per_invocation[name] - base:+.3f} ms"
                                               f" (schedstat {scheduled[name] - scheduled_base:+.3f} ms,"
                                               f" COST {from_cost[name] - cost_base:+.3f} ms)")
        seen = "/".join(str(count) for count in sorted(threads[name]))
        print(f"  {name:<12} runtime {per_invocation[name]:.3f} ms (schedstat {scheduled[name]:.3f} ms,"
              f" COST {from_cost[name]:.3f} ms){extra}"
              f"   extension {extension_ms[name]:.3f} ms   runtime threads while frozen {seen}")
    added = per_invocation["traced"] - base
    print(f"goal: at most {GOAL_MS} ms beyond untraced -> {'meets' if added <= GOAL_MS else 'MISSES'} ({added:.3f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
