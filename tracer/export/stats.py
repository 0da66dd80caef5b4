"""Counters of what the extension received, exported and dropped, and the one-line self-report."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """Thread-safe counters. Drop reasons of the function side are kept apart (prefixed ``function.``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.exported = 0
        self.synthesized = 0
        self.dropped: Counter[str] = Counter()
        self.malformed_frames = 0
        self.poisoned_connections = 0
        self.connections = 0
        self._reported_drops = 0

    def add(self, field: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, field, getattr(self, field) + count)

    def drop(self, reason: str, count: int, announce: bool = True) -> None:
        """Count ``count`` items dropped for ``reason``. ``announce=False``: a drop already explained in a log
        line (e.g. a collector without a logs endpoint) that should not repeat the self-report line every flush;
        it is still in the counts of the next self-report."""
        if count <= 0:
            return
        with self._lock:
            self.dropped[reason] += count
            if not announce:
                self._reported_drops += count

    def dropped_total(self) -> int:
        with self._lock:
            return sum(self.dropped.values())

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "received": self.received,
                "exported": self.exported,
                "synthesized": self.synthesized,
                "dropped": dict(self.dropped),
                "malformed_frames": self.malformed_frames,
                "poisoned_connections": self.poisoned_connections,
                "connections": self.connections,
            }

    def counts(self, what: str) -> str:
        """``<what> received=.. exported=.. dropped=.. (reason=n, ...)``."""
        with self._lock:
            total = sum(self.dropped.values())
            reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(self.dropped.items()))
            return f"{what} received={self.received} exported={self.exported} dropped={total}" + (
                f" ({reasons})" if reasons else "")

    def report_line(self, logs: Stats | None = None) -> str:
        """``spans received=.. exported=.. dropped=.. (reason=n, ...) malformed_frames=..``: one greppable line,
        with the log records' counts at the end when ``logs`` are exported too."""
        spans = self.counts("spans")
        with self._lock:
            line = (
                f"{spans} synthesized={self.synthesized} malformed_frames={self.malformed_frames}"
                f" poisoned_connections={self.poisoned_connections}"
            )
        return line + (f" | {logs.counts('logs')}" if logs is not None else "")

    def new_drops(self) -> bool:
        """True once per increase of the drop total, so a drop is reported when it happens, not every flush."""
        with self._lock:
            total = sum(self.dropped.values())
            if total > self._reported_drops:
                self._reported_drops = total
                return True
            return False
