"""``python -m benchmarks``: what the function's owner pays, then what the caller waits, every configuration side
by side in one run.

The cost measurement (``benchmarks.steady``) runs first and leads the results; the latency scenarios
(``benchmarks.runner``) follow, then the field's tracers beside afterglow (``benchmarks.peers``: ``peers.md``,
``peers.png``, ``peers.json``, and a section of ``results.md``; ``--only peers`` runs that part alone).
Writes ``results.md``, ``owner_cost.png``, ``added_latency.png`` and
``results.json`` to the output directory (``benchmarks/results/`` for a full run, ``benchmarks/results/quick/``
with ``--quick``, ``.../cpu-limit/`` with ``--cpu-limit``), and the JSON document to ``--json PATH`` as well
when given.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from benchmarks import configs as configs_module
from benchmarks import scenarios as scenarios_module
from benchmarks.configs import BASELINE, COST, LATENCY, Config
from benchmarks.owner_costs import SUBJECT
from benchmarks.runner import FULL, QUICK, Plan
from benchmarks.scenarios import Scenario
from benchmarks.steady import FULL_COST, QUICK_COST, CostPlan, ScalingPhase, SteadyPhase

RESULTS = Path(__file__).resolve().parent / "results"
SLOW_PHASE_SHARE = 0.3  # --cost-invocations N: the slow-collector phases measure this share of N
SMALL_SCALING_FACTOR = 4  # --scaling-invocations N: N invocations with 1,000 spans, 4N with 100


def _names(values: Sequence[str] | None) -> list[str]:
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer invocations and cold starts (under 3 minutes)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON document to PATH")
    parser.add_argument("--configs", nargs="+", metavar="NAME",
                        help=f"configurations to run (default all): {', '.join(configs_module.BY_NAME)}; "
                             f"{BASELINE} is always added, as the baseline")
    parser.add_argument("--scenarios", nargs="+", metavar="NAME",
                        help=f"latency scenarios to run (default all): {', '.join(scenarios_module.BY_NAME)}")
    parser.add_argument("--output-dir", type=Path, metavar="DIR",
                        help="where results.md, the charts and results.json go")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG charts")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="also afterglow built from another checkout (an older commit unpacked with git archive, "
                             "say) as the configuration afterglow@NAME, beside afterglow in every phase: a change "
                             "measured side by side, with the same noise; repeatable")
    parser.add_argument("--only", choices=("peers",),
                        help="run only that part: `peers` writes peers.md, peers.png and peers.json, not results.md")
    peers = parser.add_argument_group("the field's tracers beside afterglow (run by default unless --configs is given)")
    peers.add_argument("--no-peers", action="store_true", help="skip the peers part")
    peers.add_argument("--peers", nargs="+", metavar="NAME",
                       help=f"peers to run (default all): {', '.join(_peer_names())}")
    peers.add_argument("--peer-invocations", type=int, metavar="N",
                       help="measured invocations per configuration with the receiver answering at once (a third "
                            "of N with it answering late)")
    cost = parser.add_argument_group("what the owner pays (steady load)")
    cost.add_argument("--no-cost", action="store_true", help="skip the cost measurement")
    cost.add_argument("--delays", nargs="+", metavar="MS",
                      help="collector delays, one steady-load phase each (default 0 50 200)")
    cost.add_argument("--rate", type=float, metavar="N", help="invocations per second per configuration (default 20)")
    cost.add_argument("--cost-invocations", type=int, metavar="N",
                      help=f"measured invocations per configuration at the first collector delay (the slower ones "
                           f"measure {SLOW_PHASE_SHARE * 100:.0f}%% of N)")
    cost.add_argument("--cost-warmup", type=int, metavar="N", help="warm-up invocations per configuration and phase")
    cost.add_argument("--scaling-invocations", type=int, metavar="N",
                      help=f"back-to-back invocations with 1,000 spans ({SMALL_SCALING_FACTOR}N with 100); 0: none")
    cost.add_argument("--flush-policies", nargs="+", metavar="POLICY",
                      help="AFTERGLOW_FLUSH values to measure, e.g. background,2000 (default: every form "
                           "AFTERGLOW_FLUSH's description in tracer/config.py names)")
    cost.add_argument("--cpu-limit", action="store_true",
                      help="give each environment Lambda's CPU share for 128 MB (the sandbox's CPU limit) in the cost "
                           "measurement, and report what exporting does to the handler's own latency")
    latency = parser.add_argument_group("what the caller waits (latency scenarios)")
    latency.add_argument("--no-latency", action="store_true", help="skip the latency scenarios and cold starts")
    latency.add_argument("--cold-starts", type=int, metavar="N", help="dedicated cold-start rounds per configuration")
    latency.add_argument("--warmup", type=int, metavar="N", help="warm-up invocations per sandbox")
    latency.add_argument("--batches", type=int, metavar="N", help="measured batches per scenario (light ones)")
    latency.add_argument("--batch-size", type=int, metavar="N", help="invocations per configuration per batch")
    return parser


def _peer_names() -> list[str]:
    from benchmarks.peers import PEERS_BY_NAME

    return list(PEERS_BY_NAME)


def _peers_wanted(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Any]:
    """The peers this run measures ([] for none)."""
    from benchmarks.peers import PEER_LIST, PEERS_BY_NAME

    if args.only != "peers" and (args.no_peers or (args.configs and not args.peers)):
        return []
    names = _names(args.peers) or list(PEERS_BY_NAME)
    unknown = [name for name in names if name not in PEERS_BY_NAME]
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(unknown)}; choose from {', '.join(PEERS_BY_NAME)}")
    return [peer for peer in PEER_LIST if peer.config.name in names]


def _peers_plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    from benchmarks.peers import FULL_PEERS, QUICK_PEERS

    plan = QUICK_PEERS if args.quick else FULL_PEERS
    if args.peer_invocations is not None:
        if args.peer_invocations < 1:
            parser.error("--peer-invocations must be at least 1")
        plan = replace(plan, near=args.peer_invocations, far=max(1, args.peer_invocations // 3))
    if args.cost_warmup is not None:
        plan = replace(plan, warmup=args.cost_warmup)
    return plan


def _select(parser: argparse.ArgumentParser, args: argparse.Namespace
            ) -> tuple[list[Config], list[Scenario], dict[str, Path]]:
    """The configurations, the scenarios, and the other checkouts (``--tree``) some configurations are built from."""
    # Not split at commas: a policy has them (``background,2000``).
    policies = [policy.strip() for policy in args.flush_policies or () if policy.strip()]
    known = configs_module.all_configs(policies) if policies else configs_module.CONFIGS
    by_name = {config.name: config for config in known}
    wanted = _names(args.configs) or list(by_name)
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(unknown)}; choose from {', '.join(by_name)}")
    if BASELINE not in wanted:
        wanted.insert(0, BASELINE)
    chosen = [config for config in known if config.name in wanted]
    trees = _trees(parser, args)
    if trees and SUBJECT not in wanted:
        parser.error(f"--tree measures a checkout beside {SUBJECT}: choose it too")
    at = next((index for index, config in enumerate(chosen) if config.name == SUBJECT), 0) + 1
    chosen[at:at] = [replace(configs_module.BY_NAME[SUBJECT], name=f"{SUBJECT}@{name}",
                             summary=f"{SUBJECT} as built from {path}", layer=f"{SUBJECT}@{name}")
                     for name, path in trees.items()]
    wanted_scenarios = _names(args.scenarios) or list(scenarios_module.BY_NAME)
    unknown = [name for name in wanted_scenarios if name not in scenarios_module.BY_NAME]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(scenarios_module.BY_NAME)}")
    return chosen, [scenario for scenario in scenarios_module.SCENARIOS if scenario.name in wanted_scenarios], trees


def _trees(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Path]:
    """``--tree NAME=PATH``: the other checkouts, by name."""
    trees: dict[str, Path] = {}
    for value in args.tree:
        name, separator, path = value.partition("=")
        if not separator or not name or not path or not name.replace("-", "").replace("_", "").isalnum():
            parser.error(f"--tree takes NAME=PATH, a name of letters, digits, - and _: got {value!r}")
        if not (Path(path) / "afterglow" / "__main__.py").is_file():
            parser.error(f"--tree {value}: {path} is not a checkout of afterglow (no afterglow/__main__.py)")
        trees[name] = Path(path).resolve()
    return trees


def _plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    overrides = {key: getattr(args, key) for key in ("cold_starts", "warmup", "batches", "batch_size")
                 if getattr(args, key) is not None}
    for key, value in overrides.items():
        if value < (1 if key in ("batches", "batch_size") else 0):
            parser.error(f"--{key.replace('_', '-')} must be at least {1 if key in ('batches', 'batch_size') else 0}")
    return replace(plan, **overrides)


def _cost_plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> CostPlan:
    plan = QUICK_COST if args.quick else FULL_COST
    rate = plan.rate_per_s if args.rate is None else args.rate
    if rate < 0:
        parser.error("--rate must not be negative (0: back to back)")
    try:
        delays = [float(delay) for delay in _names(args.delays)] or [phase.collector_delay_ms for phase in plan.steady]
    except ValueError:
        parser.error(f"--delays takes numbers of milliseconds, got {args.delays}")
    if any(delay < 0 for delay in delays):
        parser.error("--delays must not be negative")
    templates = {phase.collector_delay_ms: phase for phase in plan.steady}
    steady: list[SteadyPhase] = []
    for index, delay in enumerate(delays):
        template = templates.get(delay) or (plan.steady[0] if index == 0 else plan.steady[-1])
        count = template.count
        if args.cost_invocations is not None:
            if args.cost_invocations < 1:
                parser.error("--cost-invocations must be at least 1")
            count = args.cost_invocations if index == 0 else max(1, round(args.cost_invocations * SLOW_PHASE_SHARE))
        max_seconds = template.max_seconds
        if index == 0 and rate:  # the first phase is where every configuration must reach its count
            max_seconds = max(max_seconds, 1.5 * count / rate + 5)
        steady.append(SteadyPhase(delay, count, max_seconds))
    scaling = plan.scaling
    if args.scaling_invocations is not None:
        if args.scaling_invocations < 0:
            parser.error("--scaling-invocations must not be negative")
        count = args.scaling_invocations
        scaling = () if count == 0 else tuple(
            ScalingPhase(phase.spans, count if phase.spans >= 1000 else SMALL_SCALING_FACTOR * count,
                         phase.max_seconds) for phase in plan.scaling)
    warmup = plan.warmup if args.cost_warmup is None else args.cost_warmup
    if warmup < 0:
        parser.error("--cost-warmup must not be negative")
    return replace(plan, rate_per_s=rate, steady=tuple(steady), scaling=scaling, warmup=warmup,
                   cpu_limit=args.cpu_limit)


_CUSTOM = ("cold_starts", "warmup", "batches", "batch_size", "delays", "rate", "cost_invocations", "cost_warmup",
           "scaling_invocations", "flush_policies")


def _overridden(args: argparse.Namespace) -> bool:
    return any(getattr(args, key) is not None for key in _CUSTOM) or args.no_cost or args.no_latency


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _output_dir(args: argparse.Namespace) -> Path:
    if args.output_dir is not None:
        return Path(args.output_dir)
    name = "-".join(part for part, wanted in (("quick", args.quick), ("cpu-limit", args.cpu_limit)) if wanted)
    return RESULTS / name if name else RESULTS


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    peers = _peers_wanted(parser, args)
    if args.only == "peers":
        return _peers_only(parser, args, peers)
    if args.no_cost and args.no_latency:
        parser.error("--no-cost and --no-latency leave nothing to run")
    configs, scenarios, trees = _select(parser, args)
    plan = _plan(parser, args)
    cost_plan = _cost_plan(parser, args)
    output_dir = _output_dir(args)
    latency_configs = [] if args.no_latency else [config for config in configs if LATENCY in config.phases]
    cost_configs = [] if args.no_cost else [config for config in configs if COST in config.phases]

    from benchmarks import machine as machine_module

    machine = machine_module.describe()
    _log(f"machine: {_machine_line(machine)}")
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    code = _code_version()  # before the layer is built from the working tree

    from benchmarks.layers import CACHE

    CACHE.mkdir(parents=True, exist_ok=True)
    cost_results = None
    results: Any = None
    moto_error: str | None = None
    with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE) as scratch:
        layers, versions, skipped = _prepare_layers([*cost_configs, *latency_configs], Path(scratch), trees)
        cost_configs = [config for config in cost_configs if config.name not in skipped]
        latency_configs = [config for config in latency_configs if config.name not in skipped]
        if cost_configs:
            from benchmarks.steady import run_cost

            _log(f"what the owner pays: {cost_plan.describe()}")
            cost_results = run_cost(cost_configs, layers, cost_plan, Path(scratch), _log)
        if latency_configs:
            results, moto_error = _run(latency_configs, scenarios, layers, plan)
        peers_results = _run_peers(peers, _peers_plan(parser, args), layers, versions, Path(scratch)) if peers \
            else None
    if results is not None:
        for name, why in skipped.items():
            results.skipped[name] = why

    from benchmarks import measures, owner_costs, report

    rows = measures.build_rows(results, latency_configs, scenarios) if results is not None else []
    cold_spans = ({name: (cold.spans_created, cold.spans_exported) for name, cold in results.cold.items()}
                  if results is not None else {})
    checks = measures.check_targets(rows, cold_spans) if rows else []
    command = "python -m benchmarks" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    mode = ("quick" if args.quick else "full") + (" with custom counts" if _overridden(args) else "")
    mode += ", CPU-limited cost measurement" if args.cpu_limit else ""
    meta: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "mode": mode,
        "elapsed_s": time.monotonic() - clock,
        "load_end": machine_module.load(),
        "command": command.strip(),
        "skipped": {**skipped, **({"aws-sdk": moto_error} if moto_error else {})},
        "versions": versions,
        "plan": plan.__dict__ if rows else None,
        "code": code,
        "machine": machine,
    }
    title = f"afterglow benchmarks ({meta['mode']} run, {meta['started']}): {_machine_line(machine)}"
    cost_section: dict[str, Any] | None = None
    if cost_results is not None:
        steady_rows = owner_costs.steady_rows(cost_results, cost_configs)
        scaling_rows = owner_costs.scaling_rows(cost_results, cost_configs)
        delays = [phase.collector_delay_ms for phase in cost_plan.steady]
        cost_checks = owner_costs.check_targets(steady_rows, scaling_rows, rows, delays)
        cost_section = {"plan": {**asdict(cost_plan), "memory": cost_plan.memory, "describe": cost_plan.describe()},
                        "steady": steady_rows, "scaling": scaling_rows, "checks": cost_checks,
                        "notices": cost_results.notices, "chart": None if args.no_chart else "owner_cost.png"}
    if rows and not args.no_chart:
        meta["latency_chart"] = "added_latency.png"
    ran = {config.name for config in [*cost_configs, *latency_configs]}
    runnable = [config for config in configs if config.name in ran]
    text = report.markdown(rows, checks, machine, runnable, meta, cost_section)
    output_dir.mkdir(parents=True, exist_ok=True)
    if peers_results is not None:
        text = text.rstrip("\n") + "\n\n" + _write_peers(peers_results, output_dir, title, args.no_chart, meta)
    (output_dir / "results.md").write_text(text)
    document = {
        "meta": meta,
        "owner_cost": None if cost_section is None else {
            **{key: value for key, value in cost_section.items() if key != "checks"},
            "targets": [asdict(check) for check in cost_section["checks"]]},
        "latency": {"rows": rows, "targets": [asdict(check) for check in checks]} if rows else None,
        "peers": None if peers_results is None else "peers.json",
    }
    report.write_json(document, output_dir / "results.json")
    if args.json is not None:
        report.write_json(document, args.json)
    if not args.no_chart:
        if cost_section is not None:
            from benchmarks import owner_report

            owner_report.chart(cost_section["steady"], cost_section["scaling"], output_dir / "owner_cost.png", title)
        if rows:
            report.chart(rows, latency_configs, [scenario.name for scenario in scenarios],
                         output_dir / "added_latency.png", title)
    print(text)
    _log(f"done in {meta['elapsed_s']:.0f} s; results in {output_dir}")
    return 0


def _run_peers(peers: Sequence[Any], plan: Any, layers: dict[str, Path], versions: dict[str, dict[str, str]],
               scratch: Path) -> Any:
    """The peers part, with afterglow's layer from this run (built here if the run had not built it)."""
    from benchmarks.peers import SUBJECT, run_peers

    if SUBJECT not in layers:
        built, built_versions, _ = _prepare_layers([configs_module.BY_NAME[SUBJECT]], scratch)
        layers = {**layers, **built}
        versions.update(built_versions)
    _log(f"the field's tracers: {', '.join(peer.config.name for peer in peers)}")
    return run_peers(peers, layers, plan, scratch, _log)


def _write_peers(results: Any, output_dir: Path, title: str, no_chart: bool, meta: dict[str, Any]) -> str:
    """peers.md, peers.json and peers.png in ``output_dir``; returns the section results.md carries."""
    from benchmarks import peers as peers_module
    from benchmarks import report

    chart = None if no_chart else "peers.png"
    if chart is not None:
        peers_module.chart(results, output_dir / chart, title)
    header = [f"# afterglow beside the field's tracers ({meta['mode']} run, {meta['started']})", "",
              f"Machine: {_machine_line(meta['machine'])}; load average {meta['machine']['load']} at the start, "
              f"{meta['load_end']} at the end; afterglow at {meta['code']}. Command: `{meta['command']}`.", ""]
    section = peers_module.markdown(results, chart)
    (output_dir / "peers.md").write_text("\n".join([*header, *section[2:]]) + "\n")
    report.write_json({"meta": meta, "peers": peers_module.document(results)}, output_dir / "peers.json")
    return "\n".join(section) + "\n\nAlso in [`peers.md`](peers.md) and `peers.json`.\n"


def _peers_only(parser: argparse.ArgumentParser, args: argparse.Namespace, peers: Sequence[Any]) -> int:
    """``--only peers``: the peers part alone, into peers.md, peers.png and peers.json."""
    from benchmarks import machine as machine_module
    from benchmarks.layers import CACHE

    machine = machine_module.describe()
    _log(f"machine: {_machine_line(machine)}")
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    code = _code_version()
    plan = _peers_plan(parser, args)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE) as scratch:
        results = _run_peers(peers, plan, {}, {}, Path(scratch))
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    meta: dict[str, Any] = {"started": started.strftime("%Y-%m-%d %H:%M UTC"),
                            "mode": ("quick" if args.quick else "full") + ", peers only",
                            "elapsed_s": time.monotonic() - clock, "load_end": machine_module.load(),
                            "command": command.strip(), "code": code, "machine": machine}
    output_dir = _output_dir(args)
    output_dir.mkdir(parents=True, exist_ok=True)
    title = f"afterglow beside the field's tracers ({meta['mode']} run, {meta['started']}): {_machine_line(machine)}"
    section = _write_peers(results, output_dir, title, args.no_chart, meta)
    print(section)
    _log(f"done in {meta['elapsed_s']:.0f} s; results in {output_dir / 'peers.md'}")
    return 0


def _code_version() -> str:
    """The commit the afterglow layer was built from, marked when the working tree had local changes."""
    import subprocess

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=RESULTS.parent.parent, capture_output=True, text=True,
                                check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "tracer", "extension", "instrumentation",
                "afterglow")
    return commit + (" with uncommitted changes in the layer's packages" if dirty else "")


def _machine_line(machine: dict[str, str]) -> str:
    from benchmarks.report import machine_line

    return machine_line(machine)


def _prepare_layers(configs: Sequence[Config], workdir: Path, trees: dict[str, Path] | None = None
                    ) -> tuple[dict[str, Path], dict[str, dict[str, str]], dict[str, str]]:
    """Build or fetch every layer the chosen configurations need (``trees``: afterglow's from other checkouts, by
    name); optional ones that fail are skipped."""
    from benchmarks import layers as layers_module

    builders: dict[str, Callable[[Path, Callable[[str], None]], Any]] = {
        "afterglow": layers_module.afterglow_layer, "otel-standard": layers_module.otel_standard_layer,
        "xray-sdk": layers_module.xray_layer, "noop-extension": layers_module.noop_extension_layer,
        "floor-extension": layers_module.floor_extension_layer}
    for tree, checkout in (trees or {}).items():
        builders[f"{SUBJECT}@{tree}"] = functools.partial(layers_module.afterglow_layer, checkout=checkout,
                                                          name=f"{SUBJECT}@{tree}")
    paths: dict[str, Path] = {}
    versions: dict[str, dict[str, str]] = {}
    failed: dict[str, str] = {}
    for name in dict.fromkeys(config.layer for config in configs if config.layer):  # each layer once
        try:
            layer = builders[name](workdir, _log)
        except layers_module.LayerError as error:
            failed[name] = str(error).splitlines()[0]
            _log(f"layer {name}: {error}")
            continue
        paths[name] = layer.linked(workdir)
        versions[name] = layer.versions
    skipped: dict[str, str] = {}
    for config in configs:
        if config.layer in failed:
            if not config.optional:
                raise SystemExit(f"cannot run {config.name}: {failed[config.layer]}")
            skipped[config.name] = f"its packages did not install: {failed[config.layer]}"
    return paths, versions, skipped


def _run(configs: Sequence[Config], scenarios: Sequence[Scenario], layers: dict[str, Path],
         plan: Plan) -> tuple[Any, str | None]:
    from benchmarks.runner import Harness
    from benchmarks.services import MotoServer

    moto: MotoServer | None = None
    moto_error: str | None = None
    aws = None
    if any(scenario.aws for scenario in scenarios):
        try:
            moto = MotoServer()
            aws = moto.create_resources()
            _log(f"moto server on {moto.endpoint}")
        except Exception as error:
            moto_error = f"moto server unavailable: {error}"
            _log(moto_error)
            scenarios = [scenario for scenario in scenarios if not scenario.aws]
    harness = Harness(configs, layers, aws, log=_log)
    try:
        if plan.cold_starts:
            harness.cold_starts(plan.cold_starts)
        for scenario in scenarios:
            _log(f"scenario {scenario.name}: {plan.warmup} warm-up + {plan.batches_for(scenario)} batches of "
                 f"{plan.batch_size} per configuration")
            harness.scenario(scenario, plan)
    finally:
        harness.close()
        if moto is not None:
            moto.stop()
    return harness.results, moto_error
