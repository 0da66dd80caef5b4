"""The circuit breaker, on a clock the test moves."""

from __future__ import annotations

import pytest

from tracer.export.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_stays_open_for_the_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, base_cooldown_s=1.0, max_cooldown_s=8.0, clock=clock)
    for _ in range(2):
        breaker.failure()
        assert breaker.allow()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 0.5
    assert not breaker.allow()
    clock.now += 1.0  # past the cooldown (1 s +-20%)
    assert breaker.state is BreakerState.HALF_OPEN and breaker.allow()


def test_a_successful_probe_closes_it_a_failed_one_reopens_it_for_longer() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, base_cooldown_s=1.0, max_cooldown_s=8.0, clock=clock)
    breaker.failure()
    first_wait = breaker.wait_s()
    clock.now += 2
    assert breaker.allow()  # the probe
    breaker.failure()
    assert breaker.state is BreakerState.OPEN and breaker.wait_s() > first_wait
    clock.now += 3
    assert breaker.allow()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow() and breaker.wait_s() == 0


def test_the_cooldown_is_capped() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, base_cooldown_s=1.0, max_cooldown_s=4.0, clock=clock)
    for _ in range(10):
        breaker.failure()
        clock.now += breaker.wait_s()
        breaker.allow()
    breaker.failure()
    assert breaker.wait_s() <= 4.0 * 1.2


def test_retry_after_holds_requests_back_even_while_closed() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    breaker.hold(30)
    assert not breaker.allow() and breaker.wait_s() == pytest.approx(30)
    clock.now += 30
    assert breaker.allow()


def test_force_lets_one_probe_through_a_cooldown_at_shutdown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, clock=clock)
    breaker.failure()
    assert not breaker.allow()
    assert breaker.allow(force=True)


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold=0)
