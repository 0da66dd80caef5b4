"""What the owner pays, as the results lead with it: the Markdown sections and the chart (``owner_cost.png``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.configs import BASELINE, FLOOR, REFERENCE, SHUTDOWN_FLOOR
from benchmarks.measures import TargetCheck
from benchmarks.owner_costs import SUBJECT, TARGET_BILLED_MS, TARGET_CPU_MS, TARGET_US_PER_SPAN

COLOURS = {FLOOR: "#9e9e9e", "afterglow": "#1f77b4", "afterglow-wrapper": "#6baed6", REFERENCE: "#ff7f0e"}
POLICY_COLOURS = ("#17becf", "#08306b", "#2ca02c", "#8c564b")
CHART_FLOOR = 0.01  # log axes cannot show zero or less


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.2f}"


def _ratio_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def _by(rows: Sequence[dict[str, Any]], key: str) -> dict[tuple[str, Any], dict[str, Any]]:
    return {(row["config"], row.get(key)): row for row in rows}


def _names(rows: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(row["config"] for row in rows))


def lead_section(steady: Sequence[dict[str, Any]], scaling: Sequence[dict[str, Any]], checks: Sequence[TargetCheck],
                 plan: dict[str, Any] | None, notices: Sequence[str], chart_name: str | None) -> list[str]:
    """The table of what the owner pays, the distance to the floor, the chart and the targets."""
    delays = list(dict.fromkeys(row["collector_delay_ms"] for row in steady))
    first = delays[0] if delays else 0.0
    by_delay = _by(steady, "collector_delay_ms")
    base = by_delay.get((BASELINE, first), {})
    lines = ["## What the owner pays", ""]
    if plan:
        lines += [f"Steady load, every configuration at once (one process each, so noise hits all alike; at a steady "
                  "rate their invocations are spread evenly over the period, not all due at once): "
                  f"{plan['describe']}. Lambda bills the invoke phase until the runtime and every INVOKE extension "
                  "have called next, freezes every process between invocations, and below 1,769 MB gives the "
                  "environment a fraction of one vCPU, so the CPU of every process per invocation and the billed "
                  "time are the bill. *CPU* = user + system time of the runtime and each extension from the thaw "
                  "that began the invocation to the freeze that ended it (the sandbox's cgroups); *beyond untraced* "
                  f"= minus `{BASELINE}` (the same function, untraced, printing the same line) in the same phase; "
                  f"*{REFERENCE}'s CPU / this* (and billed) = {REFERENCE}'s figure beyond untraced divided by this "
                  f"one's (above 1: cheaper than {REFERENCE}). "
                  f"Untraced itself: environment CPU {_num(base.get('cpu_env_mean_ms'))} ms and billed "
                  f"{_num(base.get('billed_mean_ms'))} ms per invocation (mean, collector {first:g} ms phase).", ""]
    header = ["config", f"env. CPU/inv. beyond untraced, mean (p99), ms, collector {first:g} ms",
              "runtime / extension CPU, mean ms", f"{REFERENCE}'s CPU / this"]
    header += [f"billed beyond untraced, mean / p99 ms, collector {delay:g} ms" for delay in delays]
    header += [f"{REFERENCE}'s billed / this (" + " / ".join(f"{delay:g}" for delay in delays) + " ms)"]
    header += ["busy share (" + " / ".join(f"{delay:g}" for delay in delays) + " ms)",
               f"freshness p50 / p99 s ({first:g} ms)", "spans lost / duplicates (all phases)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in _names(steady):
        row = by_delay.get((name, first))
        if row is None or row.get("failure"):
            lines.append(f"| `{name}` | did not run: {(row or {}).get('failure', 'missing')[:80]} |" + " |" * (
                len(header) - 2))
            continue
        cells = [f"`{name}`", f"{_num(row['added_cpu_env_mean_ms'], sign=True)} "
                              f"({_num(row['added_cpu_env_p99_ms'], sign=True)})",
                 f"{_num(row['added_cpu_runtime_mean_ms'], sign=True)} / {_num(row['cpu_extension_mean_ms'])}",
                 _ratio_cell(row.get("cpu_ratio_to_reference"))]
        for delay in delays:
            other = by_delay.get((name, delay))
            cells.append("-" if other is None or other.get("failure") else
                         f"{_num(other['added_billed_mean_ms'], sign=True)} / "
                         f"{_num(other['added_billed_p99_ms'], 0, sign=True)} (n={other['n']:,})")
        cells.append(" / ".join(_ratio_cell((by_delay.get((name, delay)) or {}).get("billed_ratio_to_reference"))
                                for delay in delays))
        cells.append(" / ".join(_share((by_delay.get((name, delay)) or {}).get("busy_share")) for delay in delays))
        cells.append("-" if row.get("freshness_p50_ms") is None else
                     f"{_seconds(row['freshness_p50_ms'])} / {_seconds(row['freshness_p99_ms'])}")
        phases = [other for other in [*steady, *scaling] if other["config"] == name and other.get("lost") is not None]
        cells.append("-" if not phases else f"{sum(p['lost'] for p in phases):,} / "
                                            f"{sum(p['duplicates'] for p in phases):,}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_floor_lines(by_delay, first)]
    if plan and plan.get("cpu_limit"):
        lines += ["", *_cpu_limit_lines(by_delay, delays, plan)]
    if chart_name:
        lines += ["", f"![what the owner pays]({chart_name})"]
    if notices:
        lines += ["", "The sandbox said: " + "; ".join(notices) + "."]
    lines += ["", "## Targets", "",
              "For afterglow (the decorator, `afterglow`), 10 child spans and one log line per invocation at steady "
              "load unless stated; judged from this run's figures.", "",
              "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {check.target} | {check.measured} | **{check.verdict}** |" for check in checks]
    return lines


def _floor_lines(by_delay: dict[tuple[str, Any], dict[str, Any]], first: float) -> list[str]:
    """How far afterglow's extension is from each floor measured: one woken per invocation, and one never woken
    (registered for SHUTDOWN, as afterglow's default export is), both subscribed to the Telemetry API."""
    ours = by_delay.get((SUBJECT, first))
    if not ours or ours.get("failure"):
        return []
    theirs_ext, theirs_env = ours.get("cpu_extension_mean_ms"), ours.get("added_cpu_env_mean_ms")
    if theirs_ext is None or theirs_env is None:
        return []
    parts = []
    for name, what in ((FLOOR, "the floor extension (woken per invocation)"),
                       (SHUTDOWN_FLOOR, "the floor extension registered for SHUTDOWN alone (never woken, as "
                                        f"`{SUBJECT}`'s default export)")):
        floor = by_delay.get((name, first))
        if not floor or floor.get("failure"):
            continue
        floor_ext, floor_env = floor.get("cpu_extension_mean_ms"), floor.get("added_cpu_env_mean_ms")
        if floor_ext is None or floor_env is None or not floor_ext:
            continue
        parts.append(f"{what} {floor_ext:.2f} ms, ours {theirs_ext / floor_ext:.1f}x it (its environment beyond "
                     f"untraced {floor_env:+.2f} ms, ours {theirs_env - floor_env:+.2f} ms from it)")
    if not parts:
        return []
    return [f"Distance to the floor (collector {first:g} ms): `{SUBJECT}`'s extension uses {theirs_ext:.2f} ms of CPU "
            f"per invocation, the whole environment {theirs_env:+.2f} ms beyond untraced; " + "; ".join(parts) + "."]


def _cpu_limit_lines(by_delay: dict[tuple[str, Any], dict[str, Any]], delays: Sequence[float],
                     plan: dict[str, Any]) -> list[str]:
    """With Lambda's CPU share, exporting competes with the handler: its own latency, beyond untraced."""
    parts = []
    for name in (SUBJECT, "afterglow-wrapper", REFERENCE, FLOOR):
        figures = []
        for delay in delays:
            row = by_delay.get((name, delay))
            if row and not row.get("failure") and row.get("added_runtime_p50_ms") is not None:
                figures.append(f"{row['added_runtime_p50_ms']:+.2f} ms (caller {row['added_latency_p50_ms']:+.2f} ms) "
                               f"at {delay:g} ms")
        if figures:
            parts.append(f"`{name}` " + ", ".join(figures))
    if not parts:
        return []
    return [f"With the CPU limit ({plan['memory']} MB: Lambda's CPU share for that size), what exporting does to the "
            "handler's own latency (the runtime's part of the invoke phase, p50 beyond untraced): "
            + "; ".join(parts) + "."]


def detail_sections(steady: Sequence[dict[str, Any]], scaling: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["", "## Steady load, in detail", "",
             "Per collector delay (all configurations ran at once in each phase). *busy* = billed time / wall time "
             "(1.0 = the environment never idles: it could not keep up with the rate); *first warm* = the "
             "post-runtime time of the first invocation after the cold start; *freshness* = a span's arrival at the "
             "collector minus its end time, over the spans the measured invocations made (*held* = the longest for "
             "the cold start's and warm-up's spans, which wait in the frozen environment until every configuration "
             "of the phase has warmed up and the measured invocations begin); *lost* = spans the function made that "
             "never arrived, counted by span id "
             "after the sandbox shut down (SHUTDOWN's flush counts), with the extension's own count of what it "
             "dropped in brackets; *handler* = the runtime's part of the invoke phase (platform.runtimeDone: "
             "the handler and whatever the tracer does in the runtime before its next), the figure a CPU limit "
             "stretches when exporting competes with the handler.", ""]
    header = ["config", "collector ms", "n", "inv./s", "busy", "env. CPU mean / p99", "runtime CPU mean / p99",
              "extension CPU mean / p99", "billed mean / p99", "post-runtime mean / p99",
              "caller p50 / p99 (added p50)", "handler p50 (added)",
              "first warm post-runtime", "init", "RSS runtime / ext. MB", "spans made / received",
              "lost (reported) / dup.", "freshness p50 / p99 / max s (held)", "errors"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in steady:
        if row.get("failure"):
            lines.append(f"| `{row['config']}` | {row['collector_delay_ms']:g} | did not run: {row['failure'][:120]} |"
                         + " |" * (len(header) - 3))
            continue
        delivered = "-" if row.get("spans_received") is None else (
            f"{row['lost']:,} ({row['reported_dropped'] if row['reported_dropped'] is not None else '-'}) / "
            f"{row['duplicates']:,}")
        freshness = "-" if row.get("freshness_p50_ms") is None else (
            f"{_seconds(row['freshness_p50_ms'])} / {_seconds(row['freshness_p99_ms'])} / "
            f"{_seconds(row['freshness_max_ms'])}"
            + ("" if row.get("freshness_before_max_ms") is None else f" ({_seconds(row['freshness_before_max_ms'])})"))
        lines.append("| " + " | ".join([
            f"`{row['config']}`", f"{row['collector_delay_ms']:g}" + ("" if row["exports"] else " (no export)"),
            f"{row['n']:,}", _num(row["rate_per_s"], 1), _num(row["busy_share"]),
            f"{_num(row['cpu_env_mean_ms'])} / {_num(row['cpu_env_p99_ms'])}",
            f"{_num(row['cpu_runtime_mean_ms'])} / {_num(row['cpu_runtime_p99_ms'])}",
            f"{_num(row['cpu_extension_mean_ms'])} / {_num(row['cpu_extension_p99_ms'])}",
            f"{_num(row['billed_mean_ms'])} / {_num(row['billed_p99_ms'], 0)}",
            f"{_num(row['post_runtime_mean_ms'])} / {_num(row['post_runtime_p99_ms'])}",
            f"{_num(row['latency_p50_ms'])} / {_num(row['latency_p99_ms'])} "
            f"({_num(row['added_latency_p50_ms'], sign=True)})",
            f"{_num(row['runtime_p50_ms'])} ({_num(row['added_runtime_p50_ms'], sign=True)})",
            _num(row.get("first_warm_post_runtime_ms")), _num(row.get("init_ms"), 0),
            f"{_num(row['runtime_rss_mb'], 1)} / {_num(row['extension_rss_mb'], 1)}",
            f"{row['spans_created']:,} / " + ("-" if row.get("spans_received") is None
                                              else f"{row['spans_received']:,}"),
            delivered, freshness, f"{row['errors']:,}",
        ]) + " |")
    if scaling:
        lines += ["", "## Scaling: many spans per invocation, back to back", "",
                  "Invocations with 100 and 1,000 child spans (and the log line), each as soon as the previous "
                  "invoke phase ended, the collector answering at once. *per span* = environment CPU beyond untraced "
                  "divided by the spans each invocation made (the children and the invocation span); a configuration "
                  "that dropped spans spent nothing exporting them, so its figure flatters it (see *lost*).", ""]
        header = ["config", "spans/inv.", "n", "inv./s", "env. CPU mean / p99 ms", "beyond untraced, mean ms",
                  "per span: total / runtime / extension, us", "billed mean ms (beyond untraced)",
                  "spans made / received", "lost (reported) / dup."]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in scaling:
            if row.get("failure"):
                lines.append(f"| `{row['config']}` | {row['spans']:,} | did not run: {row['failure'][:120]} |"
                             + " |" * (len(header) - 3))
                continue
            delivered = "-" if row.get("spans_received") is None else (
                f"{row['lost']:,} ({row['reported_dropped'] if row['reported_dropped'] is not None else '-'}) / "
                f"{row['duplicates']:,}")
            lines.append("| " + " | ".join([
                f"`{row['config']}`", f"{row['spans']:,}", f"{row['n']:,}", _num(row["rate_per_s"], 1),
                f"{_num(row['cpu_env_mean_ms'])} / {_num(row['cpu_env_p99_ms'])}",
                _num(row["added_cpu_env_mean_ms"], sign=True),
                f"{_num(row.get('us_per_span'), 1)} / {_num(row.get('runtime_us_per_span'), 1)} / "
                f"{_num(row.get('extension_us_per_span'), 1)}",
                f"{_num(row['billed_mean_ms'])} ({_num(row['added_billed_mean_ms'], sign=True)})",
                f"{row['spans_created']:,} / " + ("-" if row.get("spans_received") is None
                                                  else f"{row['spans_received']:,}"),
                delivered,
            ]) + " |")
    reports = [row for row in [*steady, *scaling] if row.get("extension_report") and row.get("lost")]
    if reports:
        lines += ["", "Where spans were lost, the extension's own account (its last self-report line):", ""]
        for row in reports:
            where = f"{row['spans']:,} spans" if "spans" in row else f"collector {row['collector_delay_ms']:g} ms"
            lines.append(f"- `{row['config']}`, {where}: `{row['extension_report']}`")
    problems = [row for row in [*steady, *scaling] if row.get("error_examples")]
    if problems:
        lines += ["", "Errors seen in the cost measurement:", ""]
        for row in problems:
            lines.append(f"- `{row['config']}`: {row['error_examples'][0]}")
    return lines


def chart(steady: Sequence[dict[str, Any]], scaling: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Three panels: environment CPU beyond untraced (runtime + extension), billed beyond untraced per collector
    delay, CPU per span at scale; each with its target as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    delays = list(dict.fromkeys(row["collector_delay_ms"] for row in steady))
    first = delays[0] if delays else 0.0
    names = [name for name in _names(steady) if name != BASELINE]
    colours = _colours(names)
    by_delay = _by(steady, "collector_delay_ms")
    figure, (cpu_axes, billed_axes, span_axes) = plt.subplots(1, 3, figsize=(16, 5.8), dpi=110,
                                                              gridspec_kw={"width_ratios": [1.1, 1.3, 1.0]})
    # 1. CPU per invocation beyond untraced, runtime and extension stacked
    shown = [name for name in names if (row := by_delay.get((name, first))) and not row.get("failure")]
    runtime = [max(by_delay[(name, first)]["added_cpu_runtime_mean_ms"] or 0.0, 0.0) for name in shown]
    extension = [by_delay[(name, first)]["cpu_extension_mean_ms"] or 0.0 for name in shown]
    positions = range(len(shown))
    cpu_axes.barh(positions, runtime, color=[colours[name] for name in shown], alpha=0.55, label="runtime")
    cpu_axes.barh(positions, extension, left=runtime, color=[colours[name] for name in shown], label="extension",
                  hatch="//", edgecolor="white")
    for position, (low, high) in enumerate(zip(runtime, extension, strict=True)):
        cpu_axes.text(low + high, position, f" {low + high:.2f}", va="center", fontsize=8)
    cpu_axes.axvline(TARGET_CPU_MS, color="black", linestyle="--", linewidth=1)
    cpu_axes.text(TARGET_CPU_MS, len(shown) - 0.5, f" target {TARGET_CPU_MS:g}", fontsize=7, va="bottom")
    cpu_axes.set_yticks(list(positions), shown, fontsize=8)
    cpu_axes.invert_yaxis()
    cpu_axes.set_xlabel("ms of CPU per invocation beyond untraced (mean)")
    cpu_axes.set_title(f"environment CPU (runtime, then extension hatched), collector {first:g} ms", fontsize=9)
    cpu_axes.grid(axis="x", alpha=0.3)
    # 2. billed beyond untraced, per collector delay
    exporting = [name for name in names if name == FLOOR] + [
        name for name in names if any((row := by_delay.get((name, delay))) and row.get("exports") for delay in delays)]
    width = 0.8 / max(len(exporting), 1)
    for index, name in enumerate(exporting):
        xs, values = [], []
        for position, delay in enumerate(delays):
            row = by_delay.get((name, delay))
            if row and not row.get("failure") and row.get("added_billed_mean_ms") is not None:
                xs.append(position - 0.4 + width * (index + 0.5))
                values.append(row["added_billed_mean_ms"])
        billed_axes.bar(xs, [max(value, CHART_FLOOR) for value in values], width=width * 0.92,
                        color=colours[name], label=name)
        for x, value in zip(xs, values, strict=True):
            billed_axes.text(x, max(value, CHART_FLOOR) * 1.1, f"{value:.1f}" if value >= 0.95 else f"{value:.2f}",
                             ha="center", va="bottom", fontsize=6, rotation=90)
    billed_axes.set_yscale("log")
    top = max((row.get("added_billed_mean_ms") or 0.0 for row in steady), default=1.0)
    billed_axes.set_ylim(CHART_FLOOR, 10 ** math.ceil(math.log10(max(top, 1.0) * 3)))
    billed_axes.axhline(TARGET_BILLED_MS, color="black", linestyle="--", linewidth=1)
    billed_axes.set_xticks(range(len(delays)), [f"collector {delay:g} ms" for delay in delays])
    billed_axes.set_ylabel("billed ms per invocation beyond untraced (mean, log)")
    billed_axes.set_title(f"billed duration (dashed: target {TARGET_BILLED_MS:g} ms)", fontsize=9)
    billed_axes.grid(axis="y", which="both", alpha=0.3)
    billed_axes.legend(fontsize=7, loc="upper left")
    # 3. CPU per span at scale
    span_counts = sorted({row["spans"] for row in scaling})
    scaled = [name for name in _names(scaling) if name != BASELINE]
    width = 0.8 / max(len(scaled), 1)
    for index, name in enumerate(scaled):
        xs, values = [], []
        for position, spans in enumerate(span_counts):
            row = next((row for row in scaling if row["config"] == name and row["spans"] == spans), None)
            if row and not row.get("failure") and row.get("us_per_span") is not None:
                xs.append(position - 0.4 + width * (index + 0.5))
                values.append(row["us_per_span"])
        span_axes.bar(xs, [max(value, 0.0) for value in values], width=width * 0.92,
                      color=colours.get(name, "#333333"), label=name)
    span_axes.axhline(TARGET_US_PER_SPAN, color="black", linestyle="--", linewidth=1)
    span_axes.set_xticks(range(len(span_counts)), [f"{spans:,} spans/inv." for spans in span_counts])
    span_axes.set_ylabel("us of environment CPU per span beyond untraced")
    span_axes.set_title(f"CPU per span, back to back (dashed: target {TARGET_US_PER_SPAN:g} us)", fontsize=9)
    span_axes.grid(axis="y", alpha=0.3)
    if scaled:
        span_axes.legend(fontsize=7, loc="upper right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def _colours(names: Sequence[str]) -> dict[str, str]:
    colours: dict[str, str] = {}
    policies = iter(POLICY_COLOURS)
    for name in names:
        colours[name] = COLOURS.get(name) or next(policies, "#7f7f7f")
    return colours
