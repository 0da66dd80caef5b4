"""http.client, urllib3 and requests against a real loopback server: one span per request, one header."""

from __future__ import annotations

import http.client
import socket
import urllib.request
from typing import Any

import pytest
import requests
import urllib3
import wrapt
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, StatusCode

import instrumentation
from instrumentation import _registry

TRACEPARENT_PREFIX = "00-"


def _send_with_requests(url: str, headers: dict[str, str]) -> int:
    return requests.get(url, headers=headers, timeout=5).status_code


def _send_with_requests_session(url: str, headers: dict[str, str]) -> int:
    with requests.Session() as session:
        return session.get(url, headers=headers, timeout=5).status_code


def _send_with_urllib3(url: str, headers: dict[str, str]) -> int:
    pool = urllib3.PoolManager()
    try:
        return pool.request("GET", url, headers=headers, retries=False).status
    finally:
        pool.clear()


def _send_with_urllib_request(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _send_with_http_client(url: str, headers: dict[str, str]) -> int:
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/" + path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


CLIENTS = {
    "requests": _send_with_requests,
    "requests.Session": _send_with_requests_session,
    "urllib3": _send_with_urllib3,
    "urllib.request": _send_with_urllib_request,
    "http.client": _send_with_http_client,
}


@pytest.mark.parametrize("client", CLIENTS)
def test_one_client_span_and_one_traceparent_per_request(client: str, tracing: Any, http_server: Any) -> None:
    caller_headers = {"X-Caller": "yes"}
    with tracing.tracer().start_as_current_span("handler") as parent:
        status = CLIENTS[client](f"{http_server.url}/items/7?page=2", caller_headers)
    assert status == 200
    assert caller_headers == {"X-Caller": "yes"}, "the caller's headers were changed in place"

    spans = [span for span in tracing.spans() if span.name != "handler"]
    assert len(spans) == 1, spans
    span = spans[0]
    assert span.kind == SpanKind.CLIENT
    assert span.name == "GET"
    assert span.parent_id == parent.get_span_context().span_id
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["url.full"] == f"{http_server.url}/items/7?page=2"
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["server.port"] == http_server.port
    assert span.attributes["http.response.status_code"] == 200
    assert span.status == StatusCode.UNSET

    (received,) = http_server.requests
    assert len(received.all("traceparent")) == 1
    assert (
        received.header("traceparent")
        == f"00-{span.trace_id:032x}-{span.span_id:016x}-{received.header('traceparent')[-2:]}"
    )
    assert received.header("X-Caller") == "yes"


@pytest.mark.parametrize("client", CLIENTS)
def test_error_statuses_mark_the_client_span(client: str, tracing: Any, http_server: Any) -> None:
    assert CLIENTS[client](f"{http_server.url}/status/503", {}) == 503
    assert CLIENTS[client](f"{http_server.url}/status/404", {}) == 404
    spans = tracing.spans()
    assert [span.attributes["http.response.status_code"] for span in spans] == [503, 404]
    assert all(span.status == StatusCode.ERROR for span in spans)
    assert [span.attributes["error.type"] for span in spans] == ["503", "404"]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_refused_connection_raises_the_clients_own_error(client: str, tracing: Any) -> None:
    with socket.socket() as holder:  # bound for the test, never listened on: refused, and no one else's meanwhile
        holder.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{holder.getsockname()[1]}/"
        instrumentation.uninstrument()
        with pytest.raises(Exception) as plain:
            CLIENTS[client](url, {})
        instrumentation.instrument()
        with pytest.raises(Exception) as traced:
            CLIENTS[client](url, {})
    assert type(traced.value) is type(plain.value)
    (span,) = tracing.spans()
    assert span.status == StatusCode.ERROR
    # The span sees the error where it traces the request (urllib.request wraps it in URLError later).
    chain = _chain(traced.value)
    assert span.attributes["error.type"] in {type(error).__qualname__ for error in chain}
    assert "exception" in span.events


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__ or getattr(current, "reason", None)
        if not isinstance(current, BaseException):
            current = None
    return found


def test_an_existing_traceparent_is_left_alone(tracing: Any, http_server: Any) -> None:
    theirs = "00-11111111111111111111111111111111-2222222222222222-01"
    with tracing.tracer().start_as_current_span("handler"):
        requests.get(http_server.url, headers={"TraceParent": theirs}, timeout=5)
        _send_with_http_client(http_server.url + "/", {"traceparent": theirs})
    for received in http_server.requests:
        assert received.all("traceparent") == [theirs]


def test_credentials_and_secret_query_values_never_reach_url_full(tracing: Any, http_server: Any) -> None:
    url = f"http://alice:s3cret@127.0.0.1:{http_server.port}/download?X-Amz-Signature=abc123&X-Amz-Credential=AKIA&n=1"
    requests.get(url, timeout=5)
    (span,) = tracing.spans()
    full = span.attributes["url.full"]
    assert (
        full
        == f"http://REDACTED:REDACTED@127.0.0.1:{http_server.port}/download?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&n=1"
    )
    assert "s3cret" not in str(span.attributes) and "abc123" not in str(span.attributes)


def test_requests_redirects_are_one_span_with_the_final_status(tracing: Any, http_server: Any) -> None:
    http_server.responses["/old"] = (302, b"", {"Location": "/new"})
    response = requests.get(f"{http_server.url}/old", timeout=5)
    assert response.status_code == 200 and len(response.history) == 1
    (span,) = tracing.spans()
    assert span.attributes["http.response.status_code"] == 200
    assert [received.path for received in http_server.requests] == ["/old", "/new"]
    assert all(len(received.all("traceparent")) == 1 for received in http_server.requests)


def test_a_prepared_request_sent_twice_is_not_changed(tracing: Any, http_server: Any) -> None:
    with requests.Session() as session:
        prepared = requests.Request("GET", http_server.url).prepare()
        session.send(prepared, timeout=5)
        session.send(prepared, timeout=5)
    assert "traceparent" not in prepared.headers
    first, second = http_server.requests
    assert first.header("traceparent") != second.header("traceparent")  # each send is its own span


# --- instrumentor contract: double instrument, uninstrument, suppression ----------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_instrumenting_twice_still_gives_one_span_and_one_header(client: str, tracing: Any, http_server: Any) -> None:
    instrumentation.instrument()
    instrumentation.instrument(["requests", "urllib3", "http.client"])
    for name in ("requests", "urllib3", "http.client"):
        instance = _registry.instrumentor(name)
        assert instance is not None
        instance.instrument()  # type: ignore[attr-defined]
    CLIENTS[client](http_server.url + "/", {})
    assert len(tracing.spans()) == 1
    assert len(http_server.requests[0].all("traceparent")) == 1


@pytest.mark.parametrize("client", CLIENTS)
def test_uninstrument_restores_the_originals(client: str, tracing: Any, http_server: Any) -> None:
    originals = {
        "Session.send": requests.sessions.Session.__dict__["send"],
        "urlopen": urllib3.connectionpool.HTTPConnectionPool.__dict__["urlopen"],
        "request": http.client.HTTPConnection.__dict__["request"],
    }
    assert all(isinstance(function, wrapt.FunctionWrapper) for function in originals.values())
    instrumentation.uninstrument()
    assert requests.sessions.Session.__dict__["send"] is originals["Session.send"].__wrapped__
    assert urllib3.connectionpool.HTTPConnectionPool.__dict__["urlopen"] is originals["urlopen"].__wrapped__
    assert http.client.HTTPConnection.__dict__["request"] is originals["request"].__wrapped__
    with tracing.tracer().start_as_current_span("handler"):
        CLIENTS[client](http_server.url + "/", {})
    assert [span.name for span in tracing.spans()] == ["handler"]
    assert http_server.requests[0].all("traceparent") == []


@pytest.mark.parametrize("client", CLIENTS)
def test_suppressed_instrumentation_makes_no_span_and_sends_no_header(
    client: str, tracing: Any, http_server: Any
) -> None:
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        CLIENTS[client](http_server.url + "/", {})
    finally:
        otel_context.detach(token)
    assert tracing.spans() == []
    assert http_server.requests[0].all("traceparent") == []
