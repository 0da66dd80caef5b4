"""Front doors: ``afterglow sandbox`` (serve RIE's invoke endpoint) and ``afterglow run`` (invoke, report, exit).

Both print what CloudWatch would show for the function: START / END / REPORT lines and the function's
output as is, with each extension's lines prefixed by its name so they stand apart.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from types import FrameType
from typing import TextIO

from sandbox.config import parse_env_pairs
from sandbox.cost import cost_line, summary_lines
from sandbox.records import Cost, LogLine, Report


class LogPrinter:
    """Prints log lines as they happen (called from the sandbox's thread)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, line: LogLine) -> None:
        # awslambdaric joins a traceback's lines with "\r" (one CloudWatch event); a terminal needs newlines
        text = line.text.replace("\r", "\n")
        if line.source == "extension":  # named, unless the extension names itself (as afterglow's lines do)
            prefix = f"[{line.name}]"
            text = "\n".join(part if part.startswith(prefix) else f"{prefix} {part}" for part in text.split("\n"))
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()


def _fail(command: str, message: str) -> int:
    print(f"afterglow {command}: {message}", file=sys.stderr)
    return 2


def _path_problem(args: argparse.Namespace) -> str | None:
    """A path argument naming nothing, said as such (a usage error) before the sandbox starts."""
    if not os.path.isdir(args.task_root):
        reason = "not a directory" if os.path.exists(args.task_root) else "no such directory"
        return f"--task-root {args.task_root}: {reason}"
    for layer in args.layer:
        if not os.path.exists(layer):
            return f"--layer {layer}: no such file or directory"
    event = getattr(args, "event", None)
    if event not in (None, "-") and not os.path.isfile(event):
        return f"--event {event}: " + ("not a file" if os.path.exists(event) else "no such file")
    return None


def _sandbox_arguments(args: argparse.Namespace) -> dict[str, object]:
    return {
        "task_root": args.task_root,
        "handler": args.handler,
        "layers": args.layer,
        "env": parse_env_pairs(args.env),
        "timeout": args.timeout,
        "memory": args.memory,
        "function_name": args.function_name,
        "freeze": args.freeze,
        "cpu_limit": args.cpu_limit,
        "runtime": args.runtime,
    }


def _read_event(source: str | None) -> bytes:
    if source is None:
        return b"{}"
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(source, "rb") as event_file:
            data = event_file.read()
    try:
        json.loads(data)
    except ValueError as error:
        name = "stdin" if source == "-" else source
        raise ValueError(f"the event in {name} is not valid JSON ({error}); Lambda takes JSON payloads") from None
    return data


def run_command(args: argparse.Namespace) -> int:
    """Invoke the function ``--repeat`` times, print each response and REPORT, then shut down cleanly."""
    from sandbox.box import Sandbox

    if args.repeat < 1:
        return _fail("run", f"--repeat must be at least 1, got {args.repeat}")
    problem = _path_problem(args)
    if problem:
        return _fail("run", problem)
    try:
        event = _read_event(args.event)
        box = Sandbox(**_sandbox_arguments(args), on_log=LogPrinter(sys.stderr))  # type: ignore[arg-type]
    except (ValueError, OSError) as error:
        return _fail("run", str(error))
    failures = 0
    costs: list[Cost] = []
    headers = {"X-Amz-Log-Type": "Tail"} if args.tail else None

    def on_sigterm(number: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # the same orderly spin-down as Ctrl-C

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        for _ in range(args.repeat):
            invocation = box.invoke(event, headers)
            report = invocation.report(timeout=args.timeout + 60)  # REPORT is printed by then
            if report.cost is not None:
                costs.append(report.cost)
                print(cost_line(report.cost), file=sys.stderr, flush=True)
            if invocation.log_tail is not None:
                print(f"afterglow run: the caller waited {invocation.latency_ms:.2f} ms for the response and the "
                      "log (X-Amz-Log-Result):", file=sys.stderr)
                print(invocation.log_tail.rstrip("\n"), file=sys.stderr, flush=True)
            sys.stdout.write(invocation.body.decode("utf-8", errors="replace") + "\n")
            sys.stdout.flush()
            if invocation.status != 200 or invocation.function_error:
                failures += 1
        if len(costs) > 1:
            print("\n".join(summary_lines(costs)), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("afterglow run: interrupted; shutting down", file=sys.stderr)
        box.shutdown(force=True)
        return 130
    finally:
        box.shutdown()  # waits for the extensions' SHUTDOWN work, so their last lines are printed
        signal.signal(signal.SIGTERM, previous)
    if failures:
        print(f"afterglow run: {failures} of {args.repeat} invocation(s) failed", file=sys.stderr)
        return 1
    return 0


def sandbox_command(args: argparse.Namespace) -> int:
    """Serve the invoke endpoint until SIGINT/SIGTERM, then spin down (a second signal cuts it short)."""
    from sandbox.box import Sandbox

    problem = _path_problem(args)
    if problem:
        return _fail("sandbox", problem)

    def on_report(report: Report) -> None:
        if report.cost is not None:
            print(cost_line(report.cost), file=sys.stdout, flush=True)

    try:
        box = Sandbox(**_sandbox_arguments(args), port=args.port, on_log=LogPrinter(sys.stdout),  # type: ignore[arg-type]
                      on_report=on_report)
    except (ValueError, OSError) as error:
        return _fail("sandbox", str(error))
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        if stop.is_set():
            box.abort()
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"afterglow sandbox: {box.config.function_name} ({box.config.handler}, {box.runtime.name}) at POST "
              f"{box.url}",
              file=sys.stderr, flush=True)
        print("afterglow sandbox: init happens on the first invoke; Ctrl-C to shut down", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        print("afterglow sandbox: shutting down", file=sys.stderr, flush=True)
        box.shutdown()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
