"""The Telemetry API (2022-07-01) and the legacy Logs API (2020-08-15): subscriptions and delivery.

Every platform event and log line goes through ``TelemetryHub.emit``. Each subscription buffers what its
``types`` ask for and POSTs JSON arrays (or writes NDJSON over TCP) when ``maxItems`` or ``maxBytes`` is
reached or ``timeoutMs`` has passed since the oldest buffered record. Events since the last
``platform.initStart`` are kept and replayed to each new subscriber, so an extension that subscribes
during init still sees the start of init. While the environment is frozen nothing is delivered (the
subscriber could not take it); what is due goes out at the thaw, and a delivery in flight at the freeze
waits for its answer without the frozen time counting against its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sandbox.errors import ApiError

TELEMETRY_SCHEMAS = frozenset({"2022-07-01", "2022-12-13", "2025-01-29"})
LOGS_SCHEMAS = frozenset({"2020-08-15", "2021-03-18"})
TYPES = frozenset({"platform", "function", "extension"})
LOCAL_HOSTS = {"sandbox.localdomain": "127.0.0.1", "sandbox": "127.0.0.1", "localhost": "127.0.0.1",
               "127.0.0.1": "127.0.0.1", "0.0.0.0": "127.0.0.1"}
_LIMITS = {  # name: (minimum, maximum, default)
    "maxItems": (1000, 10000, 10000),
    "maxBytes": (262144, 1048576, 262144),
    "timeoutMs": (25, 30000, 1000),
}
_REPLAY_LIMIT = 10000
_RETRY_DELAYS = (0.1, 0.3, 1.0)
_POST_TIMEOUT_S = 5.0
_SETTLE_AT = 1000  # at most this many offered events wait to be encoded: a function printing without end
T = TypeVar("T")


def iso_time(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Destination:
    protocol: str  # "HTTP" | "TCP"
    host: str  # where we connect (sandbox.localdomain mapped to loopback)
    port: int
    url: str  # for HTTP: the URL we POST to


def _category(event_type: str) -> str:
    return "platform" if event_type.startswith("platform.") else event_type


def _legacy_records(event_type: str, record: Any, schema: str) -> list[tuple[str, Any]]:
    """What a Logs API (2020-08-15) subscriber receives for one Telemetry API event."""
    if event_type in ("function", "extension"):
        return [(event_type, record)]
    if event_type == "platform.start":
        return [("platform.start", {"requestId": record["requestId"], "version": record.get("version", "$LATEST")})]
    if event_type == "platform.runtimeDone" and schema == "2021-03-18":
        return [("platform.runtimeDone", {"requestId": record["requestId"], "status": record["status"]})]
    if event_type == "platform.report":
        return [
            ("platform.end", {"requestId": record["requestId"]}),
            ("platform.report", {"requestId": record["requestId"], "metrics": record["metrics"]}),
        ]
    if event_type in ("platform.extension", "platform.logsSubscription", "platform.logsDropped"):
        return [(event_type, record)]
    return []


class Subscription:
    """One extension's subscription and its delivery task."""

    def __init__(self, extension: str, types: frozenset[str], max_items: int, max_bytes: int, timeout_ms: int,
                 destination: Destination, schema: str, legacy: bool, awake: Awake | None = None) -> None:
        self.extension = extension
        self._awake = awake or Awake()
        self.types = types
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.timeout_s = timeout_ms / 1000
        self.destination = destination
        self.schema = schema
        self.legacy = legacy
        self.delivered_batches = 0
        self.dropped_records = 0
        self.dropped_bytes = 0
        self._queue: deque[tuple[bytes, float]] = deque()  # encoded, and when offered (monotonic)
        self._raw: list[tuple[str, Any, float, float]] = []  # offered, not encoded yet (``settle``)
        self._queued_bytes = 0
        self._limit_bytes = max(4 * max_bytes, 4 * 1024 * 1024)
        self._signal = asyncio.Event()
        self._idle = asyncio.Event()  # nothing buffered and nothing in flight
        self._idle.set()
        self._flush = False
        self._closing = False
        self._session: Any = None  # aiohttp.ClientSession, made on first delivery
        self._tcp: asyncio.StreamWriter | None = None
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"telemetry-{extension}")

    def offer(self, event_type: str, record: Any, epoch: float) -> None:
        """Buffer one event. Cheap: it is on the Runtime API's path (this loop serves both), which Lambda's platform
        never holds up for telemetry; the event is encoded by ``settle``, after the invoke phase, or at delivery."""
        if _category(event_type) not in self.types:
            return
        first = not self._queue and not self._raw
        self._raw.append((event_type, record, epoch, time.monotonic()))
        self._idle.clear()
        if len(self._raw) >= _SETTLE_AT:  # a function printing without end: bounded as it goes
            self.settle()
        if first or len(self._queue) + len(self._raw) >= self.max_items:  # else the first one's timeout is running
            self._signal.set()

    def settle(self) -> None:
        """Encode what was offered: after the invoke phase (nothing waits on this loop then), at delivery, or once
        ``_SETTLE_AT`` events wait."""
        raw, self._raw = self._raw, []
        for event_type, record, epoch, offered in raw:
            items = _legacy_records(event_type, record, self.schema) if self.legacy else [(event_type, record)]
            for kind, body in items:
                encoded = json.dumps({"time": iso_time(epoch), "type": kind, "record": body},
                                     separators=(",", ":")).encode()
                self._queue.append((encoded, offered))
                self._queued_bytes += len(encoded)
        while self._queued_bytes > self._limit_bytes and len(self._queue) > 1:  # a stuck subscriber
            dropped, _ = self._queue.popleft()
            self._queued_bytes -= len(dropped)
            self.dropped_records += 1
            self.dropped_bytes += len(dropped)
        if raw and self._ready():
            self._signal.set()

    def flush(self) -> None:
        """Deliver what is buffered now, without waiting for the buffering limits."""
        self._flush = True
        self._signal.set()

    async def drain(self, timeout: float) -> None:
        """Flush, and wait (at most ``timeout``) until everything buffered has been delivered or dropped."""
        self.flush()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self, timeout: float) -> None:
        """Deliver what is buffered (within ``timeout``), then stop."""
        self._closing = True
        self._signal.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        if self._session is not None:
            await self._session.close()
        if self._tcp is not None:
            self._tcp.close()

    def _ready(self) -> bool:
        return (self._flush or self._closing or len(self._queue) + len(self._raw) >= self.max_items
                or self._queued_bytes >= self.max_bytes)

    async def _run(self) -> None:
        while True:
            if not self._queue and not self._raw:
                self._flush = False
                self._idle.set()
                if self._closing:
                    return
                self._signal.clear()
                await self._signal.wait()
                continue
            if not self._ready():
                offered = self._queue[0][1] if self._queue else self._raw[0][3]
                remaining = offered + self.timeout_s - time.monotonic()
                if remaining > 0:
                    self._signal.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._signal.wait(), remaining)
                    continue
            if not self._awake.is_set() and not self._closing:
                await self._awake.wait()
                continue
            await self._send(self._take_batch())

    def _take_batch(self) -> list[bytes]:
        self.settle()
        batch: list[bytes] = []
        size = 2
        if self.dropped_records:  # tell the subscriber what it lost, first
            record = {"droppedRecords": self.dropped_records, "droppedBytes": self.dropped_bytes,
                      "reason": "Some logs were dropped because the subscriber could not keep up"}
            batch.append(json.dumps({"time": iso_time(time.time()), "type": "platform.logsDropped",
                                     "record": record}, separators=(",", ":")).encode())
            size += len(batch[0]) + 1
            self.dropped_records = self.dropped_bytes = 0
        while self._queue and len(batch) < self.max_items:
            encoded = self._queue[0][0]
            if batch and size + len(encoded) + 1 > self.max_bytes:
                break
            self._queue.popleft()
            self._queued_bytes -= len(encoded)
            batch.append(encoded)
            size += len(encoded) + 1
        return batch

    async def _send(self, batch: list[bytes]) -> None:
        for delay in (*_RETRY_DELAYS, None):
            try:
                if await self._deliver(batch):
                    self.delivered_batches += 1
                    return
            except Exception:  # connection refused, reset, timeout: the subscriber is not listening yet
                pass
            if delay is None or self._closing:
                break
            await asyncio.sleep(delay)
        self.dropped_records += len(batch)
        self.dropped_bytes += sum(len(item) for item in batch)

    async def _deliver(self, batch: list[bytes]) -> bool:
        destination = self.destination
        if destination.protocol == "TCP":
            if self._tcp is None or self._tcp.is_closing():
                _, self._tcp = await asyncio.open_connection(destination.host, destination.port)
            self._tcp.write(b"".join(item + b"\n" for item in batch))
            await self._tcp.drain()
            return True
        import aiohttp

        if self._session is None:
            # no total timeout of aiohttp's: a frozen subscriber's time must not count (``within_thawed_time``)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=_POST_TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout)
        body = b"[" + b",".join(batch) + b"]"

        async def post() -> int:
            async with self._session.post(destination.url, data=body,
                                          headers={"Content-Type": "application/json"}) as response:
                await response.read()
                status: int = response.status
                return status

        status = await self._awake.within_thawed_time(post(), _POST_TIMEOUT_S)
        return 200 <= status < 300


class Awake:
    """Whether the environment is thawed, and a timeout that only counts thawed time."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._event.set()
        self.freezes = 0

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def pause(self) -> None:
        self.freezes += 1
        self._event.clear()

    def resume(self) -> None:
        self._event.set()

    async def within_thawed_time(self, work: Coroutine[Any, Any, T], timeout: float) -> T:
        """``work``'s result; TimeoutError once it took ``timeout`` seconds with the environment thawed all along."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                freezes = self.freezes
                done, _ = await asyncio.wait({task}, timeout=timeout)
                if done:
                    return task.result()
                if self.is_set() and self.freezes == freezes:
                    raise asyncio.TimeoutError
                await self.wait()  # frozen meanwhile: the subscriber could not answer; start counting again
        finally:
            if not task.done():
                task.cancel()


class TelemetryHub:
    """Fans platform events and log lines out to the current execution environment's subscribers."""

    def __init__(self) -> None:
        self.awake = Awake()
        self._subscriptions: dict[str, Subscription] = {}  # by extension name
        self._replay: deque[tuple[str, Any, float]] | None = deque(maxlen=_REPLAY_LIMIT)
        self.listeners: list[Callable[[str, Any, float], None]] = []  # in-process observers (tests, CLI)

    def emit(self, event_type: str, record: Any, epoch: float | None = None) -> None:
        epoch = time.time() if epoch is None else epoch
        if event_type == "platform.initStart":
            self._replay = deque(maxlen=_REPLAY_LIMIT)
        if self._replay is not None:
            self._replay.append((event_type, record, epoch))
        for subscription in self._subscriptions.values():
            subscription.offer(event_type, record, epoch)
        for listener in self.listeners:
            listener(event_type, record, epoch)

    def settle(self) -> None:
        """The invoke phase is over: encode what it offered, off the Runtime API's path."""
        for subscription in self._subscriptions.values():
            subscription.settle()

    def pause(self) -> None:
        """The environment froze: hold deliveries until ``resume``."""
        self.awake.pause()

    def resume(self) -> None:
        self.awake.resume()

    def stop_replay(self) -> None:
        """Init is over: no new subscribers, so nothing to keep for them."""
        self._replay = None

    def subscribe(self, extension: str, body: bytes, legacy: bool) -> Subscription:
        """Validate a PUT /telemetry (or /logs) body and start delivering (raises ApiError 400)."""
        options = _parse_subscription(body, legacy)
        previous = self._subscriptions.pop(extension, None)
        if previous is not None:
            if previous.legacy != legacy:
                self._subscriptions[extension] = previous
                raise ApiError(400, "ValidationError",
                               "an extension may subscribe to the Telemetry API or the Logs API, not both")
            asyncio.get_running_loop().create_task(previous.close(0.5))
        subscription = Subscription(extension, legacy=legacy, awake=self.awake, **options)
        for event_type, record, epoch in self._replay or ():
            subscription.offer(event_type, record, epoch)
        self._subscriptions[extension] = subscription
        return subscription

    async def drain_all(self, timeout: float) -> None:
        """Deliver what is buffered now, waiting at most ``timeout`` (before SHUTDOWN goes out)."""
        subscriptions = list(self._subscriptions.values())
        if subscriptions:
            await asyncio.gather(*(subscription.drain(timeout) for subscription in subscriptions))

    async def close_all(self, timeout: float) -> None:
        subscriptions = list(self._subscriptions.values())
        self._subscriptions.clear()
        if subscriptions:
            await asyncio.gather(*(subscription.close(timeout) for subscription in subscriptions))

    @property
    def subscriptions(self) -> dict[str, Subscription]:
        return dict(self._subscriptions)


def _parse_subscription(body: bytes, legacy: bool) -> dict[str, Any]:
    api = "Logs" if legacy else "Telemetry"
    try:
        request = json.loads(body or b"null")
    except ValueError:
        raise ApiError(400, "ValidationError", f"{api} subscription body is not valid JSON") from None
    if not isinstance(request, dict):
        raise ApiError(400, "ValidationError", f"{api} subscription body must be a JSON object")
    schemas = LOGS_SCHEMAS if legacy else TELEMETRY_SCHEMAS
    schema = request.get("schemaVersion")
    if schema not in schemas:
        raise ApiError(400, "ValidationError",
                       f"schemaVersion must be one of {sorted(schemas)}, got {schema!r}")
    types = request.get("types")
    if not isinstance(types, list) or not types or not all(isinstance(kind, str) and kind in TYPES
                                                           for kind in types):
        raise ApiError(400, "ValidationError", f"types must be a non-empty list drawn from {sorted(TYPES)}")
    buffering = request.get("buffering") or {}
    if not isinstance(buffering, dict):
        raise ApiError(400, "ValidationError", "buffering must be an object")
    limits: dict[str, int] = {}
    for name, (low, high, default) in _LIMITS.items():
        value = buffering.get(name, default)
        if type(value) is not int or not low <= value <= high:
            raise ApiError(400, "ValidationError", f"buffering.{name} must be an integer from {low} to {high}")
        limits[name] = value
    return {
        "types": frozenset(types),
        "max_items": limits["maxItems"],
        "max_bytes": limits["maxBytes"],
        "timeout_ms": limits["timeoutMs"],
        "destination": _parse_destination(request.get("destination")),
        "schema": schema,
    }


def _parse_destination(destination: object) -> Destination:
    if not isinstance(destination, dict):
        raise ApiError(400, "ValidationError", "destination must be an object with protocol and URI")
    protocol = destination.get("protocol")
    if protocol == "TCP":
        port = destination.get("port")
        if type(port) is not int or not 0 < port < 65536:
            raise ApiError(400, "ValidationError", "a TCP destination needs an integer port")
        return Destination("TCP", "127.0.0.1", port, "")
    if protocol != "HTTP":
        raise ApiError(400, "ValidationError", f"destination.protocol must be HTTP or TCP, got {protocol!r}")
    uri = destination.get("URI")
    if not isinstance(uri, str):
        raise ApiError(400, "ValidationError", "an HTTP destination needs a URI")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise ApiError(400, "ValidationError", f"destination URI {uri!r} is not a valid URL") from None
    if parts.scheme != "http":
        raise ApiError(400, "ValidationError", f"destination URI {uri!r} must use http:// (no HTTPS inside Lambda)")
    host = (parts.hostname or "").lower()
    if host not in LOCAL_HOSTS or port is None:
        raise ApiError(400, "ValidationError",
                       f"destination URI {uri!r} must be http://sandbox.localdomain:PORT/...: Lambda delivers "
                       "telemetry only inside the execution environment")
    loopback = LOCAL_HOSTS[host]
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Destination("HTTP", loopback, port, f"http://{loopback}:{port}{path}")
