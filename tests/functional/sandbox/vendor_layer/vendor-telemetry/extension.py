"""A Telemetry API extension written as vendors write them (after AWS's sample): it lives in
/opt/vendor-telemetry, listens on sandbox.localdomain, and appends what it receives to $VENDOR_RECORD."""

import http.client
import http.server
import json
import os
import threading

RUNTIME_API = os.environ["AWS_LAMBDA_RUNTIME_API"]
RECORD = os.environ["VENDOR_RECORD"]
NAME = "vendor-telemetry"


def call(method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(RUNTIME_API)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open(RECORD, "a") as sink:
            for item in batch:
                sink.write(json.dumps(item) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    status, headers, _ = call("POST", "/2020-01-01/extension/register", json.dumps({"events": ["INVOKE", "SHUTDOWN"]}),
                              {"Lambda-Extension-Name": NAME})
    identifier = headers["Lambda-Extension-Identifier"]
    server = http.server.ThreadingHTTPServer(("sandbox.localdomain", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    body = {"schemaVersion": "2022-12-13", "types": ["platform", "function", "extension"],
            "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
            "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{server.server_address[1]}"}}
    ours = {"Lambda-Extension-Identifier": identifier}
    status, _, answer = call("PUT", "/2022-07-01/telemetry", json.dumps(body), ours)
    print(f"{NAME} subscribed: {status} {answer.decode()}", flush=True)
    while True:
        _, _, data = call("GET", "/2020-01-01/extension/event/next", headers=ours)
        if json.loads(data)["eventType"] == "SHUTDOWN":
            return


main()
