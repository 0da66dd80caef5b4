"""Just enough HTTP/1.1 for the local Lambda APIs and the OTLP/HTTP export, without ``http.client``.

``http.client`` pulls in ``ssl`` and ``email`` (33 ms of imports here), which the extension cannot afford before its
first ``event/next``, and an OTLP request through it cost 487 to 509 us of CPU with the caches cold (233 warm) where
this client costs 251 to 263 (101; ``benchmarks.micro.otlp_http_cost``): the answer's headers go through ``email``'s
parser. So a small client and request parser:
keep-alive, ``Content-Length`` or chunked bodies, bounded sizes; TLS is the caller's socket to wrap.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

MAX_HEADER_LINE = 64 * 1024
MAX_HEADERS = 100


class HttpError(OSError):
    """The peer broke the protocol or the connection."""


class RemoteClosed(HttpError):
    """The peer closed the connection before it began an answer (a kept-alive connection it had given up)."""


class Message:
    """A request (``method``, ``path``) or a response (``status``); header names lower-cased."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "status")

    def __init__(self, status: int = 0, method: str = "", path: str = "", headers: dict[str, str] | None = None,
                 body: bytes = b"", keep_alive: bool = True) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.headers = headers if headers is not None else {}
        self.body = body
        self.keep_alive = keep_alive


def _read_line(reader: BinaryIO) -> bytes:
    line = reader.readline(MAX_HEADER_LINE + 1)
    if not line:
        raise HttpError("connection closed")
    if len(line) > MAX_HEADER_LINE:
        raise HttpError("header line too long")
    return line


def _read_headers(reader: BinaryIO) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = _read_line(reader)
        if line in (b"\r\n", b"\n"):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise HttpError("malformed header line")
        headers[name.strip().lower()] = value.strip()
    raise HttpError("too many headers")


def _read_exact(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if data is None or len(data) != size:
        raise HttpError("connection closed in the middle of a body")
    return data


def _read_body(reader: BinaryIO, headers: dict[str, str], max_body: int, until_close: bool) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = _read_line(reader).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise HttpError("malformed chunk size") from None
            if size == 0:
                while _read_line(reader) not in (b"\r\n", b"\n"):  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > max_body:
                raise HttpError("body too large")
            parts.append(_read_exact(reader, size))
            _read_line(reader)
    length = headers.get("content-length")
    if length is not None:
        try:
            size = int(length)
        except ValueError:
            raise HttpError("malformed Content-Length") from None
        if size < 0 or size > max_body:
            raise HttpError("body too large")
        return _read_exact(reader, size) if size else b""
    if until_close:
        data = reader.read(max_body + 1) or b""
        if len(data) > max_body:
            raise HttpError("body too large")
        return data
    return b""


def read_request(reader: BinaryIO, max_body: int) -> Message | None:
    """Read one request; None when the client closed the connection cleanly between requests."""
    line = reader.readline(MAX_HEADER_LINE + 1)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError("malformed request line")
    headers = _read_headers(reader)
    body = _read_body(reader, headers, max_body, until_close=False)
    keep_alive = headers.get("connection", "").lower() != "close" and parts[2] != "HTTP/1.0"
    return Message(method=parts[0], path=parts[1], headers=headers, body=body, keep_alive=keep_alive)


def read_response(reader: BinaryIO, max_body: int) -> Message:
    """Read one answer (interim 1xx answers skipped). ``keep_alive`` False: the connection is to be closed after it
    (the peer said so, or the body ran to the connection's end). Raises ``RemoteClosed`` when nothing came at all."""
    while True:
        line = reader.readline(MAX_HEADER_LINE + 1)
        if not line:
            raise RemoteClosed("connection closed before an answer")
        status_line = line.decode("latin-1").split(None, 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
            raise HttpError("malformed status line")
        headers = _read_headers(reader)
        status = int(status_line[1])
        if not 100 <= status < 200 or status == 101:
            break
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" and (status_line[0] != "HTTP/1.0" or connection == "keep-alive")
    if status in (204, 304) or 100 <= status < 200:
        return Message(status=status, headers=headers, keep_alive=keep_alive)
    has_length = "content-length" in headers or "transfer-encoding" in headers
    body = _read_body(reader, headers, max_body, until_close=not has_length)
    return Message(status=status, headers=headers, body=body, keep_alive=keep_alive and has_length)


def response_bytes(status: int, reason: str, body: bytes = b"", content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


class Connection:
    """One kept-alive connection: its socket and the reader over it (what ``read_response`` reads), or none yet."""

    __slots__ = ("reader", "sock")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.reader: BinaryIO | None = None

    def open(self, address: tuple[str, int], timeout: float | None,
             wrap: Callable[[socket.socket], socket.socket] | None = None) -> socket.socket:
        """Connect (``timeout`` bounds the connect); ``wrap``: e.g. TLS over the connected socket."""
        sock = socket.create_connection(address, timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if wrap is not None:
                sock = wrap(sock)
        except BaseException:
            sock.close()
            raise
        self.sock, self.reader = sock, sock.makefile("rb")
        return sock

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        if self.sock is not None:
            self.sock.close()
        self.sock = self.reader = None


class Client:
    """One keep-alive connection to ``host:port``, reopened when the peer closed it."""

    def __init__(self, address: str, max_body: int = 8 * 1024 * 1024) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"expected host:port, got {address!r}")
        self.host = host.strip("[]")
        self.port = int(port)
        self.max_body = max_body
        self._connection = Connection()

    def close(self) -> None:
        self._connection.close()

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
        timeout: float | None = None,
    ) -> Message:
        """Send one request and read the answer. ``timeout`` None waits forever (long polls)."""
        reused = self._connection.sock is not None
        try:
            return self._exchange(method, path, headers or {}, body, timeout)
        except (HttpError, OSError):
            self.close()
            if not reused:
                raise
        # A reused keep-alive connection may have been closed by the server in between: one fresh attempt.
        return self._exchange(method, path, headers or {}, body, timeout)

    def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes, timeout: float | None) -> Message:
        connection = self._connection
        sock = connection.sock or connection.open((self.host, self.port), 5.0)
        sock.settimeout(timeout)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        assert connection.reader is not None
        response = read_response(connection.reader, self.max_body)
        if not response.keep_alive:
            self.close()
        return response
