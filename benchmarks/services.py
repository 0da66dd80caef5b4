"""The function's neighbours during a run: the collectors that count what arrives, and moto for AWS calls.

- ``SpanCounter`` wraps the project's loopback OTLP receiver (``tests/helpers/otlp_receiver.py``, which
  decodes with the official protobuf messages and can answer late to play a slow collector). It keeps only
  span ids, so a run of millions of spans stays small, and tells duplicates from distinct spans.
- ``XRaySink`` is a UDP listener that counts the segment documents an X-Ray SDK sends to its daemon.
- ``MotoServer`` runs moto in server mode in its own process (real HTTP; its work does not compete with
  the harness for the GIL) and creates the bucket, table and queue the aws-sdk scenario uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"


class SpanCounter:
    """A running OTLP/HTTP receiver on loopback, answering ``delay_ms`` late, with span ids harvested."""

    kind = "otlp"

    def __init__(self, delay_ms: float = 0.0) -> None:
        from tests.helpers.otlp_receiver import OtlpReceiver

        self.delay_ms = delay_ms
        self._receiver = OtlpReceiver(delay_s=delay_ms / 1000.0).start()
        self._seen: set[str] = set()
        self._received = 0
        self._requests = 0
        self._rejected = 0

    @property
    def endpoint(self) -> str:
        return self._receiver.endpoint

    def harvest(self) -> None:
        """Move what arrived into the counts. Swapping the lists keeps a concurrent append: it lands either in
        the list taken here or in the fresh one, which the next harvest takes."""
        spans, self._receiver.spans = self._receiver.spans, []
        requests, self._receiver.requests = self._receiver.requests, []
        for span in spans:
            self._seen.add(span.span_id)
        self._received += len(spans)
        self._requests += len(requests)
        self._rejected += sum(1 for request in requests if not request.accepted)

    def snapshot(self) -> tuple[int, int]:
        """(distinct spans, duplicate deliveries) so far."""
        self.harvest()
        return len(self._seen), self._received - len(self._seen)

    @property
    def rejected_requests(self) -> int:
        return self._rejected

    def stop(self) -> None:
        self._receiver.stop()


class XRaySink:
    """Counts the segment documents (and the subsegments nested in them) that arrive on a UDP port."""

    kind = "xray"

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._received = 0
        self._undecodable = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="xray-sink", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                datagram = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self._count(datagram)

    def _count(self, datagram: bytes) -> None:
        # The daemon protocol: a JSON header line, a newline, then one segment document.
        _, _, body = datagram.partition(b"\n")
        try:
            document = json.loads(body)
        except ValueError:
            with self._lock:
                self._undecodable += 1
            return
        ids = list(_segment_ids(document))
        with self._lock:
            self._received += len(ids)
            self._seen.update(ids)

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return len(self._seen), self._received - len(self._seen)

    def harvest(self) -> None:
        return None

    @property
    def rejected_requests(self) -> int:
        return self._undecodable

    def stop(self) -> None:
        self._stopping.set()
        self._socket.close()
        self._thread.join(2.0)


def _segment_ids(document: dict[str, Any]) -> Any:
    if "id" in document:
        yield document["id"]
    for child in document.get("subsegments") or ():
        yield from _segment_ids(child)


@dataclass(frozen=True)
class AwsTarget:
    """What the aws-sdk scenario's handler calls (sent in the event)."""

    endpoint: str
    region: str
    bucket: str
    table: str
    queue_url: str

    def as_event(self) -> dict[str, str]:
        return {"endpoint": self.endpoint, "region": self.region, "bucket": self.bucket, "table": self.table,
                "queue_url": self.queue_url}


class MotoServer:
    """``moto_server`` on a free loopback port, in its own process group; ``stop()`` ends it."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            self._wait_ready(timeout=30.0)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited with status {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1.0):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"moto_server did not answer on {self.endpoint} within {timeout:.0f} s")

    def create_resources(self) -> AwsTarget:
        import boto3

        session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench",
                                        region_name=REGION)
        bucket, table, queue = "afterglow-bench", "afterglow-bench", "afterglow-bench"
        session.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=bucket)
        dynamodb = session.client("dynamodb", endpoint_url=self.endpoint)
        dynamodb.create_table(
            TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName=table, Item={"id": {"S": "bench"}, "value": {"S": "afterglow"}})
        queue_url = session.client("sqs", endpoint_url=self.endpoint).create_queue(QueueName=queue)["QueueUrl"]
        return AwsTarget(self.endpoint, REGION, bucket, table, queue_url)

    def stop(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, 15)
            try:
                self._process.wait(5.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, 9)
                self._process.wait(5.0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
