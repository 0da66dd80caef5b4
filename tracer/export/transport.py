"""One OTLP request over HTTP (protobuf) or gRPC; the outcome is a value, never an exception.

Both transports keep their connection warm between flushes. Retries, backoff and the breaker live one level up,
in ``exporter``; a transport only says whether an attempt worked and whether it is worth retrying:
HTTP 429/502/503/504 and connection errors are; gRPC codes per the OTLP spec are. ``detail`` never holds header
values. The same transports carry both signals (``traces``, ``logs``): only the gRPC service and the answer's
partial-success field differ.
"""

from __future__ import annotations

import math
import socket
import time
import urllib.parse

from tracer.export.exporter import MissingExtra
from tracer.export.http11 import Connection, RemoteClosed, read_response
from tracer.export.otlp_config import GRPC, OtlpSettings

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: typing (and dataclasses) would add ~12 ms to the first flush
if TYPE_CHECKING:
    import ssl
    from typing import Any, Protocol

    class Transport(Protocol):
        def send(self, body: bytes, timeout_s: float) -> Attempt: ...

        def close(self) -> None: ...

USER_AGENT = "afterglow-extension/0.1"
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
# No such endpoint here (a collector without this signal): Not Found, Method Not Allowed, Unsupported Media Type,
# Not Implemented; gRPC's UNIMPLEMENTED.
UNSUPPORTED_HTTP = frozenset({404, 405, 415, 501})
_MAX_RETRY_AFTER_S = 300.0
_ANSWER_SLICE_S = 0.25
_MAX_ANSWER_BYTES = 4 * 1024 * 1024  # a collector's answer: a partial success, or an error page


def await_answer(sock: Any, timeout_s: float) -> bool:
    """Wait until the answer to a request starts arriving, at most ``timeout_s`` of time this process could run.

    Lambda freezes the whole environment between invocations, and a request in flight then waits for the next thaw
    while the clock runs on: a wait that the freeze stretched counts as one short slice, not as the minutes it took,
    so the answer that arrived meanwhile is read instead of the request being given up (and sent twice).
    """
    import select

    left = timeout_s
    while left > 0:
        step = min(left, _ANSWER_SLICE_S)
        started = time.monotonic()
        readable, _, _ = select.select([sock], [], [], step)
        if readable:
            return True
        left -= min(time.monotonic() - started, step)
    return False


class Attempt:
    """How one request went."""

    __slots__ = ("detail", "ok", "rejected_spans", "retry_after_s", "retryable", "status", "unconfirmed",
                 "unsupported")

    def __init__(self, ok: bool, retryable: bool = False, status: int | None = None,
                 retry_after_s: float | None = None, detail: str = "", rejected_spans: int = 0,
                 unconfirmed: bool = False, unsupported: bool = False) -> None:
        self.ok = ok
        self.retryable = retryable
        self.status = status  # HTTP status, when there was an answer
        self.retry_after_s = retry_after_s
        self.detail = detail
        self.rejected_spans = rejected_spans  # partial success: spans (or log records) accepted but dropped
        self.unconfirmed = unconfirmed  # sent whole, then no answer: the collector may have it; never sent again
        self.unsupported = unsupported  # the collector has no endpoint for this signal: asking again will not help

    def __repr__(self) -> str:
        return f"Attempt(ok={self.ok}, retryable={self.retryable}, status={self.status}, detail={self.detail!r})"


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds to wait: delay-seconds or an HTTP date (RFC 9110); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


class HttpTransport:
    """OTLP/HTTP with protobuf bodies over one keep-alive connection, spoken with ``http11`` rather than
    ``http.client`` (half the CPU per request, and none of its 33 ms of imports: see ``http11``); ``ssl`` is imported
    only for an https endpoint."""

    def __init__(self, settings: OtlpSettings) -> None:
        url = urllib.parse.urlsplit(settings.endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"unsupported OTLP/HTTP endpoint {settings.describe()}")
        self._tls = tls_context(settings) if url.scheme == "https" else None
        self._host = url.hostname
        self._port = url.port or (443 if self._tls is not None else 80)
        self._gzip = settings.compression == "gzip"
        host = f"[{self._host}]" if ":" in self._host else self._host
        headers = {"Host": host if url.port is None else f"{host}:{url.port}",
                   "Content-Type": "application/x-protobuf", "User-Agent": USER_AGENT}
        if url.username or url.password:
            import base64

            token = base64.b64encode(
                f"{urllib.parse.unquote(url.username or '')}:{urllib.parse.unquote(url.password or '')}".encode()
            ).decode()
            headers["Authorization"] = f"Basic {token}"
        headers.update(dict(settings.headers))
        if self._gzip:
            headers["Content-Encoding"] = "gzip"
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        # Everything of the request but its length and body, written once.
        head = "".join([f"POST {path} HTTP/1.1\r\n", *(f"{name}: {value}\r\n" for name, value in headers.items())])
        if any(character <= " " or character == "\x7f" for character in path) or any(
                character in value for value in headers.values() for character in "\r\n\0"):
            raise ValueError(f"the OTLP endpoint's path or a header holds a control character: {settings.describe()}")
        try:
            self._head = head.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("an OTLP header or the endpoint's path holds characters outside Latin-1: encode them "
                             f"(percent-encoding in the path): {settings.describe()}") from None
        self._connection = Connection()

    def close(self) -> None:
        self._connection.close()

    def _socket(self, timeout_s: float) -> socket.socket:
        connection = self._connection
        if connection.sock is None:
            tls, host = self._tls, self._host
            return connection.open((host, self._port), timeout_s, None if tls is None else
                                   lambda sock: tls.wrap_socket(sock, server_hostname=host))
        connection.sock.settimeout(timeout_s)
        return connection.sock

    def send(self, body: bytes, timeout_s: float) -> Attempt:
        """POST one serialized Export*ServiceRequest."""
        if self._gzip:
            import gzip

            body = gzip.compress(body, compresslevel=6)
        request = self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        timeout_s = max(timeout_s, 0.001)
        for first_try in (True, False):
            reused = self._connection.sock is not None
            try:
                sock = self._socket(timeout_s)
                sock.sendall(request)
                if not await_answer(sock, timeout_s):
                    self.close()
                    return Attempt(False, unconfirmed=True,
                                   detail=f"no answer within {timeout_s:.1f} s to a request sent whole")
                assert self._connection.reader is not None
                response = read_response(self._connection.reader, _MAX_ANSWER_BYTES)
            except (RemoteClosed, BrokenPipeError, ConnectionResetError) as error:
                self.close()
                if reused and first_try:
                    continue  # the collector closed our idle keep-alive connection: reconnect once, no backoff
                return Attempt(False, retryable=True, detail=f"connection error: {type(error).__name__}")
            except OSError as error:  # the protocol's errors (http11.HttpError), TLS's, timeouts, refusals
                self.close()
                return _failed_attempt(error, tls=self._tls is not None)
            if not response.keep_alive:
                self.close()
            status = response.status
            if 200 <= status < 300:
                return Attempt(True, status=status, rejected_spans=_rejected(response.body))
            retryable = status in RETRYABLE_HTTP
            retry_after = parse_retry_after(response.headers.get("retry-after")) if retryable else None
            return Attempt(False, retryable=retryable, status=status, retry_after_s=retry_after,
                           detail=f"HTTP {status}", unsupported=status in UNSUPPORTED_HTTP)
        return Attempt(False, retryable=True, detail="connection error")  # pragma: no cover - loop always returns


def _failed_attempt(error: OSError, tls: bool) -> Attempt:
    if tls:
        import ssl

        if isinstance(error, ssl.SSLCertVerificationError):  # retrying cannot fix it: the CA or the name is wrong
            return Attempt(False, detail=f"TLS: the collector's certificate was not accepted: "
                                         f"{error.verify_message or error.reason}")
        if isinstance(error, ssl.SSLError):  # e.g. the collector refused our client certificate
            return Attempt(False, retryable=True, detail=f"TLS: {error.reason or error}")
    return Attempt(False, retryable=True, detail=f"connection error: {type(error).__name__}: {error}")


def tls_context(settings: OtlpSettings) -> ssl.SSLContext:
    """Server verification with the system's CAs or ``certificate``; a client certificate for mutual TLS."""
    import ssl

    context = ssl.create_default_context(cafile=settings.certificate)
    if settings.client_certificate:
        context.load_cert_chain(settings.client_certificate, settings.client_key)
    return context


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as file:
        return file.read()


def _rejected(data: bytes) -> int:
    """The partial success's rejected count (field 1 in both signals' answers), read without protobuf."""
    if not data:
        return 0
    from tracer.export.otlp_proto import partial_success_rejected

    try:
        return max(0, partial_success_rejected(data))
    except ValueError:  # an answer we cannot read is still a success
        return 0


_GRPC_METHODS = {"traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                 "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export"}
GRPC_MISSING = ("OTLP/gRPC export needs the grpc extra, which is not installed: "
                "pip install 'afterglow-lambda[grpc]' (a layer: afterglow layer build --with-grpc)")


class GrpcTransport:
    """OTLP/gRPC over one channel (``grpc`` is imported only when this protocol is chosen).

    The request goes out as the encoder's bytes (no request serializer); the answer is read with
    opentelemetry-proto's response message, for its partial success.
    """

    def __init__(self, settings: OtlpSettings, signal: str = "traces") -> None:
        try:
            import grpc
        except ModuleNotFoundError as error:
            if error.name != "grpc":
                raise
            raise MissingExtra(GRPC_MISSING) from None

        if signal == "logs":
            from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse as Response
        else:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # type: ignore[assignment]
                ExportTraceServiceResponse as Response,
            )

        self._signal = signal
        self._grpc = grpc
        url = urllib.parse.urlsplit(settings.endpoint if "://" in settings.endpoint else f"//{settings.endpoint}")
        target = url.netloc or settings.endpoint
        if "@" in target:
            target = target.rsplit("@", 1)[1]
        if url.scheme == "https":
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(
                root_certificates=_read(settings.certificate), private_key=_read(settings.client_key),
                certificate_chain=_read(settings.client_certificate)))
        else:
            self._channel = grpc.insecure_channel(target)
        self._export = self._channel.unary_unary(_GRPC_METHODS[signal], request_serializer=None,
                                                 response_deserializer=Response.FromString)
        self._metadata = tuple((name.lower(), value) for name, value in settings.headers)
        self._compression = grpc.Compression.Gzip if settings.compression == "gzip" else None
        codes = grpc.StatusCode
        self._retryable = frozenset({codes.CANCELLED, codes.DEADLINE_EXCEEDED, codes.ABORTED, codes.OUT_OF_RANGE,
                                     codes.UNAVAILABLE, codes.DATA_LOSS})

    def close(self) -> None:
        self._channel.close()

    def send(self, body: bytes, timeout_s: float) -> Attempt:
        """One Export call carrying a serialized Export*ServiceRequest."""
        try:
            response = self._export(body, timeout=max(timeout_s, 0.001), metadata=self._metadata,
                                    compression=self._compression)
        except self._grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            retry_after = _grpc_retry_delay(error)
            details = error.details() if hasattr(error, "details") else None  # e.g. why the TLS handshake failed
            # RESOURCE_EXHAUSTED is retryable only when the server says when (OTLP spec); a collector whose
            # certificate we do not accept stays so, like over HTTP.
            retryable = (code in self._retryable and "CERTIFICATE_VERIFY_FAILED" not in str(details)) or (
                code is self._grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after is not None)
            name = code.name if code is not None else "UNKNOWN"
            return Attempt(False, retryable=retryable, retry_after_s=retry_after,
                           detail=f"gRPC {name}" + (f": {str(details)[:300]}" if details else ""),
                           unsupported=code is self._grpc.StatusCode.UNIMPLEMENTED)
        partial = response.partial_success
        return Attempt(True, rejected_spans=int(partial.rejected_log_records if self._signal == "logs"
                                                else partial.rejected_spans))


def _grpc_retry_delay(error: Any) -> float | None:
    try:
        from google.rpc import error_details_pb2, status_pb2

        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        info = error_details_pb2.RetryInfo()
                        detail.Unpack(info)
                        return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    except Exception:
        return None
    return None


def make_transport(settings: OtlpSettings, signal: str = "traces") -> Transport:
    return GrpcTransport(settings, signal) if settings.protocol == GRPC else HttpTransport(settings)
