"""The least an extension that watches every invocation can cost: the benchmark's floor, not a straw man.

It registers for INVOKE and SHUTDOWN, subscribes to the Telemetry API (platform events and the function's
lines, batched for up to a second, the longest Lambda allows for a timely batch) and does nothing with what
arrives. One persistent connection to the Extensions API; one thread serves the Telemetry API's connections,
reading each POST and answering 200 with no parsing beyond Content-Length. Every INVOKE-registered extension
pays at least this much per invocation: its wake-up, one ``event/next`` round trip, and reading the telemetry
batches. Standard library only, started with ``python3 -S`` (no site scanning).

``FLOOR_EVENTS=SHUTDOWN`` registers for SHUTDOWN alone, as afterglow's default (background) export does: never
woken per invocation, the main thread waits in one ``event/next`` until the end. ``FLOOR_TELEMETRY=off`` leaves
the Telemetry API alone. Together they measure what each part of a watching extension costs on its own.
"""

from __future__ import annotations

import http.client
import json
import os
import selectors
import socket
import sys
import threading

NAME = "floor"  # must equal the launcher's file name
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def serve(connection: socket.socket, buffer: bytearray) -> bool:
    """Answer every request complete in ``buffer`` after reading what arrived; False once the platform closed."""
    data = connection.recv(262144)
    if not data:
        return False
    buffer += data
    while True:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return True
        length = 0
        for line in bytes(buffer[:head_end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(buffer) < head_end + 4 + length:
            return True
        del buffer[:head_end + 4 + length]
        connection.sendall(OK)


def listen(listener: socket.socket) -> None:
    """One thread for the listener and every connection (each waiting thread costs CPU at each freeze and thaw)."""
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                connection, _ = listener.accept()
                selector.register(connection, selectors.EVENT_READ, bytearray())
            elif not serve(key.fileobj, key.data):  # type: ignore[arg-type]
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]


def main() -> int:
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    api = http.client.HTTPConnection(host, int(port or 80))
    events = [event for event in os.environ.get("FLOOR_EVENTS", "INVOKE,SHUTDOWN").split(",") if event]

    def call(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
             ) -> tuple[http.client.HTTPResponse, bytes]:
        api.request(method, path, body, headers or {})
        answer = api.getresponse()
        return answer, answer.read()

    answer, _ = call("POST", "/2020-01-01/extension/register", json.dumps({"events": events}).encode(),
                     {"Lambda-Extension-Name": NAME})
    identifier = {"Lambda-Extension-Identifier": answer.getheader("Lambda-Extension-Identifier") or ""}
    if os.environ.get("FLOOR_TELEMETRY", "on") != "off":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("0.0.0.0", 0))  # Lambda delivers to sandbox.localdomain, not necessarily loopback
        listener.listen(4)
        threading.Thread(target=listen, args=(listener,), daemon=True).start()
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
