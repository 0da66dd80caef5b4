"""The OTLP/HTTP transport's own HTTP/1.1 (``http11``) against a scripted collector on a real loopback socket: what
goes out, keep-alive and the collector closing it, the forms an answer can take, and answers that are not HTTP."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Iterator

import pytest

from tracer.export.http11 import Message, read_request
from tracer.export.otlp_config import HTTP, OtlpSettings
from tracer.export.transport import HttpTransport

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"


class ScriptedCollector:
    """Accepts connections one after another; answers each request with the next scripted answer (bytes), then
    closes the connection when the answer is followed by ``CLOSE``. Records (connection number, request)."""

    CLOSE = b"<close>"

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.answers: queue.Queue[bytes] = queue.Queue()
        self.requests: list[tuple[int, Message]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/v1/traces") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        connection_number = 0
        while not self._stopping:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            connection_number += 1
            with conn, conn.makefile("rb") as reader:
                while True:
                    try:
                        request = read_request(reader, 1 << 20)  # type: ignore[arg-type]
                    except OSError:
                        break
                    if request is None:
                        break
                    self.requests.append((connection_number, request))
                    answer = self.answers.get(timeout=10)
                    conn.sendall(answer.replace(self.CLOSE, b""))
                    if answer.endswith(self.CLOSE):
                        break

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept (closing alone does not)
        self._server.close()
        self._thread.join(5)


@pytest.fixture
def collector() -> Iterator[ScriptedCollector]:
    running = ScriptedCollector()
    yield running
    running.stop()


def transport_for(url: str, headers: tuple[tuple[str, str], ...] = (), compression: str = "none") -> HttpTransport:
    return HttpTransport(OtlpSettings(HTTP, url, headers, compression, 5.0))


def test_the_request_is_a_post_of_the_body_with_the_configured_headers(collector: ScriptedCollector) -> None:
    transport = transport_for(collector.url("/otlp/v1/traces?tenant=a"), headers=(("x-api-key", "k1"),))
    collector.answers.put(OK)
    assert transport.send(b"\x0a\x00payload", 5.0).ok
    transport.close()
    (_, request), = collector.requests
    assert (request.method, request.path, request.body) == ("POST", "/otlp/v1/traces?tenant=a", b"\x0a\x00payload")
    assert request.headers["host"] == f"127.0.0.1:{collector.port}"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["x-api-key"] == "k1"


def test_gzip_bodies_say_so_and_decompress_to_what_was_sent(collector: ScriptedCollector) -> None:
    import gzip

    transport = transport_for(collector.url(), compression="gzip")
    collector.answers.put(OK)
    assert transport.send(b"spans" * 100, 5.0).ok
    transport.close()
    (_, request), = collector.requests
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.body) == b"spans" * 100


def test_requests_share_one_kept_alive_connection(collector: ScriptedCollector) -> None:
    transport = transport_for(collector.url())
    for _ in range(3):
        collector.answers.put(OK)
        assert transport.send(b"x", 5.0).ok
    transport.close()
    assert [number for number, _ in collector.requests] == [1, 1, 1]


def test_a_kept_alive_connection_the_collector_closed_is_reopened_and_the_request_arrives_once(
        collector: ScriptedCollector) -> None:
    transport = transport_for(collector.url())
    collector.answers.put(OK + ScriptedCollector.CLOSE)  # closes without saying so, as an idle timeout does
    assert transport.send(b"first", 5.0).ok
    collector.answers.put(OK)
    assert transport.send(b"second", 5.0).ok
    transport.close()
    assert [(number, request.body) for number, request in collector.requests] == [(1, b"first"), (2, b"second")]


def test_an_answer_that_says_connection_close_closes_ours(collector: ScriptedCollector) -> None:
    transport = transport_for(collector.url())
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    collector.answers.put(closing + ScriptedCollector.CLOSE)
    assert transport.send(b"first", 5.0).ok
    collector.answers.put(OK)
    assert transport.send(b"second", 5.0).ok
    transport.close()
    assert [number for number, _ in collector.requests] == [1, 2]


def test_a_chunked_answer_with_a_partial_success_is_read(collector: ScriptedCollector) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    answer = ExportTraceServiceResponse()
    answer.partial_success.rejected_spans = 7
    body = answer.SerializeToString()
    collector.answers.put(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    transport = transport_for(collector.url())
    attempt = transport.send(b"x", 5.0)
    transport.close()
    assert attempt.ok
    assert attempt.rejected_spans == 7


def test_an_http_1_0_answer_read_to_the_connection_end(collector: ScriptedCollector) -> None:
    transport = transport_for(collector.url())
    collector.answers.put(b"HTTP/1.0 200 OK\r\n\r\n" + ScriptedCollector.CLOSE)
    assert transport.send(b"first", 5.0).ok
    collector.answers.put(OK)
    assert transport.send(b"second", 5.0).ok  # on a new connection: 1.0 without keep-alive ends with the answer
    transport.close()
    assert [number for number, _ in collector.requests] == [1, 2]


def test_interim_answers_are_skipped(collector: ScriptedCollector) -> None:
    transport = transport_for(collector.url())
    collector.answers.put(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    attempt = transport.send(b"x", 5.0)
    transport.close()
    assert attempt.ok and attempt.status == 200


def test_retry_after_and_status_reach_the_attempt(collector: ScriptedCollector) -> None:
    transport = transport_for(collector.url())
    collector.answers.put(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 4\r\n\r\nbusy")
    attempt = transport.send(b"x", 5.0)
    transport.close()
    assert (attempt.ok, attempt.retryable, attempt.status, attempt.retry_after_s) == (False, True, 503, 2.0)


def test_an_answer_that_is_not_http_fails_the_attempt_and_the_next_goes_on_a_new_connection(
        collector: ScriptedCollector) -> None:
    transport = transport_for(collector.url())
    collector.answers.put(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    attempt = transport.send(b"first", 5.0)
    assert not attempt.ok and attempt.retryable
    assert "malformed status line" in attempt.detail
    collector.answers.put(OK)
    assert transport.send(b"second", 5.0).ok
    transport.close()
    assert [number for number, _ in collector.requests] == [1, 2]


def test_a_collector_that_closes_a_new_connection_without_answering_fails_the_attempt_once(
        collector: ScriptedCollector) -> None:
    transport = transport_for(collector.url())
    collector.answers.put(ScriptedCollector.CLOSE)
    attempt = transport.send(b"x", 5.0)
    transport.close()
    assert not attempt.ok and attempt.retryable
    assert len(collector.requests) == 1  # a fresh connection is not retried here: the exporter's backoff decides


@pytest.mark.parametrize("headers", [(("x-tenant", "a\r\nx-injected: 1"),), (("x-tenant", "\u0100"),)])
def test_a_header_that_cannot_be_sent_is_refused_when_the_transport_is_made(headers: tuple[tuple[str, str]]) -> None:
    with pytest.raises(ValueError, match="header"):
        transport_for("http://127.0.0.1:4318/v1/traces", headers=headers)
