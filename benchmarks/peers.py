"""The field's tracers beside afterglow: what each costs the function's owner, measured the same way in one run.

Each peer is installed from PyPI into a layer of its own (``benchmarks.layers.peer_layer``: pinned by
``benchmarks/peer-constraints.txt``, installed by its runtime's interpreter, cached), set up the way its own
documentation tells a user, and sends its spans to a loopback receiver speaking its protocol
(``benchmarks.peer_receivers``). The work is the benchmark function's (10 child spans and one log line per
invocation), written with each peer's own API (``benchmarks/function/app_<peer>.py``).

Measured with the cost measurement's workers (``benchmarks.steady``), every configuration at once, each in its
own process: ``bare`` (untraced), ``afterglow``, an untraced baseline for each other runtime a peer needs, and the
peers. Phase 1: the receiver answers at once; phase 2: it answers ``far_delay_ms`` late, for the configurations
whose environment waits for its answer (the others send over UDP or print: nothing in the function waits, so
their billed time cannot depend on the receiver). Every "added" figure is against the untraced baseline on the
same runtime in the same phase.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.configs import BASELINE, BY_NAME, COST, PEERS, Config

Log = Callable[[str], None]
SUBJECT = "afterglow"
FAR_DELAY_MS = 200.0
ADOT_INSTRUMENTED = "botocore"  # ADOT's Lambda layer disables every instrumentation but botocore's by default
_ONLY_PEERS = frozenset({PEERS})


@dataclass(frozen=True)
class Peer:
    config: Config
    requirements: tuple[str, ...]  # distributions to install (versions from peer-constraints.txt)
    extra: tuple[tuple[str, str], ...] = ()  # (name at the layer's root, file or folder in benchmarks/layer_files)


def _peer(name: str, summary: str, handler: str, requirements: tuple[str, ...], layer: str, collector: str,
          note: str, env: dict[str, str] | None = None, runtime: str | None = None, waits: bool = True,
          extra: tuple[tuple[str, str], ...] = ()) -> Peer:
    config = Config(name, summary, handler, layer=layer, env=env or {}, collector=collector, phases=_ONLY_PEERS,
                    runtime=runtime, baseline=baseline_name(runtime), waits_for_collector=waits, note=note)
    return Peer(config, requirements, extra)


def baseline_name(runtime: str | None) -> str:
    return BASELINE if runtime is None else f"{BASELINE}-{runtime}"


_LUMIGO_NOTE = ("decorator `@lumigo_tracer(token=...)` (its README); child spans are manual traces "
                "(`start_manual_trace`/`stop_manual_trace`), attributes execution tags; the function span goes to "
                "the edge over HTTPS (`LUMIGO_TRACER_HOST` = the loopback receiver, whose own CA the function "
                "trusts through `SSL_CERT_FILE`) before the handler returns, plus a start span as it begins")
_ADOT_ENV = {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/adot-instrument"}
_ADOT_EXTRA = (("adot-instrument", "adot-instrument"), ("adot_wrapper.py", "adot_wrapper.py"))

PEER_LIST: tuple[Peer, ...] = (
    _peer("lumigo", "Lumigo's tracer (lumigo-tracer)", "app_lumigo.handler", ("lumigo-tracer",), "peer-lumigo",
          "lumigo", _LUMIGO_NOTE, env={"LUMIGO_TRACER_TOKEN": "t_0123456789abcdef0123"}),
    _peer("lumigo-python3.10", "Lumigo's tracer on the python3.10 runtime (its README names Python 3.10 and below)",
          "app_lumigo.handler", ("lumigo-tracer",), "peer-lumigo-python3.10", "lumigo", _LUMIGO_NOTE,
          env={"LUMIGO_TRACER_TOKEN": "t_0123456789abcdef0123"}, runtime="python3.10"),
    _peer("otel-lite", "lambda-otel-lite (python3.12 runtime: it needs Python 3.12 or later)",
          "app_otel_lite.handler", ("lambda-otel-lite",), "peer-otel-lite", "stdout",
          "`init_telemetry()` + `create_traced_handler` (its README), default `sync` processor mode: one OTLP line "
          "(gzip, base64) printed at the end of each invocation for a log subscription to forward; spans counted "
          "in the function's log", runtime="python3.12", waits=False),
    _peer("adot", "AWS Distro for OpenTelemetry (aws-opentelemetry-distro) as ADOT's Lambda layer runs it",
          "app.handler", ("aws-opentelemetry-distro",), "peer-adot", "xray",
          "`AWS_LAMBDA_EXEC_WRAPPER=/opt/adot-instrument` (our copy of what the layer's `otel-instrument` does: "
          "its defaults, Application Signals on, `opentelemetry-instrument`, the aws-lambda instrumentation "
          "around the handler); full SDK, force-flush per invocation, OTLP over UDP to the X-Ray daemon address "
          "(`AWS_XRAY_DAEMON_ADDRESS`), as the layer exports on Lambda", env=_ADOT_ENV, waits=False,
          extra=_ADOT_EXTRA),
    _peer("adot-lite", "ADOT in its Lambda lite mode (AWS_LAMBDA_LITE_MODE=true: the distro's lite SDK)",
          "app.handler", ("aws-opentelemetry-distro",), "peer-adot", "xray",
          "as `adot`, with `AWS_LAMBDA_LITE_MODE=true`: no `opentelemetry-instrument`, the distro's own small SDK "
          "(`opentelemetry_lite_sdk.configure_lite_mode`), spans batched per invocation, OTLP over UDP",
          env={**_ADOT_ENV, "AWS_LAMBDA_LITE_MODE": "true"}, waits=False, extra=_ADOT_EXTRA),
    _peer("datadog", "Datadog (datadog-lambda + ddtrace), handler datadog_lambda.handler.handler",
          "datadog_lambda.handler.handler", ("datadog-lambda", "ddtrace"), "peer-datadog", "datadog",
          "handler `datadog_lambda.handler.handler` with `DD_LAMBDA_HANDLER` (their docs), `DD_TRACE_ENABLED=true`, "
          "`DD_FLUSH_TO_LOG=false`; the Datadog Lambda extension (a binary) is stood in for: a do-nothing "
          "extension at `/opt/extensions/datadog-agent` (so the libraries take their extension path: traces "
          "written synchronously at the end of each invocation, metrics to DogStatsD) and the loopback receiver "
          "as its trace intake (`DD_TRACE_AGENT_URL`, msgpack decoded). What the real agent costs after that is "
          "not measured",
          env={"DD_LAMBDA_HANDLER": "app_datadog.handler", "DD_TRACE_ENABLED": "true", "DD_FLUSH_TO_LOG": "false",
               "DD_SERVICE": "bench-datadog"},
          waits=False, extra=(("extensions", "datadog-agent-standin"),)),
    _peer("powertools", "Powertools for AWS Lambda's Tracer over the X-Ray SDK", "app_powertools.handler",
          ("aws-lambda-powertools", "aws-xray-sdk"), "peer-powertools", "xray",
          "`Tracer()` + `@tracer.capture_lambda_handler` (its docs), a subsegment per span "
          "(`tracer.provider.in_subsegment`); each subsegment goes over UDP to the X-Ray daemon address as it ends",
          env={"POWERTOOLS_SERVICE_NAME": "bench-powertools"}, waits=False),
)
PEERS_BY_NAME = {peer.config.name: peer for peer in PEER_LIST}


def baseline_configs(peers: Sequence[Peer]) -> list[Config]:
    """The untraced function on each other runtime the peers use."""
    runtimes = dict.fromkeys(peer.config.runtime for peer in peers if peer.config.runtime)
    return [Config(baseline_name(runtime), f"no tracing, on the {runtime} runtime", "bare.handler", collector=None,
                   child_spans=False, invocation_span=False, phases=_ONLY_PEERS, runtime=runtime)
            for runtime in runtimes]


@dataclass(frozen=True)
class PeersPlan:
    rate_per_s: float
    warmup: int
    near: int  # measured invocations per configuration, receiver answering at once
    far: int  # the same with the receiver answering far_delay_ms late (only where something waits for it)
    far_delay_ms: float = FAR_DELAY_MS
    cold_starts: int = 3  # rounds of one cold start per configuration, one configuration at a time

    def describe(self) -> str:
        return (f"{self.rate_per_s:g} invocations/s, 10 child spans and one log line each, {self.warmup} warm-up; "
                f"{self.near:,} measured with the receiver answering at once, {self.far:,} with it answering "
                f"{self.far_delay_ms:g} ms late; {self.cold_starts} rounds of cold starts, one at a time")


FULL_PEERS = PeersPlan(rate_per_s=20.0, warmup=10, near=300, far=100, cold_starts=3)
QUICK_PEERS = PeersPlan(rate_per_s=20.0, warmup=3, near=40, far=20, cold_starts=1)


@dataclass
class PeersResults:
    plan: PeersPlan
    rows: list[dict[str, Any]] = field(default_factory=list)  # owner_costs.steady_rows, both phases
    table: list[dict[str, Any]] = field(default_factory=list)  # one summary per configuration
    skipped: dict[str, str] = field(default_factory=dict)  # peer -> why it could not run
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    init_ms: dict[str, list[float]] = field(default_factory=dict)  # configuration -> its cold starts' Init Duration
    cold_errors: dict[str, list[str]] = field(default_factory=dict)


def build_layers(peers: Sequence[Peer], workdir: Path, log: Log) -> tuple[dict[str, Path], dict[str, dict[str, str]],
                                                                          dict[str, str]]:
    """Each peer's layer (once per layer name), linked for the sandbox; (paths, versions, why-not per peer)."""
    from benchmarks import layers as layers_module

    paths: dict[str, Path] = {}
    versions: dict[str, dict[str, str]] = {}
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for peer in peers:
        name = peer.config.layer
        assert name is not None
        if name not in paths and name not in failed:
            try:
                layer = layers_module.peer_layer(name, peer.requirements, peer.config.runtime, log)
            except layers_module.LayerError as error:
                failed[name] = str(error)
                log(f"layer {name}: {error}")
            else:
                extra = tuple((entry, layers_module.LAYER_FILES / source) for entry, source in peer.extra)
                paths[name] = replace(layer, extra=extra).linked(workdir)
                versions[name] = layer.versions
        if name in failed:
            skipped[peer.config.name] = f"its layer could not be installed: {failed[name]}"
    return paths, versions, skipped


def runtime_missing(configs: Sequence[Config]) -> dict[str, str]:
    """Configurations whose runtime has no interpreter here, and why."""
    from sandbox import runtimes

    missing: dict[str, str] = {}
    for config in configs:
        if config.runtime is not None and runtimes.find_interpreter(config.runtime) is None:
            missing[config.name] = (f"no {config.runtime} interpreter on this machine (installed: "
                                    f"{', '.join(runtimes.installed())})")
    return missing


def run_peers(peers: Sequence[Peer], layers: dict[str, Path], plan: PeersPlan, scratch: Path,
              log: Log = print) -> PeersResults:
    """Both phases for ``afterglow``, the baselines and ``peers``; ``layers`` must hold afterglow's."""
    from benchmarks import owner_costs
    from benchmarks.steady import CostPlan, CostResults, SteadyPhase, run_cost

    results = PeersResults(plan)
    results.skipped.update(runtime_missing([peer.config for peer in peers]))
    runnable = [peer for peer in peers if peer.config.name not in results.skipped]
    peer_paths, results.versions, not_installed = build_layers(runnable, scratch, log)
    results.skipped.update(not_installed)
    runnable = [peer for peer in runnable if peer.config.name not in results.skipped]
    configs = [replace(config, phases=frozenset({COST, PEERS})) for config in
               (BY_NAME[BASELINE], BY_NAME[SUBJECT], *baseline_configs(runnable), *(peer.config for peer in runnable))]
    all_layers = {**layers, **peer_paths}
    near = SteadyPhase(0.0, plan.near, max_seconds=1.5 * plan.near / plan.rate_per_s + 10)
    far = SteadyPhase(plan.far_delay_ms, plan.far, max_seconds=1.5 * plan.far / plan.rate_per_s + 10)
    near_plan = CostPlan(rate_per_s=plan.rate_per_s, warmup=plan.warmup, spans=10, steady=(near,), scaling=())
    log(f"peers, receiver answering at once: {len(configs)} configurations at once ({plan.describe()})")
    merged = CostResults(plan=replace(near_plan, steady=(near, far)))
    merged.runs += run_cost(configs, all_layers, near_plan, scratch, log).runs
    waiting = [config for config in configs if config.exports and config.waits_for_collector]
    if waiting and plan.far:
        far_configs = [*[config for config in configs if config.name in {c.baseline for c in waiting}], *waiting]
        log(f"peers, receiver answering {plan.far_delay_ms:g} ms late: {', '.join(c.name for c in waiting)}")
        merged.runs += run_cost(far_configs, all_layers, replace(near_plan, steady=(far,)), scratch, log).runs
    for run in merged.runs:
        for notice in run.worker.get("notices") or ():
            if notice not in results.notices:
                results.notices.append(notice)
    if plan.cold_starts:
        _cold_starts(configs, all_layers, plan.cold_starts, results, log)
    results.rows = owner_costs.steady_rows(merged, configs)
    results.table = summary_table(results.rows, [config for config in configs if config.collector is not None],
                                  plan, results.skipped, results.init_ms)
    return results


def _cold_starts(configs: Sequence[Config], layers: dict[str, Path], rounds: int, results: PeersResults,
                 log: Log) -> None:
    """Dedicated cold starts (``benchmarks.runner.Harness``): each configuration's in turn, nothing else running
    in the harness meanwhile (the load phases start every sandbox at once, which inflates init)."""
    from benchmarks.runner import Harness

    harness = Harness(configs, layers, None, log=log)
    try:
        harness.cold_starts(rounds)
    finally:
        harness.close()
    for name, cold in harness.results.cold.items():
        results.init_ms[name] = list(cold.init_ms)
        if cold.error_examples:
            results.cold_errors[name] = list(cold.error_examples)


def _row(rows: Sequence[dict[str, Any]], name: str, delay: float) -> dict[str, Any] | None:
    return next((row for row in rows if row["config"] == name and row.get("collector_delay_ms") == delay), None)


def summary_table(rows: Sequence[dict[str, Any]], configs: Sequence[Config], plan: PeersPlan,
                  skipped: dict[str, str], init_ms: dict[str, list[float]] | None = None) -> list[dict[str, Any]]:
    """One line per traced configuration: what it costs beyond untraced on its runtime, near and far."""
    table: list[dict[str, Any]] = []
    for config in configs:
        near, far = _row(rows, config.name, 0.0), _row(rows, config.name, plan.far_delay_ms)
        base = _row(rows, config.baseline, 0.0)
        entry: dict[str, Any] = {"config": config.name, "runtime": config.runtime or "default",
                                 "baseline": config.baseline, "waits_for_collector": config.waits_for_collector,
                                 "failure": None}
        if near is None or near.get("failure"):
            entry["failure"] = (near or {}).get("failure") or "did not run"
            table.append(entry)
            continue
        inits, base_inits = (init_ms or {}).get(config.name), (init_ms or {}).get(config.baseline)
        if inits and base_inits:  # the dedicated cold starts, one at a time
            init: float | None = statistics.median(inits)
            base_init = statistics.median(base_inits)
        else:  # the one cold start of the load phase, every sandbox starting at once
            init = near.get("init_ms")
            base_init = base.get("init_ms") if base and not base.get("failure") else None
        entry.update({
            "n": near["n"], "n_far": far["n"] if far and not far.get("failure") else None,
            "added_cpu_ms": near["added_cpu_env_mean_ms"], "added_cpu_runtime_ms": near["added_cpu_runtime_mean_ms"],
            "cpu_extension_ms": near["cpu_extension_mean_ms"],
            "added_billed_near_ms": near["added_billed_mean_ms"],
            "added_billed_far_ms": far["added_billed_mean_ms"] if far and not far.get("failure") else None,
            "added_latency_p50_ms": near["added_latency_p50_ms"],
            "added_latency_far_p50_ms": far["added_latency_p50_ms"] if far and not far.get("failure") else None,
            "added_init_ms": None if init is None or base_init is None else round(init - base_init, 1),
            "cold_starts": len((init_ms or {}).get(config.name) or ()),
            "spans_created": near["spans_created"], "spans_received": near["spans_received"],
            "lost": near["lost"], "duplicates": near["duplicates"], "unexpected": near.get("unexpected"),
            "spans_far": (far["spans_created"], far["spans_received"], far["lost"]) if far and not far.get("failure")
            else None,
            "runtime_rss_mb": near.get("runtime_rss_mb"), "errors": near.get("errors", 0),
        })
        table.append(entry)
    table += [{"config": name, "failure": why} for name, why in skipped.items()]
    return table


# --- report ----------------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 2, sign: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def markdown(results: PeersResults, chart: str | None, heading: str = "##") -> list[str]:
    """The peers section: the table, how each peer was set up, what could not run and why."""
    plan = results.plan
    lines = [f"{heading} The field's tracers beside afterglow", ""]
    lines.append(f"Every configuration at once, each in its own process and sandbox: {plan.describe()}. Fewer "
                 f"invocations than afterglow's main rows, so these figures are noisier; \"beyond untraced\" is "
                 f"against the untraced function on the same runtime in the same phase. Environment CPU is every "
                 f"process's (runtime and extensions); billed is Lambda's rule (until the runtime and every "
                 f"extension are back at `next`); caller latency is the invoke's round trip; cold start is the "
                 f"median REPORT Init Duration of {plan.cold_starts} cold starts per configuration, one at a time.")
    lines.append("")
    if chart:
        lines += [f"![peers]({chart})", ""]
    lines.append("| configuration | runtime | n (near / far) | env CPU beyond untraced, ms (runtime / other "
                 "processes) | billed beyond untraced, receiver near | far (200 ms) | added caller latency p50, ms "
                 "| cold start beyond untraced, ms | spans made / delivered / lost (near) |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for entry in results.table:
        name = entry["config"]
        if entry.get("failure"):
            lines.append(f"| `{name}` | {entry.get('runtime', '-')} | could not run: {entry['failure']} "
                         f"| | | | | | |")
            continue
        runtime_part = _num(entry["added_cpu_runtime_ms"])
        other = _num(entry["cpu_extension_ms"], sign=False) if entry["cpu_extension_ms"] is not None else "0"
        far = (_num(entry["added_billed_far_ms"]) if entry["waits_for_collector"]
               else "= near: nothing waits for the receiver")
        n_far = entry["n_far"] if entry["n_far"] is not None else "-"
        spans = f"{entry['spans_created']:,} / {entry['spans_received']:,} / {entry['lost']:,}"
        if entry.get("unexpected"):
            spans += f" (+{entry['unexpected']:,} of its own)"
        lines.append(f"| `{name}` | {entry['runtime']} | {entry['n']} / {n_far} | {_num(entry['added_cpu_ms'])} "
                     f"({runtime_part} / {other}) | {_num(entry['added_billed_near_ms'])} | {far} | "
                     f"{_num(entry['added_latency_p50_ms'])} | {_num(entry['added_init_ms'], 1)} | {spans} |")
    lines += ["", "How each was set up (as its documentation tells a user) and where its spans went:", ""]
    lines.append(f"- `{SUBJECT}`: {BY_NAME[SUBJECT].summary}; OTLP/HTTP from its extension to the loopback "
                 f"OTLP receiver after the response.")
    for peer in PEER_LIST:
        if any(entry["config"] == peer.config.name for entry in results.table):
            versions = {_normal(name): version
                        for name, version in results.versions.get(peer.config.layer or "", {}).items()}
            pinned = ", ".join(f"{name} {versions[_normal(name)]}" for name in peer.requirements
                               if _normal(name) in versions)
            lines.append(f"- `{peer.config.name}` ({pinned or 'not installed'}): {peer.config.note}.")
    if results.cold_errors:
        lines += ["", "Cold starts that failed (their configuration's cold start is then the load phase's one):"]
        lines += [f"- `{name}`: {'; '.join(errors[:2])}" for name, errors in results.cold_errors.items()]
    if results.notices:
        lines += ["", "Notices: " + "; ".join(results.notices)]
    return lines


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def chart(results: PeersResults, path: Path, title: str) -> None:
    """Two panels: environment CPU beyond untraced (runtime, then other processes hatched) and billed beyond
    untraced with the receiver near and far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [entry for entry in results.table if not entry.get("failure")]
    names = [entry["config"] for entry in shown]
    colours = {name: ("#1f77b4" if name == SUBJECT else plt.get_cmap("tab10")(index % 10 + 1))
               for index, name in enumerate(names)}
    figure, (cpu_axes, billed_axes) = plt.subplots(1, 2, figsize=(14, 0.5 * len(names) + 2.5), dpi=110)
    positions = list(range(len(shown)))
    runtime = [max(entry["added_cpu_runtime_ms"] or 0.0, 0.0) for entry in shown]
    other = [entry["cpu_extension_ms"] or 0.0 for entry in shown]
    cpu_axes.barh(positions, runtime, color=[colours[name] for name in names], alpha=0.6)
    cpu_axes.barh(positions, other, left=runtime, color=[colours[name] for name in names], hatch="//",
                  edgecolor="white")
    for position, entry in enumerate(shown):
        value = entry["added_cpu_ms"]
        cpu_axes.text(runtime[position] + other[position], position, f" {value:+.2f}" if value is not None else "",
                      va="center", fontsize=8)
    cpu_axes.set_yticks(positions, names, fontsize=8)
    cpu_axes.invert_yaxis()
    cpu_axes.set_xlabel("ms of CPU per invocation beyond untraced (mean; hatched: extensions)")
    cpu_axes.set_title("environment CPU, receiver answering at once", fontsize=9)
    cpu_axes.grid(axis="x", alpha=0.3)
    floor = 0.01
    height = 0.4
    near = [max(entry["added_billed_near_ms"] or 0.0, floor) for entry in shown]
    far = [max(entry["added_billed_far_ms"] if entry["added_billed_far_ms"] is not None
               else (entry["added_billed_near_ms"] or 0.0), floor) for entry in shown]
    billed_axes.barh([p - height / 2 for p in positions], near, height=height, color=[colours[n] for n in names],
                     alpha=0.6, label="receiver at once")
    billed_axes.barh([p + height / 2 for p in positions], far, height=height, color=[colours[n] for n in names],
                     hatch="..", edgecolor="white", label=f"receiver {results.plan.far_delay_ms:g} ms late")
    for position, (low, high) in enumerate(zip(near, far, strict=True)):
        billed_axes.text(low, position - height / 2, f" {low:.2f}", va="center", fontsize=7)
        billed_axes.text(high, position + height / 2, f" {high:.2f}", va="center", fontsize=7)
    billed_axes.set_xscale("log")
    billed_axes.set_yticks(positions, names, fontsize=8)
    billed_axes.invert_yaxis()
    billed_axes.set_xlabel("billed ms per invocation beyond untraced (mean, log; UDP/stdout peers: same both)")
    billed_axes.set_title("billed duration", fontsize=9)
    billed_axes.legend(fontsize=7, loc="lower right")
    billed_axes.grid(axis="x", which="both", alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def document(results: PeersResults) -> dict[str, Any]:
    return {"plan": asdict(results.plan), "table": results.table, "rows": results.rows, "skipped": results.skipped,
            "versions": results.versions, "notices": results.notices, "init_ms": results.init_ms,
            "cold_errors": results.cold_errors}


# --- the function's environment ------------------------------------------------------------------------------


def adot_disabled_instrumentations(layer: Path) -> str:
    """ADOT's layer instruments only botocore by default; here the benchmark's own environment is visible to the
    function too, so every instrumentor from either place but botocore's is disabled."""
    return _adot_disabled(str(layer / "python"))


@cache
def _adot_disabled(site: str) -> str:
    names = {entry.name for distribution in metadata.distributions(path=[site]) for entry in distribution.entry_points
             if entry.group == "opentelemetry_instrumentor"}
    names |= {entry.name for entry in metadata.entry_points(group="opentelemetry_instrumentor")}
    return ",".join(sorted(names - {ADOT_INSTRUMENTED}))

