"""The scenarios: what the handler does per invocation, described by the event it receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.services import AwsTarget


@dataclass(frozen=True)
class Scenario:
    name: str
    spans: int = 0  # child spans the handler makes
    aws: bool = False  # three AWS SDK calls against moto in server mode
    weight: float = 1.0  # relative cost, to size the number of invocations within a time budget

    def event(self, aws: AwsTarget | None) -> dict[str, Any]:
        event: dict[str, Any] = {"scenario": self.name, "spans": self.spans}
        if self.aws:
            if aws is None:
                raise ValueError(f"scenario {self.name} needs the moto server")
            event["aws"] = aws.as_event()
        return event


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("0-spans"),
    Scenario("10-spans", spans=10),
    Scenario("100-spans", spans=100, weight=2.0),
    Scenario("1000-spans", spans=1000, weight=10.0),
    Scenario("aws-sdk", aws=True, weight=4.0),
)

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
COLD_START_EVENT = {"scenario": "cold-start", "spans": 0}
FIRST_WARM_EVENT = {"scenario": "first-warm", "spans": 10, "log": True}  # the cost measurement's invocation
