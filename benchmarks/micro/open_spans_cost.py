"""What the open-span table adds to a span's start and end: ``python -m benchmarks.micro.open_spans_cost``.

The difference is a few hundred nanoseconds in a span of over ten microseconds, which pytest-benchmark's medians
(``test_span.py``, group "what the open-span table adds") do not resolve on a shared machine. Here the same span
(``start_as_current_span`` with five attributes, ended, handed to the ring of a ``Handoff`` connected to a reader
in its own process) is timed with and without the table in alternating rounds of ``timeit``, so machine noise hits
both, in this thread's CPU time (``time.thread_time``: time spent descheduled, other agents' work, is left out); the
figure is the difference of the two minimums (and of the medians), per span. ``child``: under an open
span, as a handler's spans are (its trace id is split once); ``root``: a new trace each time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

from benchmarks.micro.conftest import ATTRIBUTES, ROOT


def _one(tracer: Any) -> None:
    with tracer.start_as_current_span("operation", attributes=ATTRIBUTES):
        pass


def _read_everything(handoff: Any) -> None:
    """END (the reader reads the ring up to it), then wait until it has: each round starts with an empty ring."""
    handoff.finish("bench", False)
    deadline = time.monotonic() + 10
    while handoff.unread_bytes and time.monotonic() < deadline:
        time.sleep(0.001)
    handoff.begin("bench", None)


def measure(rounds: int, number: int) -> dict[str, dict[str, list[float]]]:
    from opentelemetry import context, trace

    from tracer._handoff import Handoff
    from tracer._provider import LeanTracerProvider

    directory = tempfile.mkdtemp(prefix="ag-open-", dir="/tmp")
    path = f"{directory}/spans.sock"
    reader = subprocess.Popen([sys.executable, str(Path(__file__).with_name("reader_process.py")), path],
                              stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT)})
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
        handoff = Handoff(path)
        handoff.begin("bench", None)
        handoff.finish("bench", False)
        with_table = LeanTracerProvider(handoff).get_tracer("bench")
        without = LeanTracerProvider(handoff).get_tracer("bench")
        without._scope.open_spans = None  # type: ignore[attr-defined]  # as before the table
        results: dict[str, dict[str, list[float]]] = {}
        for placement in ("child", "root"):
            token = None
            if placement == "child":
                parent = with_table.start_span("invocation")
                token = context.attach(trace.set_span_in_context(parent))
            times: dict[str, list[float]] = {"without the table": [], "with the table": []}
            for _ in range(rounds):
                for label, tracer in (("without the table", without), ("with the table", with_table)):
                    _read_everything(handoff)
                    timer = timeit.Timer(lambda t=tracer: _one(t), timer=time.thread_time)  # CPU, not wall time
                    times[label].append(timer.timeit(number) / number * 1e9)
            if token is not None:
                context.detach(token)
            results[placement] = times
        assert handoff.open_spans.untracked == 0 and not handoff.drops, handoff.drops
        handoff.close()
        return results
    finally:
        reader.terminate()
        reader.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="alternating rounds per configuration")
    parser.add_argument("--number", type=int, default=10_000, help="spans per round")
    arguments = parser.parse_args()
    for placement, times in measure(arguments.rounds, arguments.number).items():
        lows = {label: min(values) for label, values in times.items()}
        medians = {label: statistics.median(values) for label, values in times.items()}
        print(f"{placement} span, ns per span (min / median of {arguments.rounds} rounds of {arguments.number}):")
        for label in times:
            print(f"  {label:<18} {lows[label]:>7.0f} / {medians[label]:>7.0f}")
        print(f"  the table adds     {lows['with the table'] - lows['without the table']:>7.0f} / "
              f"{medians['with the table'] - medians['without the table']:>7.0f}")


if __name__ == "__main__":
    main()
