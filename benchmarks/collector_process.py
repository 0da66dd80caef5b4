"""A collector in its own process, as a real one would be:
``python -m benchmarks.collector_process otlp|xray|datadog|lumigo``.

Decoding what arrives costs CPU; in the harness's process it would compete for the GIL with the sandbox that
relays every response, and so colour the very latencies being measured. Here it does not.

``otlp [--delay-ms N]`` runs the project's loopback OTLP/HTTP receiver (``tests/helpers/otlp_receiver.py``,
official protobuf decoding, optional late answers); ``xray`` a UDP sink that decodes X-Ray daemon datagrams
(X-Ray segments, or OTLP over UDP as ADOT sends it); ``datadog`` and ``lumigo`` the loopback stand-ins for
Datadog's trace intake and Lumigo's edge (``benchmarks.peer_receivers``). The first stdout line is the address
to send to (for ``lumigo``, then a space and the CA certificate file the function must trust). Then, for each
``count`` line on stdin, one line of JSON
``{"distinct": n, "received": n, "rejected": n}`` (span ids are kept, so duplicates show); for each ``stats``
line the same plus ``freshness_ms`` (each distinct span's first arrival minus its end time: p50, p99, max, n;
``null`` before any) and ``log_records`` (OTLP only); ``stats <epoch seconds>`` counts in ``freshness_ms`` only
the spans that ended at or after that time, and those that ended before in ``freshness_before_ms``
(``benchmarks.peer_receivers.freshness_stats``). EOF ends it.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.peer_receivers import HttpSink, freshness_stats, otlp_udp_spans


class _OtlpCounts:
    def __init__(self, delay_ms: float) -> None:
        from tests.helpers.otlp_receiver import OtlpReceiver

        self.receiver = OtlpReceiver(delay_s=delay_ms / 1000.0).start()
        self.address = self.receiver.endpoint
        self.seen: set[str] = set()
        self.received = 0
        self.rejected = 0
        self.log_records = 0
        self.freshness: list[tuple[float, float]] = []  # per distinct span: (end, first arrival - end in ms)

    def counts(self) -> dict[str, int]:
        # Swapping the lists keeps a concurrent append: it lands in the list taken here or in the fresh one.
        spans, self.receiver.spans = self.receiver.spans, []
        requests, self.receiver.requests = self.receiver.requests, []
        logs, self.receiver.logs = self.receiver.logs, []
        for span in spans:
            if span.span_id not in self.seen:
                self.seen.add(span.span_id)
                self.freshness.append((span.end_ns / 1e9, span.arrived_at * 1000.0 - span.end_ns / 1e6))
        self.received += len(spans)
        self.rejected += sum(1 for request in requests if not request.accepted)
        self.log_records += len(logs)
        return {"distinct": len(self.seen), "received": self.received, "rejected": self.rejected}

    def stats(self, since: float | None = None) -> dict[str, Any]:
        return {**self.counts(), **freshness_stats(self.freshness, since), "log_records": self.log_records}

    def stop(self) -> None:
        self.receiver.stop()


class _XRayCounts:
    """X-Ray's daemon protocol over UDP: a JSON header line, a newline, one segment document per datagram."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self._socket.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._lock = threading.Lock()
        self.seen: set[str] = set()
        self.received = 0
        self.rejected = 0
        self._thread = threading.Thread(target=self._serve, name="xray-sink", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                datagram = self._socket.recv(65536)
            except OSError:
                return
            _, _, body = datagram.partition(b"\n")
            try:
                otlp = otlp_udp_spans(body)
                ids = list(_segment_ids(json.loads(body))) if otlp is None else [span_id for span_id, _ in otlp]
            except ValueError:
                with self._lock:
                    self.rejected += 1
                continue
            with self._lock:
                self.received += len(ids)
                self.seen.update(ids)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"distinct": len(self.seen), "received": self.received, "rejected": self.rejected}

    def stats(self, since: float | None = None) -> dict[str, Any]:  # X-Ray segments carry no arrival
        return {**self.counts(), "freshness_ms": None, "freshness_before_ms": None, "log_records": 0}

    def stop(self) -> None:
        self._socket.close()


class _HttpCounts:
    """Datadog's trace intake or Lumigo's edge, stood in for on loopback."""

    def __init__(self, kind: str, delay_ms: float, ca_dir: Path | None) -> None:
        self.sink = HttpSink(kind, delay_ms, ca_dir)
        self.address = self.sink.address + (f" {self.sink.ca_file}" if self.sink.ca_file else "")

    def counts(self) -> dict[str, int]:
        return self.sink.tally.counts()

    def stats(self, since: float | None = None) -> dict[str, Any]:
        return {**self.counts(), **freshness_stats(list(self.sink.tally.freshness), since), "log_records": 0}

    def stop(self) -> None:
        self.sink.stop()


def _segment_ids(document: dict[str, Any]) -> Iterator[str]:
    if "id" in document:
        yield document["id"]
    for child in document.get("subsegments") or ():
        yield from _segment_ids(child)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collector_process")
    parser.add_argument("kind", choices=("otlp", "xray", "datadog", "lumigo"))
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer HTTP requests this much later")
    parser.add_argument("--ca-dir", type=Path, help="lumigo: where to write the CA certificate the function trusts")
    args = parser.parse_args(argv)
    collector: _OtlpCounts | _XRayCounts | _HttpCounts
    if args.kind == "otlp":
        collector = _OtlpCounts(args.delay_ms)
    elif args.kind == "xray":
        collector = _XRayCounts()
    else:
        collector = _HttpCounts(args.kind, args.delay_ms, args.ca_dir)
    print(collector.address, flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "count":
                print(json.dumps(collector.counts()), flush=True)
            elif command.split(" ")[0] == "stats":
                _, _, since = command.partition(" ")
                print(json.dumps(collector.stats(float(since) if since else None)), flush=True)
    finally:
        collector.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
