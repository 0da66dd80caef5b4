"""What one Telemetry API delivery costs the extension, step by step (not a test).

    .venv/bin/python -m benchmarks.micro.telemetry_cost [--invocations 20] [--rounds 200] [--warm]

A delivery as the sandbox makes it at 20 invocations a second with background export (one POST a second): for
each invocation ``platform.start``, the line the function printed, ``platform.runtimeDone`` and ``platform.report``,
each as Lambda writes them. Each round is a fresh extension state (assembler with the invocations' START, log
collector sealing at runtimeDone, as the default configuration does) fed one delivery through the listener's
``_dispatch`` and the lifecycle's fan-out to the two listeners that hear events, then the log records' export
request encoded as the export pass does. This thread's CPU time (``time.thread_time_ns``), per event and per
invocation, median of the rounds, the garbage collector set as the extension sets it. Before each step the caches
are stirred (unless ``--warm``): in Lambda the extension was frozen for most of a second before a delivery comes.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import uuid
from typing import Any

from extension.function_logs import LogCollector
from extension.lifecycle import InvocationTracker
from extension.main import GC_YOUNG_THRESHOLD
from extension.telemetry import TelemetryListener
from tracer import wire
from tracer.export.assembler import Assembler
from tracer.export.buffer import SpanBuffer
from tracer.export.log_encoder import LogEncoder
from tracer.export.stats import Stats

RESOURCE = {"service.name": "bench", "telemetry.sdk.language": "python", "cloud.provider": "aws",
            "cloud.platform": "aws_lambda", "cloud.region": "us-east-1", "faas.name": "bench",
            "faas.version": "$LATEST", "process.pid": 8}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


def delivery(request_ids: list[str], epoch: float) -> bytes:
    """One POST body: the four events of each invocation, as ``sandbox.instance`` emits them."""
    events: list[dict[str, Any]] = []
    for index, request_id in enumerate(request_ids):
        at = epoch + index * 0.05
        tracing = {"type": "X-Amzn-Trace-Id", "value": f"Root=1-{int(at):08x}-{uuid.uuid4().hex[:24]};Sampled=1"}
        events.append({"time": _iso(at), "type": "platform.start",
                       "record": {"requestId": request_id, "version": "$LATEST", "tracing": tracing}})
        events.append({"time": _iso(at + 0.001), "type": "function", "record": "processed 10 items"})
        events.append({"time": _iso(at + 0.002), "type": "platform.runtimeDone", "record": {
            "requestId": request_id, "status": "success", "metrics": {"durationMs": 1.873, "producedBytes": 31},
            "tracing": tracing, "spans": [
                {"name": "responseLatency", "start": _iso(at), "durationMs": 1.712},
                {"name": "responseDuration", "start": _iso(at + 0.0017), "durationMs": 0.0}]}})
        events.append({"time": _iso(at + 0.003), "type": "platform.report", "record": {
            "requestId": request_id, "status": "success", "tracing": tracing,
            "metrics": {"durationMs": 2.391, "billedDurationMs": 3, "memorySizeMB": 128, "maxMemoryUsedMB": 61}}})
    return json.dumps(events, separators=(",", ":")).encode()


class World:
    """The extension's state that a delivery meets: the invocations' STARTs read, their lines not yet in."""

    def __init__(self, request_ids: list[str]) -> None:
        stats = Stats()
        self.assembler = Assembler(SpanBuffer(4096, stats), stats)
        self.assembler.hello(1, {"pid": 8, "tracer": "bench", "resource": RESOURCE})
        for request_id in request_ids:
            self.assembler.invoke(request_id, 0)
            span: list[Any] = [None] * len(wire.SPAN_FIELDS)
            span[wire.TRACE_ID], span[wire.SPAN_ID], span[wire.TRACE_FLAGS] = uuid.uuid4().bytes, b"\x01" * 8, 1
            self.assembler.start(1, request_id, span)
            self.assembler.end(1, request_id, True, {})
        self.log_stats = Stats()
        self.logs = SpanBuffer(10_000, self.log_stats, 2 << 20)
        self.collector = LogCollector(self.logs, self.log_stats, self.assembler.correlation,
                                      lambda: RESOURCE, seal_at_runtime_done=True)
        self.tracker = InvocationTracker("/nonexistent", self.assembler, stats)
        hearing = [self.tracker.on_telemetry, self.collector.on_event]

        def fan_out(event: dict[str, Any]) -> None:  # ``Lifecycle._on_telemetry``
            for on_telemetry in hearing:
                on_telemetry(event)

        self.fan_out = fan_out
        self.listener = TelemetryListener(fan_out, bind_host="127.0.0.1")

    def close(self) -> None:
        self.listener._server.close()
        self.listener._wake_r.close()
        self.listener._wake_w.close()

    def export(self, encoder: LogEncoder) -> int:
        lease = self.logs.take(512, 1 << 20)
        assert lease is not None
        request = encoder.request(lease.batches)
        self.logs.commit(lease)
        return len(request)


_STIR = bytearray(16 << 20)


def _stir() -> None:
    """Evict the caches, as a second frozen does."""
    for offset in range(0, len(_STIR), 64):
        _STIR[offset] = (_STIR[offset] + 1) & 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invocations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warm", action="store_true", help="do not stir the caches between rounds")
    args = parser.parse_args()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])  # as the extension runs
    clock = time.thread_time_ns
    steps: dict[str, list[int]] = {"json": [], "dispatch": [], "export": []}
    encoder = LogEncoder()
    for _ in range(args.rounds):
        request_ids = [str(uuid.uuid4()) for _ in range(args.invocations)]
        body = delivery(request_ids, time.time())
        world = World(request_ids)
        if not args.warm:
            _stir()
        began = clock()
        json.loads(body)
        steps["json"].append(clock() - began)
        if not args.warm:
            _stir()
        began = clock()
        world.listener._dispatch(body)
        steps["dispatch"].append(clock() - began)
        if not args.warm:
            _stir()
        began = clock()
        world.export(encoder)
        steps["export"].append(clock() - began)
        world.close()
    events = args.invocations * 4
    for name, values in steps.items():
        median = statistics.median(values) / 1000
        print(f"{name:>9}: {median / events:6.2f} us/event  {median / args.invocations:6.1f} us/invocation "
              f"(min {min(values) / 1000 / args.invocations:.1f})")


if __name__ == "__main__":
    main()
