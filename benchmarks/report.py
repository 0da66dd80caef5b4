"""The run's outputs: the Markdown report (what the owner pays first: ``benchmarks.owner_report``), the PNG chart
of the added latency, and the JSON document."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.configs import BASELINE, Config
from benchmarks.measures import TargetCheck

CHART_FLOOR_MS = 0.01  # a log axis cannot show zero or less: such bars are drawn at the floor and labelled
# afterglow's configurations in blues, the standard OpenTelemetry setup in orange/red, the rest apart
COLOURS = {"bare-extension": "#9e9e9e", "afterglow": "#1f77b4", "afterglow-wrapper": "#6baed6",
           "afterglow-slow-collector": "#08306b", "afterglow-flush-periodic-1000": "#17becf",
           "otel-standard": "#ff7f0e", "otel-standard-slow-collector": "#d62728", "xray-sdk": "#9467bd"}


def write_json(document: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")


def _cell(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(rows: Sequence[dict[str, Any]], checks: Sequence[TargetCheck], machine: dict[str, str],
             configs: Sequence[Config], meta: dict[str, Any], cost: dict[str, Any] | None = None) -> str:
    """The whole report: what the owner pays first (``cost``: the cost measurement's rows, targets, plan), then
    what the caller waits (the latency ``rows`` and their ``checks``)."""
    from benchmarks import owner_report

    lines = ["# afterglow benchmarks: what the function's owner pays, then what the caller waits", ""]
    lines.append(f"Machine: {machine_line(machine)}; load average {machine['load']} at the start, "
                 f"{meta['load_end']} at the end. Run: {meta['started']}, {meta['mode']} "
                 f"({meta['elapsed_s']:.0f} s), afterglow at {meta['code']}. Command: `{meta['command']}`.")
    lines.append("")
    if cost is not None:
        lines += owner_report.lead_section(cost["steady"], cost["scaling"], cost["checks"], cost.get("plan"),
                                           cost.get("notices", ()), cost.get("chart"))
        lines += owner_report.detail_sections(cost["steady"], cost["scaling"])
        lines.append("")
    if rows:
        lines += _latency_sections(rows, checks, meta)
    lines += ["", "## Configurations", ""]
    lines += [f"- `{config.name}`: {config.summary}." for config in configs]
    if rows:
        lines += _latency_method()
    if meta.get("skipped"):
        lines += ["", "Not run:"] + [f"- `{name}`: {why}" for name, why in meta["skipped"].items()]
    if meta.get("versions"):
        lines += ["", "## What ran", ""]
        for layer, versions in meta["versions"].items():
            if not versions:
                continue
            listed = ", ".join(f"{name} {version}" for name, version in versions.items())
            lines.append(f"- {layer}: {listed}")
    if rows:
        lines += _latency_problems(rows)
    return "\n".join(lines) + "\n"


def _latency_sections(rows: Sequence[dict[str, Any]], checks: Sequence[TargetCheck], meta: dict[str, Any]
                      ) -> list[str]:
    lines = ["## What the caller waits (latency, scenario by scenario)", "",
             "Every invocation runs in the local Lambda sandbox with awslambdaric; configurations take turns "
             "in small batches so noise hits all alike. *added* = p50/p99 caller-observed latency minus "
             f"`{BASELINE}`'s in the same scenario and run; *post-resp.* = REPORT's post-runtime extension time; "
             "*init* = median REPORT Init Duration over fresh environments; memory from /proc (VmRSS) at the end "
             "of each scenario.", ""]
    plan = meta.get("plan")
    if plan:
        lines += [f"Per configuration: {plan['cold_starts']} dedicated cold starts plus one per scenario; in each "
                  f"scenario {plan['warmup']} warm-up invocations, then {plan['batches']} batches of "
                  f"{plan['batch_size']} measured ones (fewer batches for the costly scenarios; *n* below).", ""]
    if meta.get("latency_chart"):
        lines += [f"![latency added to the caller]({meta['latency_chart']})", ""]
    lines += ["### Latency checks", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {check.target} | {check.measured} | **{check.verdict}** |" for check in checks]
    lines += ["", "### Results", ""]
    header = ("| config | scenario | n | p50 ms | added p50 | added p99 | post-resp. p50 | init ms (n) | "
              "function RSS MB | extension RSS MB | spans created | spans exported | errors |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        exported = _cell(row["spans_exported"])
        if row["duplicates"]:
            exported += f" (+{row['duplicates']} dup)"
        errors = _cell(row["errors"]) if not row["failure"] else f"did not run: {row['failure'][:80]}"
        lines.append(
            f"| {row['config']} | {row['scenario']} | {row['measured_invocations']} | {_cell(row['p50_ms'])} | "
            f"{_cell(row['added_p50_ms'])} | {_cell(row['added_p99_ms'])} | {_cell(row['post_response_p50_ms'])} | "
            f"{_cell(row['init_ms'], 0)} ({row['init_samples']}) | {_cell(row['rss_mb'], 1)} | "
            f"{_cell(row['extension_rss_mb'], 1)} | {_cell(row['spans_created'])} | {exported} | {errors} |"
        )
    lines += ["", "### Cold starts", "",
              "REPORT Init Duration (median of n fresh environments), the same minus bare's, the caller's wait for "
              "the first response of a fresh environment (init plus a first, empty invocation: work a tracer defers "
              "out of init shows here), and the post-runtime time of the invocation after it (10 spans and a log "
              "line: work an extension defers to its first flush shows here, billed).", "",
              "| config | init ms | added init ms | n | first response ms | first warm post-runtime p50 / max ms |",
              "|---|---|---|---|---|---|"]
    seen: set[str] = set()
    for row in rows:
        if row["config"] in seen:
            continue
        seen.add(row["config"])
        lines.append(f"| {row['config']} | {_cell(row['init_ms'], 1)} | {_cell(row['added_init_ms'], 1)} | "
                     f"{row['init_samples']} | {_cell(row['cold_first_latency_ms'], 1)} | "
                     f"{_cell(row['first_warm_post_runtime_p50_ms'])} / "
                     f"{_cell(row['first_warm_post_runtime_max_ms'])} |")
    return lines


def _latency_method() -> list[str]:
    return ["", "How latency is measured:", "",
         "- One function for all: the event picks the scenario, the handler does the same work under every "
         "configuration and reports the child spans and AWS calls it made.",
         "- *spans created* = the handler's child spans, plus one invocation span where the configuration makes "
         "one, plus one span per AWS call where it traces botocore (`afterglow-wrapper`, `xray-sdk`; the "
         "decorator alone and the aws-lambda instrumentation alone do not). *spans exported* = distinct span ids "
         "the collector received, counted after every sandbox of the scenario shut down.",
         "- Every invocation carries a fresh, sampled X-Ray trace header, as with active tracing on (the X-Ray "
         "SDK records nothing otherwise).",
         "- Collectors run in their own processes (the project's OTLP receiver; a UDP sink for X-Ray); the slow "
         "one answers every request 50 ms late. moto runs in server mode in its own process too.",
         "- `otel-standard` loads only the instrumentors its layer ships: the others visible from this project's "
         "environment go into OTEL_PYTHON_DISABLED_INSTRUMENTATIONS.",
         "- Layers reach the sandbox as links to one unpacked tree (no copy per environment); memory is VmRSS "
         "of the runtime and the extensions at the end of each scenario.",
    ]


def _latency_problems(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    lossy = [row for row in rows if row["spans_exported"] != row["spans_created"] or row["duplicates"]]
    if lossy:
        lines += ["", "## Spans not exported (latency scenarios)", "",
                  "Where the collector did not receive exactly what the handler made, with the extension's own "
                  "account of it (its last self-report line) where it gave one:", ""]
        for row in lossy:
            lines.append(f"- {row['config']} / {row['scenario']}: {row['spans_exported']:,} of "
                         f"{row['spans_created']:,} spans received, {row['duplicates']:,} duplicates"
                         + (f"; extension: `{row['extension_report']}`" if row.get("extension_report") else ""))
    problems = [row for row in rows if row["error_examples"]]
    if problems:
        lines += ["", "## Errors seen (latency scenarios)", ""]
        for row in problems:
            lines.append(f"- {row['config']} / {row['scenario']}: {row['error_examples'][0]}")
    return lines


def machine_line(machine: dict[str, str]) -> str:
    return (f"{machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
            f"Linux {machine['kernel']}")


def chart(rows: Sequence[dict[str, Any]], configs: Sequence[Config], scenarios: Sequence[str], path: Path,
          title: str) -> None:
    """Grouped bars: added p50 per configuration for each scenario (log scale), p99 as a tick above."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [config.name for config in configs if config.name != BASELINE]
    by_key = {(row["config"], row["scenario"]): row for row in rows}
    figure, axes = plt.subplots(figsize=(12, 5.5), dpi=110)
    width = 0.8 / max(len(shown), 1)
    colours = plt.get_cmap("tab10")
    for index, name in enumerate(shown):
        xs, p50s, p99s = [], [], []
        for position, scenario in enumerate(scenarios):
            row = by_key.get((name, scenario))
            if row is None or row["added_p50_ms"] is None:
                continue
            xs.append(position - 0.4 + width * (index + 0.5))
            p50s.append(row["added_p50_ms"])
            p99s.append(row["added_p99_ms"])
        if not xs:
            continue
        heights = [max(value, CHART_FLOOR_MS) for value in p50s]
        axes.bar(xs, heights, width=width * 0.92, color=COLOURS.get(name, colours(index % 10)), label=name)
        for x, value in zip(xs, p99s, strict=True):
            if value is not None and value > CHART_FLOOR_MS:
                axes.plot([x - width * 0.35, x + width * 0.35], [value, value], color="black", linewidth=1)
        for x, value in zip(xs, p50s, strict=True):
            if value <= CHART_FLOOR_MS:
                axes.text(x, CHART_FLOOR_MS * 1.15, "≤0", ha="center", va="bottom", fontsize=7)
    axes.set_yscale("log")
    top = max((row["added_p99_ms"] or 0) for row in rows) if rows else 1
    axes.set_ylim(CHART_FLOOR_MS, max(10 ** math.ceil(math.log10(max(top, 1.0) * 1.5)), 1.0))
    axes.set_xticks(range(len(scenarios)), scenarios)
    axes.set_ylabel(f"latency added to the caller vs {BASELINE} (ms, log)")
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", which="both", alpha=0.3)
    axes.legend(fontsize=8, ncol=2, loc="upper left")
    figure.text(0.99, 0.01, "bars: added p50; black ticks: added p99", ha="right", fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
