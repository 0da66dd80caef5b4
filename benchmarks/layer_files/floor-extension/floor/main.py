"""The least an extension that watches every invocation can cost: the benchmark's floor, not a straw man.

It registers for INVOKE and SHUTDOWN, subscribes to the Telemetry API (platform events and the function's
lines, batched for up to a second, the longest Lambda allows for a timely batch) and does nothing with what
arrives. One persistent connection to the Extensions API; a listener that reads each POST and answers 200
with no parsing beyond Content-Length. Every INVOKE-registered extension pays at least this much per
invocation: its wake-up, one ``event/next`` round trip, and reading the telemetry batches.
Standard library only, started with ``python3 -S`` (no site scanning).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import threading

NAME = "floor"  # must equal the launcher's file name
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def serve(connection: socket.socket) -> None:
    """Read each request (keep-alive) and answer 200; the body is read and dropped."""
    with connection, connection.makefile("rb") as reader:
        while reader.readline():  # the request line; empty once the platform closes the connection
            length = 0
            while True:
                line = reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            reader.read(length)
            connection.sendall(OK)


def accept(listener: socket.socket) -> None:
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=serve, args=(connection,), daemon=True).start()


def main() -> int:
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    api = http.client.HTTPConnection(host, int(port or 80))

    def call(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
             ) -> tuple[http.client.HTTPResponse, bytes]:
        api.request(method, path, body, headers or {})
        answer = api.getresponse()
        return answer, answer.read()

    answer, _ = call("POST", "/2020-01-01/extension/register", b'{"events": ["INVOKE", "SHUTDOWN"]}',
                     {"Lambda-Extension-Name": NAME})
    identifier = {"Lambda-Extension-Identifier": answer.getheader("Lambda-Extension-Identifier") or ""}
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("0.0.0.0", 0))  # Lambda delivers to sandbox.localdomain, not necessarily loopback
    listener.listen(4)
    threading.Thread(target=accept, args=(listener,), daemon=True).start()
    subscription = {
        "schemaVersion": "2022-12-13",
        "types": ["platform", "function"],
        "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 1000},
        "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{listener.getsockname()[1]}/"},
    }
    call("PUT", "/2022-07-01/telemetry", json.dumps(subscription).encode(),
         {**identifier, "Content-Type": "application/json"})
    while True:
        _, event = call("GET", "/2020-01-01/extension/event/next", headers=identifier)
        if json.loads(event).get("eventType") == "SHUTDOWN":
            return 0


if __name__ == "__main__":
    sys.exit(main())
