"""The bounded buffer of finished spans waiting for export.

Spans stay here until the collector accepted them: a flush *leases* a chunk from the front, then commits it
(accepted: gone for good, never sent again), discards it (rejected for good) or releases it (try later, back at
the front in its original order). At most ``max_spans`` and about ``max_bytes`` (the sum of ``Batch.sizes``, an
estimate of the encoded size) are held, leased ones included; past either, the oldest unleased spans are dropped
and counted as ``buffer_full``. A lease in flight (one chunk at most) is not counted against newer spans while it
is out: if it comes back unsent, the bounds apply again, oldest first. The byte bound is what keeps the extension's
memory in check when spans are large (the extension shares the function's memory); the count bound, when they are
many and small.
"""

from __future__ import annotations

import threading
from collections import deque

from tracer.export.stats import Stats

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Resource = dict[str, Any]


class Batch:
    """Consecutive spans of one invocation (``key``, the request id) from one function process (``resource``).

    ``spans`` holds wire span records in the span buffer and ``LogEntry`` objects in the log buffer."""

    __slots__ = ("key", "resource", "sizes", "spans")

    def __init__(self, resource: Resource, key: str | None, spans: list[Any], sizes: list[int]) -> None:
        self.resource = resource
        self.key = key
        self.spans = spans
        self.sizes = sizes  # approximate encoded bytes per span, to cap request sizes


class Lease:
    __slots__ = ("batches", "nbytes", "spans")

    def __init__(self, batches: list[Batch], spans: int, nbytes: int) -> None:
        self.batches = batches
        self.spans = spans
        self.nbytes = nbytes


DEFAULT_MAX_BYTES = 4 * 1024 * 1024  # AFTERGLOW_MAX_BUFFERED_BYTES
DEFAULT_MAX_LOG_BYTES = 2 * 1024 * 1024  # AFTERGLOW_MAX_BUFFERED_LOG_BYTES


class SpanBuffer:
    def __init__(self, max_spans: int, stats: Stats, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_spans < 1:
            raise ValueError("max_spans must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.max_spans = max_spans
        self.max_bytes = max_bytes
        self.high_water = max_spans  # ``on_high_water`` is called once this many spans are held
        self.high_water_bytes = max_bytes  # or about this many bytes
        self.on_high_water: Callable[[], None] | None = None
        self._stats = stats
        self._lock = threading.Lock()
        self._batches: deque[Batch] = deque()
        self._held = 0
        self._leased = 0
        self._held_bytes = 0
        self._leased_bytes = 0

    @property
    def held(self) -> int:
        """Spans held, including those leased to an export in flight."""
        return self._held

    @property
    def held_bytes(self) -> int:
        """About the encoded bytes held, including those leased to an export in flight."""
        return self._held_bytes

    @property
    def pending(self) -> int:
        """Spans waiting that no export has leased."""
        with self._lock:
            return self._held - self._leased

    def add(self, resource: Resource, key: str | None, spans: list[Any], sizes: list[int]) -> int:
        """Append spans; returns how many old spans were dropped to make room."""
        if not spans:
            return 0
        with self._lock:
            last = self._batches[-1] if self._batches else None
            if last is not None and last.key == key and last.resource is resource:
                last.spans.extend(spans)
                last.sizes.extend(sizes)
            else:
                self._batches.append(Batch(resource, key, list(spans), list(sizes)))
            self._held += len(spans)
            self._held_bytes += sum(sizes)
            dropped = self._enforce_bound()
            full = (self._held - self._leased >= self.high_water
                    or self._held_bytes - self._leased_bytes >= self.high_water_bytes)
        if full and self.on_high_water is not None:
            self.on_high_water()
        return dropped

    def _enforce_bound(self) -> int:
        excess = self._held - self._leased - self.max_spans
        excess_bytes = self._held_bytes - self._leased_bytes - self.max_bytes
        dropped = dropped_bytes = 0
        while (excess > 0 or excess_bytes > 0) and self._batches:
            oldest = self._batches[0]
            sizes = oldest.sizes
            cut = min(max(excess, 0), len(sizes))
            size = sum(sizes[:cut])
            while cut < len(sizes) and size < excess_bytes:  # then span by span until the bytes fit too
                size += sizes[cut]
                cut += 1
            del oldest.spans[:cut]
            del sizes[:cut]
            if not oldest.spans:
                self._batches.popleft()
            excess -= cut
            excess_bytes -= size
            dropped += cut
            dropped_bytes += size
        self._held -= dropped
        self._held_bytes -= dropped_bytes
        if dropped:
            self._stats.drop("buffer_full", dropped)
        return dropped

    def take(self, max_spans: int, max_bytes: int) -> Lease | None:
        """Lease the oldest spans, at most ``max_spans`` and about ``max_bytes`` (at least one span)."""
        with self._lock:
            taken: list[Batch] = []
            count = nbytes = 0
            while self._batches and count < max_spans:
                batch = self._batches[0]
                limit = min(len(batch.spans), max_spans - count)
                n = size = 0
                while n < limit:
                    span_size = batch.sizes[n]
                    if count + n > 0 and nbytes + size + span_size > max_bytes:
                        break
                    size += span_size
                    n += 1
                if n == 0:
                    break
                whole = n == len(batch.spans)
                if whole:
                    taken.append(self._batches.popleft())
                else:
                    taken.append(Batch(batch.resource, batch.key, batch.spans[:n], batch.sizes[:n]))
                    del batch.spans[:n]
                    del batch.sizes[:n]
                count += n
                nbytes += size
                if not whole:
                    break  # stopped inside a batch: the count or size cap is reached
            if not taken:
                return None
            self._leased += count
            self._leased_bytes += nbytes
            return Lease(taken, count, nbytes)

    def commit(self, lease: Lease) -> None:
        """The collector accepted the lease: forget it for good."""
        with self._lock:
            self._forget(lease)
        self._stats.add("exported", lease.spans)

    def discard(self, lease: Lease, reason: str, announce: bool = True) -> None:
        """The lease can never be delivered (e.g. the collector rejected it): drop and count it."""
        with self._lock:
            self._forget(lease)
        self._stats.drop(reason, lease.spans, announce)

    def release(self, lease: Lease) -> int:
        """Put the lease back at the front, in order, for a later flush; returns spans dropped to stay bounded."""
        with self._lock:
            self._leased -= lease.spans
            self._leased_bytes -= lease.nbytes
            for batch in reversed(lease.batches):
                self._batches.appendleft(batch)
            return self._enforce_bound()

    def clear(self, reason: str, announce: bool = True) -> int:
        """Drop everything not leased (at exit: what could not be sent), counted under ``reason``."""
        with self._lock:
            count = sum(len(batch.spans) for batch in self._batches)
            self._held_bytes -= sum(sum(batch.sizes) for batch in self._batches)
            self._batches.clear()
            self._held -= count
        self._stats.drop(reason, count, announce)
        return count

    def _forget(self, lease: Lease) -> None:
        self._leased -= lease.spans
        self._held -= lease.spans
        self._leased_bytes -= lease.nbytes
        self._held_bytes -= lease.nbytes
