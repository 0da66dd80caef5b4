"""Measure the extension's targets (not a test): start-up, post-response time, memory. Prints a small table.

    .venv/bin/python -m tests.functional.extension.measure [--invocations 10000]

- start-up: spawn -> first ``event/next``, for ``python -m extension`` from the development tree and for the
  layer's launcher over a layer-like ``python/`` (so it runs with ``-S``, as a built layer does);
- post-response: the END frame written -> the extension's next ``event/next``, 10 spans per invocation, to a
  loopback OTLP/HTTP collector (which runs in this process), p50/p95;
- side by side, in this process: the SDK's own ``OTLPSpanExporter.export`` of the same 10 spans, and ours
  (``span_encoder`` + keep-alive POST), to the same collector;
- resident memory of the extension after N invocations.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.functional.extension.fake_platform import REPO, ExtensionProcess, FakePlatform, FunctionProcess
from tests.helpers.otlp_receiver import OtlpReceiver


def startup(command: list[str] | None, runs: int, env: dict[str, str] | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp, FakePlatform(telemetry=True) as platform:
            extension = ExtensionProcess(platform, Path(tmp), env, command=command)
            first_next = platform.wait_for("next", 1)
            times.append((first_next - extension.spawned_at) * 1000)
            platform.shutdown()
            extension.wait()
    return times


def layer_like(tmp: Path) -> list[str]:
    """The launcher over python/ holding our packages and msgpack, as a built layer would (so -S applies)."""
    import msgpack

    (tmp / "extensions").mkdir()
    launcher = tmp / "extensions" / "afterglow"
    shutil.copyfile(REPO / "afterglow" / "layer_files" / "extensions" / "afterglow", launcher)
    launcher.chmod(0o755)
    python = tmp / "python"
    python.mkdir()
    for package in ("tracer", "extension"):
        (python / package).symlink_to(REPO / package)
    (python / "msgpack").symlink_to(Path(msgpack.__file__).parent)
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    return [str(launcher)]


def post_response(invocations: int, collector: OtlpReceiver) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory() as tmp, FakePlatform(telemetry=True) as platform:
        extension = ExtensionProcess(platform, Path(tmp), {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint})
        platform.wait_for("next", 1)
        function = FunctionProcess(extension.socket_path)
        waits = []
        for count in range(2, invocations + 2):
            request_id = platform.invoke()
            function.invocation(request_id, children=9)
            ended = time.monotonic()  # the END frame is written: the function's part is over
            waits.append((platform.wait_for("next", count, timeout=30) - ended) * 1000)
        rss_kb = 0
        for line in Path(f"/proc/{extension.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
        platform.shutdown()
        extension.wait()
        collector.wait_for_spans(invocations * 10, timeout=30)
        return waits[1:], rss_kb / 1024  # the first includes loading the exporter


def exporters_side_by_side(collector: OtlpReceiver, rounds: int = 300) -> tuple[list[float], list[float]]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from tests.functional.extension.fake_platform import new_span_id, new_trace_id, span_record
    from tests.helpers.sdk_reference import Converter
    from tracer.export.buffer import Batch
    from tracer.export.exporter import build_otlp_sink
    from tracer.export.otlp_config import HTTP, OtlpSettings

    def batch() -> Batch:
        trace_id, root = new_trace_id(), new_span_id()
        spans = [span_record(f"s{i}", trace_id, new_span_id(), root, attributes={f"a{j}": j for j in range(5)})
                 for i in range(9)]
        spans.append(span_record("root", trace_id, root, attributes={f"a{j}": j for j in range(5)}))
        return Batch({"service.name": "bench"}, "r", spans, [200] * 10)

    ours = build_otlp_sink(OtlpSettings(HTTP, collector.traces_url, (), "none", 10.0))
    theirs = OTLPSpanExporter(endpoint=collector.traces_url)
    converter = Converter()
    ours_ms, theirs_ms = [], []
    for _ in range(rounds):
        sample = batch()
        readable = converter.spans([sample])  # the SDK exporter gets ReadableSpans already built
        began = time.perf_counter()
        theirs.export(readable)
        theirs_ms.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        ours.export([sample], time.monotonic() + 5, time.monotonic() + 10)
        ours_ms.append((time.perf_counter() - began) * 1000)
    theirs.shutdown()
    ours.close()
    return ours_ms, theirs_ms


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=10_000)
    parser.add_argument("--startup-runs", type=int, default=15)
    args = parser.parse_args()
    dev = startup(None, args.startup_runs)
    with tempfile.TemporaryDirectory() as tmp:
        command = layer_like(Path(tmp))
        env = {"PATH": f"{tmp}/bin:/usr/bin:/bin", "PYTHONPATH": ""}
        layer = startup(command, args.startup_runs, env)
    print(f"start-up to first event/next, ms (median / min over {args.startup_runs} runs)")
    print(f"  python -m extension (dev tree, venv site)   {statistics.median(dev):7.1f} / {min(dev):6.1f}")
    print(f"  layer launcher (-S, python/ on PYTHONPATH)  {statistics.median(layer):7.1f} / {min(layer):6.1f}")
    with OtlpReceiver() as collector:
        ours, theirs = exporters_side_by_side(collector)
        print("one export of 10 spans to a loopback collector, in-process, ms (p50 / p95)")
        for label, values in (("SDK OTLPSpanExporter.export (ReadableSpans given)", theirs),
                              ("ours: wire -> span_encoder -> keep-alive POST", ours)):
            print(f"  {label:<56} {pct(values, .5):6.2f} / {pct(values, .95):6.2f}")
        collector.clear()
        waits, rss = post_response(args.invocations, collector)
    print(f"post-response time per invocation, 10 spans, {args.invocations} invocations, ms: "
          f"p50 {pct(waits, .5):.2f}  p95 {pct(waits, .95):.2f}  max {max(waits):.2f}")
    print(f"extension resident memory after {args.invocations} invocations: {rss:.1f} MB")


if __name__ == "__main__":
    main()
