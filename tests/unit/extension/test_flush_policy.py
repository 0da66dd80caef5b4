"""AFTERGLOW_FLUSH parsing."""

from __future__ import annotations

import pytest

from extension.flush import FlushPolicy, read_flush_policy


def test_end_is_the_default_and_always_due() -> None:
    policy = FlushPolicy.parse("end")
    assert not policy.periodic and policy.due(last_flush=10.0, now=10.0)


def test_periodic_takes_an_interval_in_ms() -> None:
    policy = FlushPolicy.parse(" Periodic, 1500 ")
    assert policy.periodic and policy.interval_s == 1.5
    assert not policy.due(last_flush=10.0, now=11.0)
    assert policy.due(last_flush=10.0, now=11.5)


@pytest.mark.parametrize("text", ["periodic", "periodic,soon", "periodic,-1", "sometimes", "end,5"])
def test_bad_values_raise(text: str) -> None:
    with pytest.raises(ValueError):
        FlushPolicy.parse(text)


def test_a_bad_environment_value_warns_and_falls_back_to_end(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AFTERGLOW_FLUSH", "every-now-and-then")
    assert read_flush_policy() == FlushPolicy()
    assert "AFTERGLOW_FLUSH" in caplog.text


def test_the_environment_value_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERGLOW_FLUSH", "periodic,60000")
    assert read_flush_policy() == FlushPolicy(True, 60.0)
