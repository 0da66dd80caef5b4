"""What one OTLP/HTTP request costs the extension's thread, ``http.client`` against our transport (not a test).

    .venv/bin/python -m benchmarks.micro.otlp_http_cost [--rounds 200] [--warm]

The same small ExportTraceServiceRequest is posted to a loopback OTLP receiver over a kept-alive connection, taking
turns: once through ``http.client.HTTPConnection`` (what the transport used before), once through
``tracer.export.transport.HttpTransport`` (``http11``). This thread's CPU time (``time.thread_time_ns``) per request,
median and minimum of the rounds; before each request the caches are stirred (unless ``--warm``), as a pass a second
meets them in Lambda. The receiver runs on other threads, so its work is not counted. Also printed: what importing
each costs a fresh interpreter (``-X importtime``), which the extension pays once per cold start.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import sys
import time

from benchmarks.micro.telemetry_cost import _stir
from tests.helpers.otlp_receiver import OtlpReceiver
from tracer.export.otlp_config import HTTP, OtlpSettings
from tracer.export.transport import HttpTransport


def _import_ms(module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter that has imported the extension already."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import extension.main; import {module}"],
                            capture_output=True, text=True, check=True)
    for line in reversed(result.stderr.splitlines()):
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$", line.strip())
        if match and match.group(2) == module:
            return int(match.group(1)) / 1000
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warm", action="store_true", help="do not stir the caches between requests")
    args = parser.parse_args()
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    body = ExportTraceServiceRequest().SerializeToString()
    clock = time.thread_time_ns
    spent: dict[str, list[int]] = {"http.client": [], "afterglow (http11)": []}
    with OtlpReceiver() as receiver:
        host, port = receiver.endpoint.split("//", 1)[1].split(":")
        standard = http.client.HTTPConnection(host, int(port), timeout=5)
        ours = HttpTransport(OtlpSettings(HTTP, receiver.traces_url, (), "none", 5.0))
        headers = {"Content-Type": "application/x-protobuf", "User-Agent": "bench"}
        try:
            for _ in range(args.rounds):
                if not args.warm:
                    _stir()
                began = clock()
                standard.request("POST", "/v1/traces", body, headers)
                answer = standard.getresponse()
                answer.read()
                spent["http.client"].append(clock() - began)
                assert answer.status == 200, answer.status
                if not args.warm:
                    _stir()
                began = clock()
                attempt = ours.send(body, 5.0)
                spent["afterglow (http11)"].append(clock() - began)
                assert attempt.ok, attempt
        finally:
            standard.close()
            ours.close()
    for name, values in spent.items():
        print(f"{name:>20}: {statistics.median(values) / 1000:6.1f} us per request (min {min(values) / 1000:.1f})")
    for module in ("http.client", "tracer.export.transport"):
        print(f"{'import ' + module:>32}: {_import_ms(module):5.1f} ms")


if __name__ == "__main__":
    main()
