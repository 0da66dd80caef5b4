"""What the field's tracers send, decoded to the spans in it, and the loopback receivers that stand in for where
they send it (run by ``benchmarks.collector_process``).

Each decoder returns ``(span id, end time in epoch seconds or None)`` per span, so the receiver can count distinct
spans, duplicates and freshness the same way for every protocol:

- OTLP protobuf (``ExportTraceServiceRequest``), as ADOT sends it over UDP to the X-Ray daemon address (a JSON
  header line, then ``T1S`` or ``T1U`` and the base64 request) and lambda-otel-lite prints it (a JSON line with
  the gzipped, base64 request in ``payload``);
- Datadog's trace intake (``/v0.4/traces``: msgpack list of traces of span maps; ``/v0.5/traces``: a string table
  and traces of 12-element span arrays whose strings are indices into it);
- Lumigo's edge (``/api/spans``: a JSON list of spans; a function span carries its manual traces, Lumigo's
  child timings, counted here as spans of their own; the ``<id>_started`` span sent when an invocation starts is
  an early copy of the function span, and the enrichment record (no id) carries the execution tags: neither is
  a span of its own; an ``http`` span records a request the function made, except the tracer's own requests to
  the stand-in edge, which the tracer leaves out for its real edge by host name).
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Span = tuple[str, float | None]  # (id, end in epoch seconds)
OTLP_UDP_PREFIXES = (b"T1S", b"T1U")  # sampled, unsampled
OTLP_STDOUT_KEY = "__otel_otlp_stdout"
DATADOG_V05_SPAN_ID = 4  # service, name, resource, trace_id, span_id, parent_id, start, duration, ...
DATADOG_V05_START, DATADOG_V05_DURATION = 6, 7
EDGE_PATH = "/api/spans"  # where Lumigo's tracer posts its spans


class Undecodable(ValueError):
    """A payload that is not what the protocol says it should be."""


def otlp_spans(data: bytes) -> list[Span]:
    """Every span in an OTLP/protobuf ``ExportTraceServiceRequest``."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as error:
        raise Undecodable(f"not an OTLP trace request: {error}") from error
    return [(span.span_id.hex(), span.end_time_unix_nano / 1e9 or None)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans]


def otlp_udp_spans(body: bytes) -> list[Span] | None:
    """The spans of one OTLP-over-UDP datagram body (after the header line); None: not OTLP (an X-Ray segment)."""
    if not body.startswith(OTLP_UDP_PREFIXES):
        return None
    try:
        data = base64.b64decode(body[len(OTLP_UDP_PREFIXES[0]):], validate=True)
    except ValueError as error:
        raise Undecodable(f"OTLP UDP payload is not base64: {error}") from error
    return otlp_spans(data)


def otlp_stdout_spans(line: str) -> list[Span] | None:
    """The spans of one log line written by ``otlp-stdout-span-exporter``; None: any other line."""
    if OTLP_STDOUT_KEY not in line:
        return None
    try:
        envelope = json.loads(line[line.index("{"):])
        payload = envelope["payload"]
        data = base64.b64decode(payload, validate=True) if envelope.get("base64", True) else payload.encode()
        if envelope.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise Undecodable(f"unreadable OTLP stdout line: {error}") from error
    return otlp_spans(data)


def datadog_spans(path: str, body: bytes) -> list[Span]:
    """Every span in a Datadog trace intake payload (``/v0.4/traces`` or ``/v0.5/traces``)."""
    import msgpack

    try:
        payload = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as error:
        raise Undecodable(f"not msgpack: {error}") from error
    spans: list[Span] = []
    try:
        if path.startswith("/v0.5/"):
            _strings, traces = payload
            for trace in traces:
                for span in trace:
                    end = (span[DATADOG_V05_START] + span[DATADOG_V05_DURATION]) / 1e9
                    spans.append((f"{span[DATADOG_V05_SPAN_ID]:016x}", end))
        else:
            for trace in payload:
                for span in trace:
                    spans.append((f"{span['span_id']:016x}", (span["start"] + span["duration"]) / 1e9))
    except (TypeError, KeyError, IndexError, ValueError) as error:
        raise Undecodable(f"not a Datadog trace payload: {error}") from error
    return spans


def lumigo_spans(body: bytes) -> list[Span]:
    """Every span in a request to Lumigo's edge: function spans, their manual traces, other spans."""
    try:
        sent = json.loads(body)
        spans: list[Span] = []
        for span in sent:
            if "id" not in span:  # the enrichment record: the invocation's execution tags, not a span
                continue
            identifier = str(span["id"])
            if identifier.endswith("_started") or _lumigo_own_report(span):
                continue
            ended = span.get("ended")
            spans.append((identifier, ended / 1000.0 if ended else None))
            for index, manual in enumerate(span.get("manualTraces") or ()):
                spans.append((f"{identifier}/manual/{index}", manual.get("endTime", 0) / 1000.0 or None))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise Undecodable(f"not a Lumigo span list: {error}") from error
    return spans


def _lumigo_own_report(span: dict[str, Any]) -> bool:
    """An ``http`` span of the tracer's own request to its edge: Lumigo leaves those out by the edge's host name,
    which the loopback stand-in does not have."""
    if span.get("type") != "http":
        return False
    request = ((span.get("info") or {}).get("httpInfo") or {}).get("request") or {}
    return str(request.get("uri", "")).endswith(EDGE_PATH)


class SpanTally:
    """Distinct spans, deliveries, rejected payloads and freshness (arrival minus end) per distinct span."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: set[str] = set()
        self.received = 0
        self.rejected = 0
        self.freshness: list[tuple[float, float]] = []  # per distinct span: (end, first arrival - end in ms)

    def add(self, spans: list[Span], arrived: float) -> None:
        with self._lock:
            self.received += len(spans)
            for identifier, end in spans:
                if identifier not in self.seen:
                    self.seen.add(identifier)
                    if end is not None:
                        self.freshness.append((end, (arrived - end) * 1000.0))

    def reject(self) -> None:
        with self._lock:
            self.rejected += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"distinct": len(self.seen), "received": self.received, "rejected": self.rejected}


class HttpSink:
    """A loopback HTTP(S) receiver for Datadog's trace intake (``kind="datadog"``) or Lumigo's edge
    (``kind="lumigo"``, HTTPS with a certificate of its own CA, written to ``ca_file`` for the function's
    ``SSL_CERT_FILE``), answering ``delay_ms`` late. ``address`` is ``host:port``."""

    def __init__(self, kind: str, delay_ms: float = 0.0, ca_dir: Path | None = None) -> None:
        if kind not in ("datadog", "lumigo"):
            raise ValueError(f"unknown receiver kind {kind!r}")
        self.kind = kind
        self.tally = SpanTally()
        self.ca_file: Path | None = None
        self._delay_s = delay_ms / 1000.0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self._receive))
        self._server.daemon_threads = True
        if kind == "lumigo":
            self._server.socket = self._tls(ca_dir).wrap_socket(self._server.socket, server_side=True)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{kind}-sink", daemon=True)
        self._thread.start()

    def _tls(self, ca_dir: Path | None) -> ssl.SSLContext:
        import trustme

        authority = trustme.CA()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        folder = ca_dir or Path(tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="receiver-ca-", suffix=".pem", dir=folder)
        os.close(handle)
        self.ca_file = Path(name)
        authority.cert_pem.write_to_path(str(self.ca_file))
        return context

    def _receive(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.kind == "datadog" and method == "GET" and path == "/info":
            return 200, json.dumps({"endpoints": ["/v0.4/traces", "/v0.5/traces"]}).encode()
        arrived = time.time()
        try:
            if self.kind == "datadog" and path in ("/v0.4/traces", "/v0.5/traces"):
                spans = datadog_spans(path, body)
                answer = b'{"rate_by_service": {}}'
            elif self.kind == "lumigo" and path.startswith(EDGE_PATH):
                spans = lumigo_spans(body)
                answer = b"{}"
            else:
                return 404, b"{}"
        except Undecodable:
            self.tally.reject()
            return 400, b"{}"
        self.tally.add(spans, arrived)
        if self._delay_s:
            time.sleep(self._delay_s)
        return 200, answer

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self.ca_file is not None:
            self.ca_file.unlink(missing_ok=True)


def _handler_class(receive: Callable[[str, str, bytes], tuple[int, bytes]]) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms per request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, answer = receive(self.command, self.path.split("?")[0], body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PUT = _any

    return _Handler


def freshness_stats(freshness: Sequence[tuple[float, float]], since: float | None = None) -> dict[str, Any]:
    """``freshness_ms``: p50, p99 (nearest rank), max and n of the (end time, freshness in ms) pairs of the spans
    that ended at or after ``since`` (epoch seconds; None: every span), ``None`` for none; ``freshness_before_ms``
    the same for the spans that ended before it.

    ``since`` is when the measured invocations began: the spans of the cold start and the warm-up are not made at
    steady load, and the environment may sit frozen for a long while after them (until every configuration of the
    phase has warmed up), holding what it had not yet sent; they are reported apart, not hidden.
    """
    during = [value for end, value in freshness if since is None or end >= since]
    before = [value for end, value in freshness if since is not None and end < since]
    return {"freshness_ms": _freshness_summary(during), "freshness_before_ms": _freshness_summary(before)}


def _freshness_summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def rank(fraction: float) -> float:  # nearest rank
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]

    return {"p50": rank(0.5), "p99": rank(0.99), "max": ordered[-1], "n": len(ordered)}


class StdoutSpans:
    """Spans a function printed as OTLP lines (lambda-otel-lite's default exporter), counted from its log: what a
    log subscription would forward. ``feed`` is the sandbox's ``on_log``; decoding waits for ``stats()``, so the
    measured invocations do not pay for it."""

    def __init__(self) -> None:
        self._lines: list[tuple[str, float]] = []
        self._lock = threading.Lock()

    def feed(self, line: Any) -> None:
        if line.source == "function" and OTLP_STDOUT_KEY in line.text:
            with self._lock:
                self._lines.append((line.text, time.time()))

    def stats(self, since: float | None = None) -> dict[str, Any]:
        """Counts and freshness (``freshness_stats``: ``since`` splits off the spans that ended before it)."""
        tally = SpanTally()
        with self._lock:
            lines = list(self._lines)
        for text, arrived in lines:
            try:
                spans = otlp_stdout_spans(text)
            except Undecodable:
                tally.reject()
                continue
            tally.add(spans or [], arrived)
        return {**tally.counts(), **freshness_stats(tally.freshness, since), "log_records": 0}
