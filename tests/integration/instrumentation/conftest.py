"""Real neighbours for the instrumentation tests: moto in server mode, a loopback HTTP server that records
what it received, and a tracer provider (the SDK's or afterglow's lean one) whose finished spans we read.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import instrumentation
from tracer._provider import LeanTracerProvider


class Finished:
    """One ended span, read the same way from the SDK's spans and from our lean ones."""

    def __init__(self, span: Any) -> None:
        context = span.get_span_context() if hasattr(span, "get_span_context") else span.context
        self.name: str = span.name
        self.kind = span.kind
        # Sequences as lists whichever provider stored them (the SDK keeps tuples).
        self.attributes: dict[str, Any] = {
            key: list(value) if isinstance(value, tuple) else value for key, value in (span.attributes or {}).items()
        }
        self.status = span.status.status_code
        self.trace_id: int = context.trace_id
        self.span_id: int = context.span_id
        self.parent_id: int | None = span.parent.span_id if span.parent is not None else None
        self.events = [event[0] if isinstance(event, tuple) else event.name for event in span.events]

    def __repr__(self) -> str:
        return f"Finished({self.name!r}, parent={self.parent_id}, attributes={self.attributes})"


class Tracing:
    """The global OpenTelemetry provider for one test, and what it recorded."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._ended: list[Any] = []
        if kind == "sdk":
            self._exporter = InMemorySpanExporter()
            self.provider: Any = TracerProvider()
            self.provider.add_span_processor(SimpleSpanProcessor(self._exporter))
        else:
            self.provider = LeanTracerProvider(self)

    # the lean provider's sink
    def on_end(self, span: Any) -> None:
        self._ended.append(span)

    def poke(self) -> None:
        pass

    def spans(self) -> list[Finished]:
        raw = self._exporter.get_finished_spans() if self.kind == "sdk" else list(self._ended)
        return [Finished(span) for span in raw]

    def clear(self) -> None:
        if self.kind == "sdk":
            self._exporter.clear()
        self._ended.clear()

    def tracer(self) -> trace_api.Tracer:
        return trace_api.get_tracer("tests")


def _set_global_provider(provider: Any) -> None:
    trace_api._TRACER_PROVIDER = None
    trace_api._TRACER_PROVIDER_SET_ONCE._done = False
    if provider is not None:
        trace_api.set_tracer_provider(provider)


@pytest.fixture(params=["sdk", "lean"])
def tracing(request: pytest.FixtureRequest) -> Iterator[Tracing]:
    """A fresh global provider (the SDK's, then afterglow's), instrumentation applied on top of it."""
    state = Tracing(request.param)
    _set_global_provider(state.provider)
    instrumentation.uninstrument()  # instrumentors fetch their tracer when they patch: after the provider
    instrumentation.instrument()
    try:
        yield state
    finally:
        instrumentation.uninstrument()
        _set_global_provider(None)
        if request.param == "sdk":
            state.provider.shutdown()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode on a free loopback port: botocore sends real HTTP to it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A factory of boto3 clients pointed at moto (fake credentials, never the real AWS)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3

    # Each test starts from an empty moto (its reset endpoint), without tracing the reset itself.
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=10)
    finally:
        otel_context.detach(token)

    def client(service: str, endpoint: str | None = None) -> Any:
        return boto3.session.Session().client(service, region_name="eu-west-1", endpoint_url=endpoint or moto_endpoint)

    return client


class Recorded:
    """One request as the server saw it; every header line is kept, duplicates too."""

    def __init__(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class RecordingServer:
    """A loopback HTTP server that records every request; ``/status/<n>`` answers n, ``json`` bodies are set."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.responses: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = list(self.headers.items())  # every line, so a header injected twice shows
                recorder.requests.append(Recorded(self.command, self.path, headers, body))
                status, payload, extra = recorder.responses.get(self.path.split("?")[0], (200, b"ok", {}))
                if self.path.startswith("/status/"):
                    status = int(self.path.split("/")[2])
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="recording-http", daemon=True
        )
        self._thread.start()

    def answer_json(self, path: str, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.responses[path] = (
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    try:
        yield server
    finally:
        server.stop()
