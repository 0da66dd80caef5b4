"""The supervisor of the extension's threads: restart after a failure, a bounded number of times, then give up."""

from __future__ import annotations

import logging

import pytest

from tracer.export.supervise import supervised


class Loop:
    """Fails ``failures`` times (each a fresh run of the loop), then returns."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0

    def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError(f"failure {self.runs}")


def test_a_loop_that_fails_a_few_times_is_restarted_until_it_returns(caplog: pytest.LogCaptureFixture) -> None:
    loop, gave_up = Loop(failures=3), []
    supervised("test", loop, lambda: gave_up.append(True), backoff_s=0.001)()
    assert loop.runs == 4 and gave_up == []
    failures = [record for record in caplog.records if record.getMessage() == "the test thread failed"]
    assert [str(record.exc_info[1]) for record in failures if record.exc_info] == [
        "failure 1", "failure 2", "failure 3"]  # each failure once, with its traceback


def test_past_the_restarts_it_gives_up_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="afterglow.extension")
    loop, gave_up = Loop(failures=100), []
    supervised("test", loop, lambda: gave_up.append(True), restarts=2, backoff_s=0.001)()
    assert loop.runs == 3 and gave_up == [True]
    assert [record.getMessage() for record in caplog.records if "restarting" in record.getMessage()] == [
        "restarting the test thread (1 of 2)", "restarting the test thread (2 of 2)"]


def test_a_loop_that_ran_long_before_failing_starts_its_count_afresh() -> None:
    loop, gave_up = Loop(failures=5), []
    supervised("test", loop, lambda: gave_up.append(True), restarts=1, backoff_s=0.001, healthy_s=0.0)()
    assert loop.runs == 6 and gave_up == []  # every run counts as healthy: never given up


def test_a_failure_while_stopping_is_not_restarted_nor_given_up() -> None:
    loop, gave_up = Loop(failures=1), []
    supervised("test", loop, lambda: gave_up.append(True), stopping=lambda: True)()
    assert loop.runs == 1 and gave_up == []
