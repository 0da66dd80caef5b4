"""A loopback OTLP collector for tests and benchmarks, decoding with the official ``opentelemetry-proto`` messages.

``OtlpReceiver`` speaks OTLP/HTTP (protobuf, optionally gzip) on ``/v1/traces`` and ``/v1/logs``;
``OtlpGrpcReceiver`` speaks OTLP/gRPC (the trace and logs services). Both record what they accepted (spans and log
records flattened with their resource and scope, plus arrival times), and can misbehave on purpose:

- ``delay_s``: answer every request that much later (a slow collector);
- ``fail(status, count=None, retry_after=None)``: answer the next ``count`` requests (None: until ``recover()``)
  with that status (an outage, throttling); failed requests are counted, their spans are not recorded;
- ``stop()`` / ``start()``: go away and come back on the same port (a dead collector);
- ``rejecting``: answer every accepted request with a partial success that rejects that many spans or log records.
- ``OtlpReceiver.refuse(path, status)``: answer every request to ``path`` with ``status`` (a collector without
  that endpoint: 404, 405...); ``OtlpGrpcReceiver(services=("traces",))``: serve only those services (the others
  answer UNIMPLEMENTED, as gRPC does).

``refusing_endpoint()`` is a collector that is not there at all: a loopback port held for the block and never
listened on, so every connection is refused and no other process can take the port meanwhile.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as the Python value a user would compare with."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs}


@dataclass
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int  # OTLP SpanKind: 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]]
    links: list[tuple[str, str, dict[str, Any]]]
    status_code: int  # 0 UNSET, 1 OK, 2 ERROR
    status_message: str
    trace_state: str
    flags: int
    dropped: tuple[int, int, int]  # attributes, events, links
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    arrived_at: float  # time.time() when the request arrived
    request_index: int


@dataclass
class ReceivedLog:
    body: Any
    severity_text: str
    severity_number: int
    time_ns: int
    attributes: dict[str, Any]
    trace_id: str
    span_id: str
    resource: dict[str, Any]
    scope_name: str
    arrived_at: float
    observed_time_ns: int = 0
    flags: int = 0
    event_name: str = ""


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # lower-cased names
    arrived_at: float
    size: int
    accepted: bool
    spans: int = 0
    log_records: int = 0


@dataclass
class _Failure:
    status: int
    remaining: int | None
    retry_after: str | None


class _Recorder:
    """What both transports share: recording, waiting, scripted failures."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.spans: list[ReceivedSpan] = []
        self.logs: list[ReceivedLog] = []
        self.requests: list[ReceivedRequest] = []
        self._failure: _Failure | None = None
        self.rejecting = 0  # partial success: how many spans or log records each answer says were rejected
        self._refused: dict[str, int] = {}  # path -> the status every request to it gets
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self.on_request: Callable[[ReceivedRequest], None] | None = None
        self.on_arrival: Callable[[], None] | None = None  # OTLP/HTTP: a request has come whole, before any delay

    # --- scripting -------------------------------------------------------------------------------------

    def fail(self, status: int, count: int | None = None, retry_after: str | float | None = None) -> None:
        """Answer the next ``count`` export requests (all until ``recover()`` when None) with ``status``."""
        with self._cond:
            self._failure = _Failure(status, count, None if retry_after is None else str(retry_after))

    def recover(self) -> None:
        with self._cond:
            self._failure = None

    def refuse(self, path: str, status: int) -> None:
        """Answer every request to ``path`` (e.g. ``/v1/logs``) with ``status``, for good: no such endpoint."""
        with self._cond:
            self._refused[path] = status

    def clear(self) -> None:
        with self._cond:
            self.spans.clear()
            self.logs.clear()
            self.requests.clear()

    # --- reading ------------------------------------------------------------------------------------------

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Block until at least ``count`` spans were accepted; returns them (raises TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.spans) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} spans, received {len(self.spans)}")
                self._cond.wait(left)
            return list(self.spans)

    def wait_for_logs(self, count: int = 1, timeout: float = 10.0,
                      where: Callable[[ReceivedLog], bool] | None = None) -> list[ReceivedLog]:
        """Block until at least ``count`` log records (those ``where`` accepts, if given) were accepted; returns
        every log record received so far (raises TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for record in self.logs if where is None or where(record)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} log records, received {len(self.logs)}")
                self._cond.wait(left)
            return list(self.logs)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} requests, received {len(self.requests)}")
                self._cond.wait(left)
            return list(self.requests)

    def span_ids(self) -> list[str]:
        with self._cond:
            return [span.span_id for span in self.spans]

    def by_name(self, name: str) -> list[ReceivedSpan]:
        with self._cond:
            return [span for span in self.spans if span.name == name]

    # --- recording ----------------------------------------------------------------------------------------

    def _next_failure(self) -> _Failure | None:
        with self._cond:
            failure = self._failure
            if failure is None:
                return None
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failure = None
            return failure

    def _record_traces(self, request: ExportTraceServiceRequest, meta: ReceivedRequest) -> None:
        with self._cond:
            index = len(self.requests)
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        meta.spans += 1
                        self.spans.append(ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex() or None,
                            name=span.name,
                            kind=span.kind,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            attributes=attributes(span.attributes),
                            events=[(e.name, e.time_unix_nano, attributes(e.attributes)) for e in span.events],
                            links=[(lk.trace_id.hex(), lk.span_id.hex(), attributes(lk.attributes))
                                   for lk in span.links],
                            status_code=span.status.code,
                            status_message=span.status.message,
                            trace_state=span.trace_state,
                            flags=span.flags,
                            dropped=(span.dropped_attributes_count, span.dropped_events_count,
                                     span.dropped_links_count),
                            resource=resource,
                            scope_name=scope_spans.scope.name,
                            scope_version=scope_spans.scope.version,
                            arrived_at=meta.arrived_at,
                            request_index=index,
                        ))
            self.requests.append(meta)
            self._cond.notify_all()
        if self.on_request is not None:
            self.on_request(meta)

    def _record_logs(self, request: ExportLogsServiceRequest, meta: ReceivedRequest) -> None:
        with self._cond:
            has_event_name = "event_name" in LogRecord.DESCRIPTOR.fields_by_name
            for resource_logs in request.resource_logs:
                resource = attributes(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    for record in scope_logs.log_records:
                        # before OTLP had the field (opentelemetry-proto 1.27), the name was the event.name attribute
                        event_name = record.event_name if has_event_name else attributes(record.attributes).get(
                            "event.name", "")
                        self.logs.append(ReceivedLog(
                            body=any_value(record.body), severity_text=record.severity_text,
                            severity_number=record.severity_number, time_ns=record.time_unix_nano,
                            attributes=attributes(record.attributes), trace_id=record.trace_id.hex(),
                            span_id=record.span_id.hex(), resource=resource, scope_name=scope_logs.scope.name,
                            arrived_at=meta.arrived_at, observed_time_ns=record.observed_time_unix_nano,
                            flags=record.flags, event_name=event_name,
                        ))
                        meta.log_records += 1
            self.requests.append(meta)
            self._cond.notify_all()

    def _record_failed(self, meta: ReceivedRequest) -> None:
        with self._cond:
            self.requests.append(meta)
            self._cond.notify_all()

    def _trace_answer(self) -> ExportTraceServiceResponse:
        answer = ExportTraceServiceResponse()
        if self.rejecting:
            answer.partial_success.rejected_spans = self.rejecting
            answer.partial_success.error_message = "rejected on purpose"
        return answer

    def _logs_answer(self) -> ExportLogsServiceResponse:
        answer = ExportLogsServiceResponse()
        if self.rejecting:
            answer.partial_success.rejected_log_records = self.rejecting
            answer.partial_success.error_message = "rejected on purpose"
        return answer

    def _delay(self) -> None:
        if self.delay_s > 0:
            self._stopped.wait(self.delay_s)


# --- OTLP/HTTP --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._connections.add(self.connection)

    def finish(self) -> None:
        self.server.owner._connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:
        owner = self.server.owner
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if owner.on_arrival is not None:
            owner.on_arrival()
        headers = {name.lower(): value for name, value in self.headers.items()}
        meta = ReceivedRequest(self.path, headers, arrived, len(body), accepted=False)
        encoding = headers.get("content-encoding", "").lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
        except (OSError, zlib.error):
            self._answer(400, b"bad compression")
            owner._record_failed(meta)
            return
        owner._delay()
        refused = owner._refused.get(self.path.rstrip("/"))
        if refused is not None:
            owner._record_failed(meta)
            self._answer(refused, b"")
            return
        failure = owner._next_failure()
        if failure is not None:
            owner._record_failed(meta)
            extra = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
            self._answer(failure.status, b"", extra)
            return
        try:
            if self.path.rstrip("/").endswith("/v1/traces"):
                traces = ExportTraceServiceRequest.FromString(body)
                meta.accepted = True
                owner._record_traces(traces, meta)
                answer = owner._trace_answer().SerializeToString()
            elif self.path.rstrip("/").endswith("/v1/logs"):
                logs = ExportLogsServiceRequest.FromString(body)
                meta.accepted = True
                owner._record_logs(logs, meta)
                answer = owner._logs_answer().SerializeToString()
            else:
                owner._record_failed(meta)
                self._answer(404, b"unknown path")
                return
        except Exception:  # undecodable protobuf: what a real collector answers
            meta.accepted = False
            owner._record_failed(meta)
            self._answer(400, b"cannot decode")
            return
        self._answer(200, answer)

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: OtlpReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # An exporter killed with its connection open (a crash test, a sandbox shutting down) resets it, and a
        # client that does not trust this receiver's certificate (the TLS tests) fails the handshake: expected here,
        # and not the receiver's failure, so not a traceback in the suite's output.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS collector: its key and certificate chain, and (mutual TLS) the CA its clients need."""

    key: str
    certificate_chain: str
    client_ca: str | None = None

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate_chain, self.key)
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.client_ca)
        return context


class OtlpReceiver(_Recorder):
    """OTLP/HTTP collector on 127.0.0.1. ``endpoint`` is the base URL (``OTEL_EXPORTER_OTLP_ENDPOINT``); with
    ``tls``, it speaks HTTPS only."""

    def __init__(self, port: int = 0, delay_s: float = 0.0, tls: TlsFiles | None = None) -> None:
        super().__init__(delay_s)
        self.port = port
        self.tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._holder: socket.socket | None = None  # keeps the port ours while stopped (connections are refused)

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return f"{self.endpoint}/v1/traces"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> OtlpReceiver:
        if self._server is not None:
            return self
        self._stopped.clear()
        server = _Server(("127.0.0.1", self.port), _Handler)  # SO_REUSEADDR, as the holder: both may be bound
        if self._holder is not None:
            self._holder.close()
            self._holder = None
        if self.tls is not None:  # the handshake happens at accept; one that fails drops that connection only
            server.socket = self.tls.server_context().wrap_socket(server.socket, server_side=True)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="otlp-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self, hold_port: bool = True) -> None:
        """Go away: stop listening and cut every open connection. The port stays reserved for ``start``: bound,
        never listened on, so connections are refused and no other process takes it meanwhile."""
        server, self._server = self._server, None
        if server is None:
            if not hold_port and self._holder is not None:
                self._holder.close()
                self._holder = None
            return
        self._stopped.set()
        server.shutdown()
        server.server_close()
        if hold_port:
            holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                holder.bind(("127.0.0.1", self.port))
            except OSError:
                holder.close()  # taken in the instant between: the port is someone else's now
            else:
                self._holder = holder
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._connections.clear()
        if self._thread is not None:
            self._thread.join(2.0)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(hold_port=False)


# --- OTLP/gRPC --------------------------------------------------------------------------------------------


class OtlpGrpcReceiver(_Recorder):
    """OTLP/gRPC collector on 127.0.0.1. ``endpoint`` is ``http://127.0.0.1:PORT`` (plaintext), or with ``tls``
    ``https://127.0.0.1:PORT``."""

    def __init__(self, port: int = 0, delay_s: float = 0.0, services: tuple[str, ...] = ("traces", "logs"),
                 tls: TlsFiles | None = None) -> None:
        super().__init__(delay_s)
        self.port = port
        self.services = services
        self.tls = tls
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> OtlpGrpcReceiver:
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        recorder = self

        def accept(request: Any, context: Any, path: str) -> ReceivedRequest:
            """Record the request's arrival; abort the call when a failure is scripted."""
            headers = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            meta = ReceivedRequest(path, headers, time.time(), request.ByteSize(), accepted=False)
            recorder._delay()
            failure = recorder._next_failure()
            if failure is not None:
                recorder._record_failed(meta)
                code = {429: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE,
                        400: grpc.StatusCode.INVALID_ARGUMENT}.get(failure.status, grpc.StatusCode.UNAVAILABLE)
                context.abort(code, f"scripted failure {failure.status}")
            meta.accepted = True
            return meta

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
                meta = accept(request, context, "/opentelemetry.proto.collector.trace.v1.TraceService/Export")
                recorder._record_traces(request, meta)
                return recorder._trace_answer()

        class LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: ExportLogsServiceRequest, context: Any) -> ExportLogsServiceResponse:
                meta = accept(request, context, "/opentelemetry.proto.collector.logs.v1.LogsService/Export")
                recorder._record_logs(request, meta)
                return recorder._logs_answer()

        self._stopped.clear()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        if "traces" in self.services:
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), server)
        if "logs" in self.services:
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(LogsServicer(), server)
        if self.tls is None:
            self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        else:
            def read(path: str) -> bytes:
                with open(path, "rb") as file:
                    return file.read()

            credentials = grpc.ssl_server_credentials(
                [(read(self.tls.key), read(self.tls.certificate_chain))],
                root_certificates=read(self.tls.client_ca) if self.tls.client_ca else None,
                require_client_auth=self.tls.client_ca is not None)
            self.port = server.add_secure_port(f"127.0.0.1:{self.port}", credentials)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            self._stopped.set()
            server.stop(grace=None).wait(2.0)

    def __enter__(self) -> OtlpGrpcReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def refusing_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` where every connection is refused: the port is bound for the block but never
    listened on (a port found free and closed again may be someone else's by the time it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}"


def keyvalue(key: str, value: Any) -> KeyValue:
    """Build a KeyValue (for tests that craft requests by hand)."""
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


__all__ = [
    "OtlpGrpcReceiver",
    "OtlpReceiver",
    "ReceivedLog",
    "ReceivedRequest",
    "ReceivedSpan",
    "TlsFiles",
    "any_value",
    "attributes",
]
