#!/usr/bin/env python3
"""A configurable Lambda extension for the sandbox's tests (a plain script: stdlib only).

The sandbox starts it as /opt/extensions/<name>. It reads its behaviour from
``<opt>/ext-config/<name>.json`` (next to its own folder, so nothing depends on where /opt really is)
and appends one JSON line per thing it saw to the ``record`` file named there:

    register       false: never register (stalls init)
    events         event types to register for (default INVOKE, SHUTDOWN)
    name           the Lambda-Extension-Name to send (default: the file name)
    hold_ms        sleep this long after each INVOKE before calling next again
    crash_on       "init" (exit before next), "invoke" (exit 3 on INVOKE)
    init_error     post /extension/init/error with this error type and exit
    shutdown_ms    sleep this long after SHUTDOWN before exiting (exceeding the deadline gets SIGKILL)
    shutdown_print a line to print at SHUTDOWN
    telemetry      a subscription body's types/buffering; received batches are recorded
    telemetry_delay_ms  answer each telemetry delivery this late (a slow subscriber)
    logs_api       subscribe with the legacy Logs API instead
    probes         API calls to make right after registering, each {"method", "path", "body", "headers"};
                   "{id}" in a header value becomes our identifier; each answer is recorded as a "probe"
    late_subscribe on the first INVOKE, try to subscribe to the Telemetry API and record the answer
    burn_ms        burn this much CPU after each INVOKE before calling next again
    burn_after_next_ms  on each INVOKE, a thread burns this much CPU starting as next is called again;
                   records "burn_done" with the wall time it finished
    idle_threads   start this many threads that wait forever, as an extension's listeners and timers do
    pid_file       a file holding the runtime's pid (relative: under $TMPDIR, the environment's shared /tmp):
                   at SHUTDOWN, record whether that process is still alive
"""

import http.client
import http.server
import json
import os
import sys
import threading
import time

NAME = os.path.basename(sys.argv[0])
OPT = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
with open(os.path.join(OPT, "ext-config", NAME + ".json")) as config_file:
    CONFIG = json.load(config_file)
HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
RECORD_LOCK = threading.Lock()


def record(kind, **fields):
    line = json.dumps({"kind": kind, "t": time.time(), **fields})
    with RECORD_LOCK, open(CONFIG["record"], "a") as sink:
        sink.write(line + "\n")


def call(method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(HOST, int(PORT))
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    result = response.status, dict(response.getheaders()), data
    connection.close()
    return result


class TelemetryReceiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        batch = json.loads(self.rfile.read(length))
        record("telemetry", path=self.path, batch=batch)
        time.sleep(CONFIG.get("telemetry_delay_ms", 0) / 1000)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def burn(milliseconds):
    """Use this much CPU time of this thread (not wall time)."""
    end = time.thread_time() + milliseconds / 1000
    while time.thread_time() < end:
        pass


def burn_in_background(milliseconds, request_id):
    def work():
        burn(milliseconds)
        record("burn_done", requestId=request_id)

    threading.Thread(target=work, daemon=True).start()


def subscribe(identifier):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TelemetryReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    legacy = CONFIG.get("logs_api", False)
    body = {
        "schemaVersion": "2021-03-18" if legacy else "2022-12-13",
        "types": CONFIG["telemetry"].get("types", ["platform", "function", "extension"]),
        "buffering": CONFIG["telemetry"].get("buffering", {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}),
        "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{port}/telemetry"},
    }
    path = "/2020-08-15/logs" if legacy else "/2022-07-01/telemetry"
    status, _, data = call("PUT", path, json.dumps(body), {"Lambda-Extension-Identifier": identifier})
    record("subscribed", status=status, body=data.decode())


def main():
    print(f"{NAME} starting", flush=True)
    if CONFIG.get("register", True) is False:
        record("waiting_forever")
        time.sleep(3600)
    never = threading.Event()
    for _ in range(CONFIG.get("idle_threads", 0)):
        threading.Thread(target=never.wait, daemon=True).start()
    events = CONFIG.get("events", ["INVOKE", "SHUTDOWN"])
    status, headers, data = call(
        "POST",
        "/2020-01-01/extension/register",
        json.dumps({"events": events}),
        {"Lambda-Extension-Name": CONFIG.get("name", NAME)},
    )
    record("registered", status=status, body=data.decode())
    if status != 200:
        sys.exit(2)
    identifier = headers["Lambda-Extension-Identifier"]
    for probe in CONFIG.get("probes", []):
        probe_headers = {key: value.replace("{id}", identifier) for key, value in probe.get("headers", {}).items()}
        status, _, data = call(probe["method"], probe["path"], probe.get("body"), probe_headers)
        record("probe", path=probe["path"], status=status, body=data.decode())
    if "telemetry" in CONFIG:
        subscribe(identifier)
    if CONFIG.get("init_error"):
        status, _, _ = call(
            "POST",
            "/2020-01-01/extension/init/error",
            json.dumps({"errorMessage": "no config"}),
            {"Lambda-Extension-Identifier": identifier, "Lambda-Extension-Function-Error-Type": CONFIG["init_error"]},
        )
        record("init_error", status=status)
        sys.exit(1)
    if CONFIG.get("crash_on") == "init":
        sys.exit(4)
    while True:
        status, headers, data = call(
            "GET", "/2020-01-01/extension/event/next", None, {"Lambda-Extension-Identifier": identifier}
        )
        if status != 200:
            record("next_failed", status=status, body=data.decode())
            sys.exit(5)
        event = json.loads(data)
        record(
            "event",
            event=event,
            content_type=headers.get("Content-Type"),
            event_id=headers.get("Lambda-Extension-Event-Identifier"),
        )
        if event["eventType"] == "INVOKE":
            print(f"{NAME} got INVOKE {event['requestId']}", flush=True)
            if CONFIG.get("crash_on") == "invoke":
                sys.exit(3)
            if CONFIG.get("late_subscribe") and not CONFIG.get("_tried"):
                CONFIG["_tried"] = True
                body = {"schemaVersion": "2022-12-13", "types": ["platform"],
                        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/"}}
                status, _, data = call("PUT", "/2022-07-01/telemetry", json.dumps(body),
                                       {"Lambda-Extension-Identifier": identifier})
                record("late_subscribe", status=status, body=data.decode())
            time.sleep(CONFIG.get("hold_ms", 0) / 1000)
            burn(CONFIG.get("burn_ms", 0))
            record("invoke_done", requestId=event["requestId"])
            if CONFIG.get("burn_after_next_ms"):
                burn_in_background(CONFIG["burn_after_next_ms"], event["requestId"])
        else:
            alive = None
            pid_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), CONFIG.get("pid_file", ""))
            if CONFIG.get("pid_file") and os.path.exists(pid_path):
                with open(pid_path) as pid_file:
                    pid = int(pid_file.read())
                try:
                    os.kill(pid, 0)
                    alive = True
                except ProcessLookupError:
                    alive = False
            record("shutdown", reason=event["shutdownReason"], deadlineMs=event["deadlineMs"], runtime_alive=alive)
            if CONFIG.get("shutdown_print"):
                print(CONFIG["shutdown_print"], flush=True)
            time.sleep(CONFIG.get("shutdown_ms", 0) / 1000)
            record("exiting")
            sys.exit(0)


main()
