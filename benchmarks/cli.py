"""``python -m benchmarks``: every configuration times every scenario, side by side, in one run.

Writes ``results.md``, ``added_latency.png`` and ``results.json`` to the output directory
(``benchmarks/results/`` for a full run, ``benchmarks/results/quick/`` with ``--quick``), and the JSON rows
to ``--json PATH`` as well when given.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import configs as configs_module
from benchmarks import scenarios as scenarios_module
from benchmarks.configs import BASELINE, Config
from benchmarks.runner import FULL, QUICK, Plan
from benchmarks.scenarios import Scenario

RESULTS = Path(__file__).resolve().parent / "results"


def _names(values: Sequence[str] | None) -> list[str]:
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer invocations and cold starts (under 3 minutes)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON rows to PATH")
    parser.add_argument("--configs", nargs="+", metavar="NAME",
                        help=f"configurations to run (default all): {', '.join(configs_module.BY_NAME)}; "
                             f"{BASELINE} is always added, as the baseline")
    parser.add_argument("--scenarios", nargs="+", metavar="NAME",
                        help=f"scenarios to run (default all): {', '.join(scenarios_module.BY_NAME)}")
    parser.add_argument("--output-dir", type=Path, metavar="DIR",
                        help="where results.md, added_latency.png and results.json go")
    parser.add_argument("--cold-starts", type=int, metavar="N", help="dedicated cold-start rounds per configuration")
    parser.add_argument("--warmup", type=int, metavar="N", help="warm-up invocations per sandbox")
    parser.add_argument("--batches", type=int, metavar="N", help="measured batches per scenario (light ones)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="invocations per configuration per batch")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    return parser


def _select(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[Config], list[Scenario]]:
    wanted = _names(args.configs) or list(configs_module.BY_NAME)
    unknown = [name for name in wanted if name not in configs_module.BY_NAME]
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(unknown)}; choose from {', '.join(configs_module.BY_NAME)}")
    if BASELINE not in wanted:
        wanted.insert(0, BASELINE)
    chosen = [config for config in configs_module.CONFIGS if config.name in wanted]
    wanted_scenarios = _names(args.scenarios) or list(scenarios_module.BY_NAME)
    unknown = [name for name in wanted_scenarios if name not in scenarios_module.BY_NAME]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(scenarios_module.BY_NAME)}")
    return chosen, [scenario for scenario in scenarios_module.SCENARIOS if scenario.name in wanted_scenarios]


def _plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    overrides = {key: getattr(args, key) for key in ("cold_starts", "warmup", "batches", "batch_size")
                 if getattr(args, key) is not None}
    for key, value in overrides.items():
        if value < (1 if key in ("batches", "batch_size") else 0):
            parser.error(f"--{key.replace('_', '-')} must be at least {1 if key in ('batches', 'batch_size') else 0}")
    return replace(plan, **overrides)


def _overridden(args: argparse.Namespace) -> bool:
    return any(getattr(args, key) is not None for key in ("cold_starts", "warmup", "batches", "batch_size"))


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configs, scenarios = _select(parser, args)
    plan = _plan(parser, args)
    output_dir = args.output_dir or (RESULTS / "quick" if args.quick else RESULTS)

    from benchmarks import machine as machine_module

    machine = machine_module.describe()
    _log(f"machine: {_machine_line(machine)}")
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    code = _code_version()  # before the layer is built from the working tree

    from benchmarks.layers import CACHE

    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE) as scratch:
        layers, versions, skipped = _prepare_layers(configs, Path(scratch))
        runnable = [config for config in configs if config.name not in skipped]
        results, moto_error = _run(runnable, scenarios, layers, plan)
    for name, why in skipped.items():
        results.skipped[name] = why

    from benchmarks import measures, report

    rows = measures.build_rows(results, runnable, scenarios)
    cold_spans = {name: (cold.spans_created, cold.spans_exported) for name, cold in results.cold.items()}
    checks = measures.check_targets(rows, cold_spans)
    command = "python -m benchmarks" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    meta: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "mode": ("quick" if args.quick else "full") + (" with custom counts" if _overridden(args) else ""),
        "elapsed_s": time.monotonic() - clock,
        "load_end": machine_module.load(),
        "command": command.strip(),
        "skipped": {**skipped, **({"aws-sdk": moto_error} if moto_error else {})},
        "versions": versions,
        "plan": plan.__dict__,
        "code": code,
    }
    text = report.markdown(rows, checks, machine, runnable, meta)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.md").write_text(text)
    report.write_json(rows, output_dir / "results.json")
    if args.json is not None:
        report.write_json(rows, args.json)
    if not args.no_chart:
        title = f"afterglow benchmarks ({meta['mode']} run, {meta['started']}): {_machine_line(machine)}"
        report.chart(rows, runnable, [scenario.name for scenario in scenarios], output_dir / "added_latency.png",
                     title)
    print(text)
    _log(f"done in {meta['elapsed_s']:.0f} s; results in {output_dir}")
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


def _prepare_layers(configs: Sequence[Config], workdir: Path
                    ) -> tuple[dict[str, Path], dict[str, dict[str, str]], dict[str, str]]:
    """Build or fetch every layer the chosen configurations need; optional ones that fail are skipped."""
    from benchmarks import layers as layers_module

    builders = {"afterglow": layers_module.afterglow_layer, "otel-standard": layers_module.otel_standard_layer,
                "xray-sdk": layers_module.xray_layer, "noop-extension": layers_module.noop_extension_layer}
    paths: dict[str, Path] = {}
    versions: dict[str, dict[str, str]] = {}
    failed: dict[str, str] = {}
    for name in dict.fromkeys(config.layer for config in configs if config.layer):
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
