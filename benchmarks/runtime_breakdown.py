"""Where the traced runtime's CPU per invocation goes: ``python -m benchmarks.runtime_breakdown``.

``benchmarks.runtime_cpu`` gives the total (traced minus untraced); this splits it. The same handler as there (the
invocation span, 9 children with five attributes each, one printed line) runs in the sandbox with the real extension,
one invocation every ``--gap-ms`` (caches go cold between them, as in traffic), and reads the thread's CPU time
(``time.thread_time_ns``) between its parts: the decorator's work before the handler (``begin``: trigger, invocation
span, START), the first child span, the other eight, the line, the decorator's work after the handler (``close``: the
invocation span's end, END) and what the runtime calls once the response is posted (``post``). ``--calls`` prints
instead the Python and C calls of one invocation (``sys.setprofile``), by function.

``--tree NAME=PATH`` adds another checkout (as in ``runtime_cpu``); the trees take turns in batches. Each reading
costs about half a microsecond, and the parts are what this handler pays, not a profile of every code path.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.runtime_cpu import CACHE, REPO, _layer

APP = '''
import collections
import sys
import time

from opentelemetry import trace

from tracer import _response_hook, trace_handler

clock = time.thread_time_ns
tracer = trace.get_tracer("bench")
ATTRIBUTES = {"app.order_id": "o-12345", "app.items": 3, "app.total": 42.5, "app.priority": True, "app.region": "eu"}
PARTS = ("begin", "first span", "8 spans", "line", "close", "post")
spent = dict.fromkeys(PARTS, 0)
marks = [0, 0]


@trace_handler
def traced(event, context):
    started = clock()
    with tracer.start_as_current_span("child", attributes=ATTRIBUTES):
        pass
    first = clock()
    for _ in range(8):
        with tracer.start_as_current_span("child", attributes=ATTRIBUTES):
            pass
    spans = clock()
    print("order o-12345 handled")
    ended = clock()
    spent["first span"] += first - started
    spent["8 spans"] += spans - first
    spent["line"] += ended - spans
    marks[0], marks[1] = started, ended
    return {"ok": True}


_posted = _response_hook.HOOK.on_response


def _timed_posted():
    started = clock()
    _posted()
    spent["post"] += clock() - started


if _posted is not None:
    _response_hook.HOOK.on_response = _timed_posted


def _calls(event, context):
    calls = collections.Counter()

    def profile(frame, what, argument):
        if what == "call":
            code = frame.f_code
            calls["/".join(code.co_filename.rsplit("/", 2)[-2:]) + " " + code.co_name] += 1
        elif what == "c_call":
            calls["C " + getattr(argument, "__qualname__", repr(argument))] += 1

    sys.setprofile(profile)
    traced(event, context)
    sys.setprofile(None)
    return calls.most_common()


def handler(event, context):
    if event.get("calls"):
        return _calls(event, context)
    if event.get("spent"):
        return spent
    if event.get("reset"):
        for part in spent:
            spent[part] = 0
        return {}
    started = clock()
    result = traced(event, context)
    ended = clock()
    spent["begin"] += marks[0] - started
    spent["close"] += ended - marks[1]
    return result
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=400, help="measured invocations per tree")
    parser.add_argument("--batch", type=int, default=50, help="invocations per turn (default 50)")
    parser.add_argument("--gap-ms", type=float, default=50.0, help="idle time between invocations (default 50)")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH", help="another checkout")
    parser.add_argument("--calls", action="store_true", help="print the calls of one invocation instead")
    args = parser.parse_args(argv)

    from sandbox import Sandbox
    from tests.helpers.otlp_receiver import OtlpReceiver

    trees = {"this": REPO, **{name: Path(path).resolve() for name, path in (t.split("=", 1) for t in args.tree)}}
    receiver = OtlpReceiver().start()
    boxes: dict[str, Any] = {}
    CACHE.mkdir(exist_ok=True)
    # Not in /tmp: the sandbox gives its processes a private one, where links into ours would dangle.
    with tempfile.TemporaryDirectory(prefix="runtime-breakdown-", dir=CACHE) as work:
        try:
            for name, tree in trees.items():
                task = Path(work) / name / "task"
                task.mkdir(parents=True)
                (task / "app.py").write_text(APP)
                layer = _layer(Path(work) / name / "layer", tree, None)
                box = boxes[name] = Sandbox(task, "app.handler", layers=[layer], timeout=10,
                                            env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
                for _ in range(30):  # cold start and warm-up
                    box.invoke({}).report()
                box.invoke({"reset": True}).report()
            if args.calls:
                for name, box in boxes.items():
                    calls = box.invoke({"calls": True}).json()
                    print(f"{name}: {sum(count for _, count in calls)} calls in one invocation")
                    for function, count in calls:
                        print(f"  {count:4d} {function}")
                return 0
            for _ in range(-(-args.invocations // args.batch)):
                for box in boxes.values():
                    for _ in range(args.batch):
                        box.invoke({}).report()
                        time.sleep(args.gap_ms / 1000)
            measured = -(-args.invocations // args.batch) * args.batch
            print(f"thread CPU per invocation, us ({measured} invocations each, {args.gap_ms:g} ms apart)")
            for name, box in boxes.items():
                spent = box.invoke({"spent": True}).json()
                ours = spent["begin"] + spent["first span"] + spent["8 spans"] + spent["close"] + spent["post"]
                parts = "  ".join(f"{part} {value / measured / 1000:.1f}" for part, value in spent.items())
                print(f"  {name:<8} {parts}   all but the line {ours / measured / 1000:.1f}")
        finally:
            for box in boxes.values():
                box.shutdown()
            receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
