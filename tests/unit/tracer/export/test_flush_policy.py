"""AFTERGLOW_FLUSH parsing."""

from __future__ import annotations

import pytest

from tracer.export.flush import BACKGROUND, END, PERIODIC, FlushPolicy, read_flush_policy


def test_end_is_always_due() -> None:
    policy = FlushPolicy.parse("end")
    assert policy.mode == END and not policy.periodic and not policy.background
    assert policy.due(last_flush=10.0, now=10.0)


def test_periodic_takes_an_interval_in_ms() -> None:
    policy = FlushPolicy.parse(" Periodic, 1500 ")
    assert policy.periodic and policy.interval_s == 1.5
    assert not policy.due(last_flush=10.0, now=11.0)
    assert policy.due(last_flush=10.0, now=11.5)


def test_background_exports_every_second_unless_told_otherwise() -> None:
    assert FlushPolicy.parse("background") == FlushPolicy(BACKGROUND, 1.0)
    policy = FlushPolicy.parse("background,250")
    assert policy.background and policy.interval_s == 0.25


@pytest.mark.parametrize("text", ["periodic", "periodic,soon", "periodic,-1", "sometimes", "end,5", "background,x"])
def test_bad_values_raise(text: str) -> None:
    with pytest.raises(ValueError):
        FlushPolicy.parse(text)


def test_the_default_is_background_when_exporting_and_end_when_printing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFTERGLOW_FLUSH", raising=False)
    monkeypatch.delenv("OTEL_BSP_SCHEDULE_DELAY", raising=False)
    assert read_flush_policy() == FlushPolicy(BACKGROUND, 1.0)
    assert read_flush_policy(printing=True) == FlushPolicy(END)


def test_a_bad_environment_value_warns_and_falls_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AFTERGLOW_FLUSH", "every-now-and-then")
    monkeypatch.delenv("OTEL_BSP_SCHEDULE_DELAY", raising=False)
    assert read_flush_policy() == FlushPolicy(BACKGROUND, 1.0)
    assert "AFTERGLOW_FLUSH" in caplog.text


def test_the_environment_value_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERGLOW_FLUSH", "periodic,60000")
    assert read_flush_policy() == FlushPolicy(PERIODIC, 60.0)


def test_otel_bsp_schedule_delay_sets_the_background_interval_and_an_explicit_one_wins(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AFTERGLOW_FLUSH", raising=False)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "2000")
    assert read_flush_policy() == FlushPolicy(BACKGROUND, 2.0)
    monkeypatch.setenv("AFTERGLOW_FLUSH", "background,750")
    assert read_flush_policy() == FlushPolicy(BACKGROUND, 0.75)
    monkeypatch.setenv("AFTERGLOW_FLUSH", "background")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "soon")
    assert read_flush_policy() == FlushPolicy(BACKGROUND, 1.0)
    assert "OTEL_BSP_SCHEDULE_DELAY" in caplog.text
