"""The benchmark's configurations: afterglow's flush policies come from their one description in tracer/config.py."""

from __future__ import annotations

import pytest

from benchmarks.configs import (
    BY_NAME,
    COST,
    FLOOR,
    SHUTDOWN_FLOOR,
    all_configs,
    default_flush_policy,
    documented_flush_policies,
    flush_policy_configs,
)
from tracer import config
from tracer.export.flush import FlushPolicy


def test_every_documented_policy_is_one_the_extension_accepts() -> None:
    policies, unfilled = documented_flush_policies()
    assert default_flush_policy() in policies
    assert len(policies) >= 2 and unfilled == ()
    for policy in policies:
        FlushPolicy.parse(policy)  # raises ValueError for what the extension would refuse


def test_a_policy_documented_later_gets_its_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    described = next(var for var in config.VARS if var.name == config.AFTERGLOW_FLUSH)
    monkeypatch.setattr(described, "doc", described.doc + " `adaptive,<ms>`: sooner when busy; `PLAIN_VAR` is not one.")
    policies, _ = documented_flush_policies()
    assert "adaptive,1000" in policies and "PLAIN_VAR" not in policies
    names = [item.name for item in all_configs(policies)]
    assert "afterglow-flush-adaptive-1000" in names


def test_the_default_policy_is_afterglow_itself() -> None:
    generated = flush_policy_configs([default_flush_policy(), "periodic,1000", "periodic,1000"])
    assert [(item.name, item.env) for item in generated] == [
        ("afterglow-flush-periodic-1000", {"AFTERGLOW_FLUSH": "periodic,1000"})]
    assert COST in generated[0].phases and generated[0].layer == "afterglow"


def test_the_floor_extension_runs_in_the_cost_measurement_untraced() -> None:
    floor = BY_NAME[FLOOR]
    assert floor.phases == frozenset({COST}) and floor.layer == "floor-extension" and not floor.exports
    assert floor.handler == BY_NAME["bare"].handler


def test_the_floor_extensions_parts_run_beside_it() -> None:
    """Never woken per invocation, with and without the Telemetry API: what each part of a watching extension costs."""
    never_woken, waiting = BY_NAME[SHUTDOWN_FLOOR], BY_NAME["floor-extension-waiting"]
    assert never_woken.env == {"FLOOR_EVENTS": "SHUTDOWN"}
    assert waiting.env == {"FLOOR_EVENTS": "SHUTDOWN", "FLOOR_TELEMETRY": "off"}
    for part in (never_woken, waiting):
        assert part.layer == BY_NAME[FLOOR].layer and part.phases == frozenset({COST}) and not part.exports
        assert part.handler == BY_NAME["bare"].handler
