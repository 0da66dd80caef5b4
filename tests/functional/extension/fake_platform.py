"""Test doubles around the extension process: the Lambda platform's Extensions + Telemetry APIs, and a function.

``FakePlatform`` answers the Extensions API the way RAPID (Lambda's platform) does, on a real loopback
HTTP server, records every call with its time, and can deliver Telemetry API events to the extension's
listener. ``FunctionProcess`` writes real wire frames to the extension's real Unix socket. Used where the
sandbox is more than a test needs (start-up timing, protocol corner cases, hostile input).
"""

from __future__ import annotations

import array
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tracer import wire

REPO = Path(__file__).resolve().parents[3]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        platform = self.server.platform
        body = self._body()
        if self.path == "/2020-01-01/extension/register":
            name = self.headers.get("Lambda-Extension-Name", "")
            identifier = str(uuid.uuid4())
            platform._record("register", name=name, events=(body or {}).get("events"), identifier=identifier)
            self._answer(200, {"functionName": "fn", "functionVersion": "$LATEST", "handler": "app.handler"},
                         {"Lambda-Extension-Identifier": identifier})
        elif self.path in ("/2020-01-01/extension/init/error", "/2020-01-01/extension/exit/error"):
            platform._record(self.path.rsplit("/", 2)[-2] + "_error",
                             error_type=self.headers.get("Lambda-Extension-Function-Error-Type"), body=body)
            self._answer(202, {"status": "OK"})
        else:
            self._answer(404, {"errorType": "NotFound"})

    def do_GET(self) -> None:
        platform = self.server.platform
        if self.path != "/2020-01-01/extension/event/next":
            self._answer(404, {"errorType": "NotFound"})
            return
        if not self.headers.get("Lambda-Extension-Identifier"):
            self._answer(403, {"errorType": "Extension.MissingExtensionIdentifier"})
            return
        platform._record("next")
        while not platform._stopping:
            try:
                event = platform._events.get(timeout=0.05)
            except queue.Empty:
                continue
            self._answer(200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})
            return
        self.close_connection = True  # the platform went away: the extension's long poll ends with it

    def do_PUT(self) -> None:
        platform = self.server.platform
        body = self._body()
        if self.path != "/2022-07-01/telemetry":
            self._answer(404, {"errorType": "NotFound"})
            return
        platform._record("subscribe", body=body)
        if platform.telemetry:
            platform.telemetry_uri = body["destination"]["URI"].replace("sandbox.localdomain", "127.0.0.1")
            self._answer(200, "OK")
        else:  # what the Runtime Interface Emulator answers
            self._answer(202, {"errorMessage": "Telemetry API is not supported", "errorType": "Telemetry.NotSupported"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    platform: FakePlatform


class FakePlatform:
    def __init__(self, telemetry: bool = True) -> None:
        self.telemetry = telemetry
        self.telemetry_uri: str | None = None
        self.calls: list[tuple[str, float, dict[str, Any]]] = []  # (kind, time.monotonic(), details)
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cond = threading.Condition()
        self._stopping = False
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.platform = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakePlatform:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)

    def __enter__(self) -> FakePlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, kind: str, **details: Any) -> None:
        with self._cond:
            self.calls.append((kind, time.monotonic(), details))
            self._cond.notify_all()

    def of_kind(self, kind: str) -> list[tuple[str, float, dict[str, Any]]]:
        with self._cond:
            return [call for call in self.calls if call[0] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0) -> float:
        """Wait for the ``count``-th call of ``kind``; returns its time.monotonic()."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                calls = [call for call in self.calls if call[0] == kind]
                if len(calls) >= count:
                    return calls[count - 1][1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} {kind} calls, got {len(calls)}")
                self._cond.wait(left)

    # --- driving the extension -------------------------------------------------------------------------

    def invoke(self, request_id: str | None = None, timeout_s: float = 3.0) -> str:
        request_id = request_id or str(uuid.uuid4())
        self._events.put({
            "eventType": "INVOKE", "deadlineMs": int((time.time() + timeout_s) * 1000), "requestId": request_id,
            "invokedFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:fn",
            "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5759e988-bd862e3fe1be46a994272793"},
        })
        return request_id

    def shutdown(self, reason: str = "spindown", budget_s: float = 2.0) -> None:
        self._events.put({"eventType": "SHUTDOWN", "deadlineMs": int((time.time() + budget_s) * 1000),
                          "shutdownReason": reason})

    def post_telemetry(self, events: list[dict[str, Any]]) -> int:
        """POST one batch to the subscribed listener, as Lambda does; returns the HTTP status."""
        assert self.telemetry_uri, "the extension did not subscribe"
        from urllib.request import Request, urlopen

        request = Request(self.telemetry_uri, data=json.dumps(events).encode(), method="POST",
                          headers={"Content-Type": "application/json"})
        with urlopen(request, timeout=5) as response:
            return int(response.status)

    def runtime_done(self, request_id: str, status: str = "success", error_type: str | None = None) -> int:
        record: dict[str, Any] = {"requestId": request_id, "status": status,
                                  "metrics": {"durationMs": 1.0, "producedBytes": 2}}
        if error_type:
            record["errorType"] = error_type
        return self.post_telemetry([{"time": "2026-11-26T15:00:00.000Z", "type": "platform.runtimeDone",
                                     "record": record}])


class ExtensionProcess:
    """The real extension, spawned as Lambda would (``python -m extension``), with stdout/stderr captured."""

    def __init__(self, platform: FakePlatform, tmp: Path, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        self.socket_path = str(tmp / "afterglow" / "spans.sock")
        self.stdout_path = tmp / "extension.stdout"
        self.stderr_path = tmp / "extension.stderr"
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": platform.address,
            "AFTERGLOW_SOCKET": self.socket_path,
            "PYTHONPATH": str(REPO),
        }
        environment.update(env or {})
        self.spawned_at = time.monotonic()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(command or [sys.executable, "-m", "extension"], cwd=str(tmp),
                                            env=environment, stdout=out, stderr=err)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_socket(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket_path):
            if self.process.poll() is not None:
                raise RuntimeError(f"extension exited with {self.process.returncode}: {self.stderr}")
            if time.monotonic() > deadline:
                raise TimeoutError("the extension never bound its socket")
            time.sleep(0.005)

    def wait(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


# --- the function side, written by hand ----------------------------------------------------------------


def span_record(
    name: str, trace_id: bytes, span_id: bytes, parent: bytes | None = None, kind: int = 0,
    start_ns: int | None = None, end_ns: int | None = None, attributes: dict[str, Any] | None = None,
    events: list[list[Any]] | None = None, links: list[list[Any]] | None = None, status: int = 0,
    description: str | None = None, scope: str = "tests", scope_version: str | None = "1.0",
    trace_state: str | None = None, dropped: tuple[int, int, int] = (0, 0, 0),
) -> list[Any]:
    start = start_ns if start_ns is not None else time.time_ns()
    end = end_ns if end_ns is not None else start + 1_000_000
    return [trace_id, span_id, parent, name, kind, start, end, attributes, events, links, status, description,
            scope, scope_version, 1, trace_state, list(dropped)]


def new_trace_id() -> bytes:
    return os.urandom(16)


def new_span_id() -> bytes:
    return os.urandom(8)


class FunctionProcess:
    """A function process's side, written by hand: HELLO on connect, then START, SPANS and END.

    ``version=wire.VERSION`` does what today's tracer does: HELLO passes a ring (``tracer._ring.Ring``) with
    SCM_RIGHTS, START and SPANS go into the ring, END over the socket names the ring position.
    ``version=wire.PREVIOUS_VERSION`` is an older tracer: every frame over the socket, END without a position.
    """

    def __init__(self, socket_path: str, resource: dict[str, Any] | None = None, pid: int | None = None,
                 version: int = wire.VERSION) -> None:
        from tracer._ring import Ring

        self.version = version
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(socket_path)
        self.resource = resource if resource is not None else {"service.name": "checkout", "faas.name": "checkout"}
        hello: dict[str, Any] = {"tracer": "tests", "pid": pid or os.getpid(), "resource": self.resource}
        self.ring: Ring | None = None
        if version == wire.PREVIOUS_VERSION:
            self.send(wire.frame(wire.HELLO, hello, version))
        else:
            self.ring = Ring(1 << 20)
            assert self.ring.fd is not None
            hello["ring"] = self.ring.capacity
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [self.ring.fd]))]
            self.sock.sendmsg([wire.frame(wire.HELLO, hello)], rights)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def write(self, kind: int, payload: Any) -> None:
        """A START or SPANS frame, where this tracer version puts it (the ring, or the socket)."""
        if self.ring is None:
            self.send(wire.frame(kind, payload, self.version))
        elif kind == wire.SPANS:
            for span in payload:  # one span per frame, as the tracer writes them
                assert self.ring.put_span(span) < self.ring.capacity
        else:
            assert self.ring.put(kind, payload)

    def end(self, request_id: str, sampled: bool = True, dropped: dict[str, int] | None = None) -> None:
        payload: list[Any] = [request_id, sampled, dropped or {}]
        if self.ring is not None:
            payload.append(self.ring.written)
        self.send(wire.frame(wire.END, payload, self.version))

    def invocation(self, request_id: str, children: int = 9, status: int = 0, end: bool = True,
                   attributes: dict[str, Any] | None = None) -> list[list[Any]]:
        """One traced invocation: START, ``children`` child spans, the invocation span, END. Returns all spans."""
        trace_id, root_id = new_trace_id(), new_span_id()
        start = time.time_ns()
        root_attributes = {"faas.invocation_id": request_id, "faas.trigger": "http", **(attributes or {})}
        root = span_record("handler", trace_id, root_id, kind=1, start_ns=start, end_ns=0,
                           attributes=root_attributes)
        self.write(wire.START, [request_id, root])
        spans = [span_record(f"child-{index}", trace_id, new_span_id(), root_id, kind=2,
                             start_ns=start + 1000 * (index + 1), end_ns=start + 1000 * (index + 2),
                             attributes={"index": index, "http.request.method": "GET"})
                 for index in range(children)]
        if spans:
            self.write(wire.SPANS, spans)
        if end:
            finished = list(root)
            finished[wire.END_NS] = time.time_ns()
            finished[wire.STATUS_CODE] = status
            self.write(wire.SPANS, [finished])
            self.end(request_id)
            spans.append(finished)
        else:
            spans.append(root)
        return spans

    def close(self) -> None:
        self.sock.close()
        if self.ring is not None:
            self.ring.close()
