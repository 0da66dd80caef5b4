"""Keep a thread's loop alive: a failure is logged with its traceback and the loop restarts, a few times.

Each long-lived thread of the extension (receiver, flushers, background exporter, telemetry listener) runs its
loop through ``supervised``. An exception escaping the loop (a bug, a selector error) must not leave a silent
dead pipe: it is logged once with its traceback and the loop runs again on the same thread after a short backoff.
A loop that keeps failing (``restarts`` times, each within ``healthy_s`` of its start) is given up: ``give_up``
turns that part of the extension into a clear pass-through (one log line saying what no longer works, drops
counted from then on).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tracer.export.diagnostics import log

RESTARTS = 3
BACKOFF_S = 0.1  # doubled at each restart: 0.1, 0.2, 0.4 s
HEALTHY_S = 60.0  # a loop that ran this long before failing starts its restart count afresh


def supervised(name: str, loop: Callable[[], None], give_up: Callable[[], None],
               stopping: Callable[[], bool] = lambda: False, restarts: int = RESTARTS,
               backoff_s: float = BACKOFF_S, healthy_s: float = HEALTHY_S) -> Callable[[], None]:
    """A thread target running ``loop`` until it returns, restarting it after a failure; ``give_up`` runs once when
    it failed ``restarts`` times in a row (or it fails while ``stopping()``, when there is nothing to restart for)."""

    def run() -> None:
        failures = 0
        pause = threading.Event()  # never set: a wait that a stop does not need to cut short (it is short)
        while True:
            started = time.monotonic()
            try:
                loop()
                return
            except Exception:
                log.exception("the %s thread failed", name)
            if stopping():
                return
            failures = 1 if time.monotonic() - started >= healthy_s else failures + 1
            if failures > restarts:
                try:
                    give_up()
                except Exception:
                    log.exception("giving up the %s thread failed", name)
                return
            log.warning("restarting the %s thread (%d of %d)", name, failures, restarts)
            pause.wait(backoff_s * 2 ** (failures - 1))

    return run
