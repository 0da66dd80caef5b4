"""The configurations compared side by side: one function, the same work, different tracing around it.

afterglow's flush policies each get a configuration, ``afterglow-flush-<policy>``: the policies are read from
the one place that documents them (``AFTERGLOW_FLUSH`` in ``tracer/config.py``), so a policy added there is
measured too. ``Config.phases`` says which measurements a configuration joins: ``cost`` (what the owner
pays, at steady load) and ``latency`` (what the caller waits, scenario by scenario).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

SLOW_COLLECTOR_MS = 50.0
COST = "cost"
LATENCY = "latency"
PEERS = "peers"  # the field's tracers, measured beside afterglow in a part of their own (benchmarks.peers)
BOTH = frozenset({COST, LATENCY})
# Values for the placeholders in AFTERGLOW_FLUSH's documented forms (`periodic,<ms>` -> `periodic,1000`)
POLICY_PLACEHOLDERS = {"ms": "1000"}
_POLICY_FORM = re.compile(r"[a-z][a-z0-9_-]*(,[a-z0-9_<>.-]+)*")


@dataclass(frozen=True)
class Config:
    name: str
    summary: str
    handler: str
    layer: str | None = None  # "afterglow", "otel-standard", "xray-sdk", "noop-extension" or "floor-extension"
    env: dict[str, str] = field(default_factory=dict)
    # How spans leave, so what receives them: "otlp" (OTEL_EXPORTER_OTLP_ENDPOINT), "xray" (the UDP daemon address:
    # X-Ray segments or OTLP over UDP), "lumigo" (Lumigo's edge, HTTPS), "datadog" (the Datadog agent's trace
    # intake, msgpack), "stdout" (OTLP lines in the function's log), None
    collector: str | None = "otlp"
    collector_delay_ms: float = 0.0
    child_spans: bool = True  # the handler's child spans are real spans (bare makes none)
    invocation_span: bool = True  # makes one span per invocation besides the handler's own
    traces_aws_calls: bool = False  # makes one span per AWS SDK call
    optional: bool = False  # left out, with a note, when its packages do not install
    phases: frozenset[str] = BOTH  # "cost" and/or "latency"
    flush_policy: str | None = None  # AFTERGLOW_FLUSH, for afterglow's flush-policy configurations
    runtime: str | None = None  # Lambda's runtime setting ("python3.12"); None: the sandbox's own interpreter
    baseline: str = "bare"  # the untraced configuration its "added" figures are taken against (same runtime)
    waits_for_collector: bool = True  # False: nothing in the environment waits for the receiver (UDP, stdout)
    note: str = ""  # how it is set up and what stands in for what, for the results

    @property
    def exports(self) -> bool:
        """Sends spans to a collector (so the collector's delay matters to it)."""
        return self.collector is not None


def documented_flush_policies() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(policies, forms that could not be filled in): every form ``AFTERGLOW_FLUSH``'s description in
    ``tracer/config.py`` names (the backticked values), placeholders filled from ``POLICY_PLACEHOLDERS``."""
    from tracer import config

    described = next(var for var in config.VARS if var.name == config.AFTERGLOW_FLUSH)
    policies: list[str] = []
    unfilled: list[str] = []
    for form in re.findall(r"`([^`]+)`", described.doc):
        if not _POLICY_FORM.fullmatch(form):
            continue
        value = re.sub(r"<([^>]+)>", lambda match: POLICY_PLACEHOLDERS.get(match.group(1), match.group(0)), form)
        (unfilled if "<" in value else policies).append(value)
    return tuple(dict.fromkeys(policies)), tuple(unfilled)


def default_flush_policy() -> str:
    from tracer import config

    default = next(var.default for var in config.VARS if var.name == config.AFTERGLOW_FLUSH)
    return default.split(" (")[0]  # "background (end when printing waterfalls)": the exporting default


def flush_policy_configs(policies: Iterable[str]) -> tuple[Config, ...]:
    """One afterglow configuration per flush policy other than the default (that one is ``afterglow``)."""
    default = default_flush_policy()
    return tuple(
        Config(f"afterglow-flush-{re.sub(r'[^a-z0-9]+', '-', policy.lower()).strip('-')}",
               f"afterglow with AFTERGLOW_FLUSH={policy}", "app_afterglow.handler", layer="afterglow",
               env={"AFTERGLOW_FLUSH": policy}, flush_policy=policy, traces_aws_calls=True)
        for policy in dict.fromkeys(policies) if not _same_policy(policy, default)
    )


def _same_policy(one: str, other: str) -> bool:
    """``background,1000`` is ``background``: one configuration, not two."""
    from tracer.export.flush import FlushPolicy

    try:
        return FlushPolicy.parse(one) == FlushPolicy.parse(other)
    except ValueError:  # a policy this extension does not know yet: measured as its own configuration
        return one == other


_BEFORE_POLICIES: tuple[Config, ...] = (
    Config("bare", "no tracing at all (the OpenTelemetry API is not even imported)", "bare.handler",
           collector=None, child_spans=False, invocation_span=False),
    Config("bare-extension", "no tracing, plus a do-nothing external extension (registers for INVOKE, calls next): "
           "what any extension's presence costs in this sandbox", "bare.handler", layer="noop-extension",
           collector=None, child_spans=False, invocation_span=False, phases=frozenset({LATENCY})),
    Config("floor-extension", "no tracing, plus the leanest extension that watches every invocation (registers for "
           "INVOKE, subscribes to the Telemetry API with 1 s batches, one persistent connection, a minimal "
           "listener): the floor any tracing extension starts from", "bare.handler", layer="floor-extension",
           collector=None, child_spans=False, invocation_span=False, phases=frozenset({COST})),
    # The floor extension's parts on their own, against the design afterglow's default export follows (never woken
    # per invocation): what the Telemetry API's deliveries cost, and what an extension that only waits costs.
    Config("floor-extension-shutdown", "the floor extension registered for SHUTDOWN alone (never woken per "
           "invocation), still subscribed to the Telemetry API", "bare.handler", layer="floor-extension",
           env={"FLOOR_EVENTS": "SHUTDOWN"}, collector=None, child_spans=False, invocation_span=False,
           phases=frozenset({COST})),
    Config("floor-extension-waiting", "the floor extension registered for SHUTDOWN alone, without the Telemetry "
           "API: an extension that only waits for the end", "bare.handler", layer="floor-extension",
           env={"FLOOR_EVENTS": "SHUTDOWN", "FLOOR_TELEMETRY": "off"}, collector=None, child_spans=False,
           invocation_span=False, phases=frozenset({COST})),
    # The decorator turns the library patches on, botocore's among them: a span per AWS SDK call.
    Config("afterglow", "handler decorated with trace_handler; the afterglow layer", "app_afterglow.handler",
           layer="afterglow", traces_aws_calls=True),
    Config("afterglow-wrapper", "undecorated handler, AWS_LAMBDA_EXEC_WRAPPER=/opt/afterglow-instrument",
           "app.handler", layer="afterglow", env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/afterglow-instrument"},
           traces_aws_calls=True),
    Config("otel-standard", "opentelemetry-instrument + aws-lambda instrumentation, BatchSpanProcessor, "
           "OTLP/HTTP, force_flush per invocation", "app.handler", layer="otel-standard",
           env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument"}),
    # the cost measurement runs every exporting configuration against each collector delay instead
    Config("afterglow-slow-collector", f"afterglow with a collector answering after {SLOW_COLLECTOR_MS:.0f} ms",
           "app_afterglow.handler", layer="afterglow", collector_delay_ms=SLOW_COLLECTOR_MS,
           phases=frozenset({LATENCY}), traces_aws_calls=True),
    Config("otel-standard-slow-collector", f"otel-standard with a collector answering after "
           f"{SLOW_COLLECTOR_MS:.0f} ms", "app.handler", layer="otel-standard",
           env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument"}, collector_delay_ms=SLOW_COLLECTOR_MS,
           phases=frozenset({LATENCY})),
)
_AFTER_POLICIES: tuple[Config, ...] = (
    Config("xray-sdk", "aws-xray-sdk: a subsegment per span, UDP to a loopback daemon address; botocore patched",
           "app_xray.handler", layer="xray-sdk", collector="xray", invocation_span=False, traces_aws_calls=True,
           optional=True, phases=frozenset({LATENCY})),
)


def all_configs(policies: Iterable[str] | None = None) -> tuple[Config, ...]:
    """Every configuration, with one per flush policy (default: the documented ones)."""
    chosen = documented_flush_policies()[0] if policies is None else tuple(policies)
    return (*_BEFORE_POLICIES, *flush_policy_configs(chosen), *_AFTER_POLICIES)


CONFIGS: tuple[Config, ...] = all_configs()
BY_NAME = {config.name: config for config in CONFIGS}
BASELINE = "bare"
EXTENSION_BASELINE = "bare-extension"
FLOOR = "floor-extension"
SHUTDOWN_FLOOR = "floor-extension-shutdown"  # the floor of an extension never woken per invocation
REFERENCE = "otel-standard"  # what ratios are taken against
