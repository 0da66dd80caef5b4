"""A circuit breaker for the collector: stop trying on every invocation while it is known to be down.

Closed: requests go out. After ``threshold`` consecutive failed attempts it opens for a cool-down (doubling up to
``max_cooldown_s``), during which flushes keep spans buffered without touching the network. When the cool-down
ends one probe goes out (half-open): success closes the breaker, failure opens it again for longer. A collector's
``Retry-After`` holds requests back the same way.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, threshold: int = 3, base_cooldown_s: float = 1.0, max_cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1 or base_cooldown_s <= 0 or max_cooldown_s < base_cooldown_s:
            raise ValueError("threshold >= 1 and 0 < base_cooldown_s <= max_cooldown_s")
        self.threshold = threshold
        self.base_cooldown_s = base_cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened = 0  # consecutive openings, for the growing cool-down
        self._state = BreakerState.CLOSED
        self._not_before = 0.0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() >= self._not_before:
            return BreakerState.HALF_OPEN
        return self._state

    def wait_s(self) -> float:
        """How long requests are still held back (0 when one may go now)."""
        return max(0.0, self._not_before - self._clock())

    def allow(self, force: bool = False) -> bool:
        """May a request go now? ``force`` (at SHUTDOWN) allows one probe even during a cool-down."""
        if force or self._clock() >= self._not_before:
            if self._state is BreakerState.OPEN:
                self._state = BreakerState.HALF_OPEN
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._opened = 0
        self._state = BreakerState.CLOSED
        self._not_before = 0.0

    def failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
            import random  # only ever after failures: not worth its start-up cost

            cooldown = min(self.max_cooldown_s, self.base_cooldown_s * 2**self._opened)
            self._opened += 1
            self._state = BreakerState.OPEN
            self._not_before = max(self._not_before, self._clock() + cooldown * random.uniform(0.8, 1.2))

    def hold(self, seconds: float) -> None:
        """The collector asked us to wait (``Retry-After``): send nothing before then."""
        self._not_before = max(self._not_before, self._clock() + max(0.0, seconds))
