"""The function's neighbours during a run, each in its own process so that their work never competes with the
harness (which relays every invocation) for the GIL.

- ``Collector``: the project's loopback OTLP receiver (``tests/helpers/otlp_receiver.py``: official protobuf
  decoding, late answers to play a slow collector) or an X-Ray daemon sink, counting distinct spans and
  duplicates (see ``benchmarks.collector_process``).
- ``MotoServer``: moto in server mode (real HTTP), with the bucket, table and queue of the aws-sdk scenario.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGION = "us-east-1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def receiver_files() -> Path:
    """Where an HTTPS receiver leaves the CA certificate a function trusts: outside /tmp, which is the
    environment's own in the sandbox."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "afterglow" / "receivers"


class Collector:
    """A collector process (``benchmarks.collector_process``): ``kind`` "otlp", "datadog" or "lumigo" (answering
    ``delay_ms`` late) or "xray". ``address`` is the endpoint URL (otlp) or ``host:port``; ``ca_file`` the
    certificate a function must trust (lumigo: HTTPS); ``snapshot()`` counts; ``function_env()`` points a
    function at it."""

    def __init__(self, kind: str, delay_ms: float = 0.0, ca_dir: Path | None = None) -> None:
        self.kind = kind
        self.delay_ms = delay_ms
        ca = ["--ca-dir", str(ca_dir)] if ca_dir is not None else []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.collector_process", kind, "--delay-ms", str(delay_ms), *ca],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT, start_new_session=True,
        )
        try:
            assert self._process.stdout is not None
            self.address, _, ca_file = self._process.stdout.readline().strip().partition(" ")
            self.ca_file = ca_file or None
            if not self.address:
                raise RuntimeError(f"the {kind} collector process did not start (status {self._process.poll()})")
        except BaseException:
            self.stop()
            raise
        self.rejected = 0

    def function_env(self) -> dict[str, str]:
        """The variables that make a function's tracer send here, the way each tracer's documentation says."""
        if self.kind == "otlp":
            return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.address}
        if self.kind == "xray":
            return {"AWS_XRAY_DAEMON_ADDRESS": self.address}
        if self.kind == "datadog":
            return {"DD_TRACE_AGENT_URL": f"http://{self.address}"}
        if self.kind == "lumigo":  # the tracer always speaks HTTPS to its edge: trust the receiver's own CA
            return {"LUMIGO_TRACER_HOST": self.address, **({"SSL_CERT_FILE": self.ca_file} if self.ca_file else {})}
        raise ValueError(f"unknown collector kind {self.kind!r}")

    def snapshot(self) -> tuple[int, int]:
        """(distinct spans, duplicate deliveries) received so far."""
        counts = self._ask("count")
        self.rejected = counts["rejected"]
        return counts["distinct"], counts["received"] - counts["distinct"]

    def stats(self, since: float | None = None) -> dict[str, Any]:
        """Counts plus ``freshness_ms`` (first arrival minus end time per distinct span: p50, p99, max, n; with
        ``since``, of the spans that ended from then on, and ``freshness_before_ms`` of the others) and
        ``log_records``; see ``benchmarks.collector_process``."""
        stats: dict[str, Any] = self._ask("stats" if since is None else f"stats {since!r}")
        self.rejected = stats["rejected"]
        return stats

    def settled_stats(self, quiet_s: float, timeout_s: float = 30.0, since: float | None = None) -> dict[str, Any]:
        """``stats()`` once nothing new has arrived for ``quiet_s`` (requests still held by a slow collector
        are recorded only when it answers), or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        last = self.stats(since)
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            current = self.stats(since)
            if (current["received"], current["log_records"]) == (last["received"], last["log_records"]):
                return current
            last = current
        return last

    def _ask(self, command: str) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.kind} collector process is gone (status {self._process.poll()})")
        return json.loads(line)

    def stop(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                assert self._process.stdin is not None
                self._process.stdin.close()  # EOF: the process stops its server and exits
            try:
                self._process.wait(5.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, 9)
                self._process.wait(5.0)
        if self._process.stdout is not None:
            self._process.stdout.close()


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


class _ExitedEarly(RuntimeError):
    pass


class MotoServer:
    """``moto_server`` on a free loopback port, in its own process group; ``stop()`` ends it."""

    def __init__(self, attempts: int = 3) -> None:
        # The port is free when probed, but another process may bind it before moto does (moto then exits at
        # once): a fresh port, a few times, rather than a failed run.
        for attempt in range(attempts):
            self.port = _free_port()
            self.endpoint = f"http://127.0.0.1:{self.port}"
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            try:
                self._wait_ready(timeout=30.0)
                return
            except _ExitedEarly:
                self.stop()
                if attempt == attempts - 1:
                    raise
            except BaseException:
                self.stop()
                raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise _ExitedEarly(f"moto_server exited with status {self._process.returncode}")
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
