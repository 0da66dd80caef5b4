"""Measure what logs and the profile cost (not a test): the profile's cost to the handler, and the post-response
time of logs.

    .venv/bin/python -m tests.functional.extension.measure_logs [--invocations 200] [--rounds 3]

- function side: ``tracer._profile`` start + finish on a recording invocation span, and one traced invocation of
  an empty handler with the profile on vs off, in alternating rounds (medians, us);
- in the sandbox (awslambdaric, the real tracer and extension, a loopback OTLP/HTTP collector in this process):
  ``post_runtime_extensions_ms`` (the runtime's next -> the extension's next: what Lambda bills after the
  response) and the invoke phase's duration, for AFTERGLOW_LOGS=true / deferred / false, with a function that
  prints a line and logs one, and with a silent one. Configurations alternate by round, side by side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers.otlp_receiver import OtlpReceiver

REPO = Path(__file__).resolve().parents[3]
FUNCTION = '''
import logging

from tracer import trace_handler

logging.getLogger().setLevel(logging.INFO)


@trace_handler
def handler(event, context):
    if event.get("print"):
        print("charging order", event["n"])
        logging.getLogger("app").info("charged order %s", event["n"])
    return {"ok": True}
'''


def profile_cost(calls: int = 200_000, rounds: int = 7) -> tuple[float, float, float]:
    """(start+finish pair, invocation with profile, invocation without), median microseconds."""
    from opentelemetry.trace import SpanKind

    from tests.helpers.tracing import LAMBDA_ENV, lambda_context, reset_tracing
    from tracer import _profile, trace_handler
    from tracer._runtime import install

    directory = tempfile.mkdtemp(prefix="ag-m-", dir="/tmp")
    os.environ.update(LAMBDA_ENV)
    os.environ["AFTERGLOW_SOCKET"] = f"{directory}/spans.sock"
    # the reading end in its own process, as the extension is: decoding must not compete for this one's GIL
    reader = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "micro" / "reader_process.py"),
                               os.environ["AFTERGLOW_SOCKET"]], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
        reset_tracing()

        @trace_handler
        def handler(event: object, context: object) -> int:
            return 1

        context = lambda_context("warm")
        handler({}, context)
        span = install().tracer.start_span("probe", kind=SpanKind.SERVER)
        pair = []
        for _ in range(rounds):
            began = time.perf_counter()
            for _ in range(calls):
                _profile.finish(span, _profile.start(span))
            pair.append((time.perf_counter() - began) / calls * 1e6)
        with_profile, without = [], []
        for index in range(rounds * 10):  # short alternating rounds: the machine's drift hits both alike
            on = index % 2 == 0
            _profile._enabled = on
            began = time.perf_counter()
            for _ in range(1000):
                handler({}, context)
            (with_profile if on else without).append((time.perf_counter() - began) / 1000 * 1e6)
        reset_tracing()
    finally:
        reader.terminate()
        reader.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
    return statistics.median(pair), statistics.median(with_profile), statistics.median(without)


def dev_layer(root: Path) -> Path:
    """The extension's launcher plus links to this tree's packages, as tests/integration/extension's fixture."""
    (root / "extensions").mkdir(parents=True)
    launcher = root / "extensions" / "afterglow"
    shutil.copyfile(REPO / "afterglow" / "layer_files" / "extensions" / "afterglow", launcher)
    launcher.chmod(0o755)
    (root / "python").mkdir()
    for package in ("tracer", "extension", "instrumentation"):
        (root / "python" / package).symlink_to(REPO / package)
    return root


def post_response(invocations: int, rounds: int) -> dict[tuple[str, bool], tuple[list[float], list[float]]]:
    from sandbox import Sandbox

    results: dict[tuple[str, bool], tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, OtlpReceiver() as collector:
        layer = dev_layer(Path(tmp) / "layer")
        task = Path(tmp) / "task"
        task.mkdir()
        (task / "app.py").write_text(FUNCTION)
        for _ in range(rounds):
            for mode in ("true", "deferred", "false"):
                env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "AFTERGLOW_LOGS": mode}
                with Sandbox(task, "app.handler", layers=[layer], env=env) as box:
                    for prints in (False, True):
                        post, duration = results.setdefault((mode, prints), ([], []))
                        for number in range(invocations + 5):
                            report = box.invoke({"print": prints, "n": number}).report()
                            if number >= 5 and report.post_runtime_extensions_ms is not None:  # warm only
                                post.append(report.post_runtime_extensions_ms)
                                duration.append(report.duration_ms)
                collector.clear()
    return results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pair, on, off = profile_cost()
    print("function side, median us")
    print(f"  tracer._profile start + finish (2 getrusage, 2 attributes)  {pair:6.2f}")
    print(f"  empty traced handler, profile on / off                       {on:6.2f} / {off:6.2f}  "
          f"(+{on - off:.2f})")
    results = post_response(args.invocations, args.rounds)
    print(f"sandbox, warm invocations ({args.invocations} x {args.rounds} rounds per row), ms, p50 / p95")
    print("  AFTERGLOW_LOGS  function         post-runtime extension time    invoke phase duration")
    for (mode, prints), (post, duration) in results.items():
        label = "prints 2 lines" if prints else "silent"
        print(f"  {mode:<14}  {label:<15}  {pct(post, .5):8.2f} / {pct(post, .95):8.2f}"
              f"           {pct(duration, .5):8.2f} / {pct(duration, .95):8.2f}")


if __name__ == "__main__":
    main()
