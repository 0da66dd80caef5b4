"""The in-process fallback: with no extension listening, export at the end of each invocation.

The frames are the same wire bytes the socket would carry; ``tracer.export.inprocess.InProcessExporter``
assembles and exports them through the pipeline the extension runs (OTLP when configured, else the printed
waterfall). ``tracer.export`` is imported only here, only in fallback mode: the handler then pays for the export,
which is why the hand-off warns once when it falls back.

Fork-safe: a forked child starts with nothing written and fresh locks (a parent thread may have held one at the
fork), so it never exports the parent's frames again and never waits on a lock nobody will release.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from tracer._safe import swallowed, warn_once

_live: weakref.WeakSet[InProcessFallback] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for fallback in list(_live):
        fallback.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


class InProcessFallback:
    """Collects frames (from any thread) and exports them when the invocation ends."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._lock = threading.Lock()  # the buffer: writers are spans ending in any thread
        self._export_lock = threading.Lock()  # one export at a time; writers never wait for it
        self._exporter: Any = None
        self._unavailable = False
        self.lost_bytes = 0  # frames thrown away because no exporter could be loaded
        _live.add(self)

    def after_fork_in_child(self) -> None:
        """The parent's frames stay the parent's; its locks and exporter (whose threads did not survive) too."""
        self._pending = bytearray()
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._exporter = None

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._unavailable:
                self.lost_bytes += len(data)
                return
            self._pending += data

    def flush(self, timeout_s: float) -> bool:
        """Export what has been written. False when there is no exporter to export with."""
        with self._export_lock:
            with self._lock:
                data = bytes(self._pending)
                self._pending.clear()
            if not data:
                return True
            exporter = self._exporter if self._exporter is not None else self._load()
            if exporter is None:
                with self._lock:
                    self.lost_bytes += len(data)
                return False
            try:
                exporter.feed(data)
                exporter.flush(timeout_s)
            except Exception as error:
                swallowed("exporting spans in-process", error)
            return True

    def _load(self) -> Any:
        try:
            from tracer.export.inprocess import InProcessExporter  # only ever in fallback mode: the handler pays

            self._exporter = InProcessExporter()
        except ImportError as error:
            self._unavailable = True
            warn_once(
                "fallback_exporter",
                "afterglow: no in-process exporter available (%s); spans of this process are not exported",
                error,
            )
            return None
        except Exception as error:
            self._unavailable = True
            swallowed("starting the in-process exporter", error)
            return None
        return self._exporter

    def close(self, timeout_s: float = 1.0) -> None:
        self.flush(timeout_s)
        exporter, self._exporter = self._exporter, None
        if exporter is not None:
            try:
                exporter.close()
            except Exception as error:
                swallowed("closing the in-process exporter", error)
