"""From the cost measurement's raw results to rows, and the owner's targets judged against them.

Every figure that compares configurations is taken within one phase, where all ran at the same time:
*added* = this configuration's figure minus ``bare``'s (the same function, untraced) in the same phase;
ratios are to ``otel-standard`` in the same phase.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.configs import BASELINE, FLOOR, REFERENCE, SHUTDOWN_FLOOR, Config
from benchmarks.measures import TargetCheck, percentile
from benchmarks.steady import CostResults, CostRun

TARGET_CPU_MS = 0.6
TARGET_CPU_RATIO = 7.0
TARGET_BILLED_MS = 1.0
TARGET_BILLED_INVOCATIONS = 1000
TARGET_US_PER_SPAN = 15.0
TARGET_FIRST_WARM_MS = 10.0
TARGET_FRESHNESS_S = 10.0
TARGET_LATENCY_SHIFT_MS = 1.0  # "independent of the collector": the slowest one adds less than this to the caller
TARGET_INIT_FRACTION = 0.25
TARGET_EXTENSION_RSS_MB = 40.0
SUBJECT = "afterglow"  # the targets are afterglow's (decorator); the other afterglow configurations are listed too

_DROPPED = re.compile(r"\bdropped=(\d+)")


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _minus(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def reported_drops(line: str | None) -> int | None:
    """Spans an extension says it dropped, from its self-report (the spans part, before `` | logs``)."""
    if not line:
        return None
    match = _DROPPED.search(line.split(" | ")[0])
    return int(match.group(1)) if match else None


def _series(run: CostRun) -> dict[str, list[float]]:
    """Per measured invocation: the environment's CPU, the runtime's, the extensions' (summed) and each one's."""
    measured = run.worker.get("measured") or []
    series: dict[str, list[float]] = {"env": [], "runtime": [], "extensions": []}
    for figures in measured:
        cpu: dict[str, float] = figures["cpu_ms"]
        series["env"].append(sum(cpu.values()))
        series["runtime"].append(cpu.get("runtime", 0.0))
        series["extensions"].append(sum(value for name, value in cpu.items() if name != "runtime"))
        for name, value in cpu.items():
            if name != "runtime":
                series.setdefault(f"extension:{name}", []).append(value)
    for key in ("billed_ms", "duration_ms", "latency_ms", "runtime_ms", "post_runtime_ms"):
        series[key] = [float(figures[key]) for figures in measured if figures.get(key) is not None]
    return series


def _delivery(run: CostRun) -> dict[str, Any]:
    """What reached the collector against what the function made, counted after the sandbox shut down."""
    collector = run.worker.get("collector")
    if run.collector_delay_ms is None or collector is None:
        return {"spans_created": run.spans_created, "spans_received": None, "duplicates": None, "lost": None,
                "reported_dropped": None, "silent_lost": None, "log_records": None, "freshness_p50_ms": None,
                "freshness_p99_ms": None, "freshness_max_ms": None, "freshness_before_max_ms": None,
                "freshness_before_n": None}
    received = collector["distinct"]
    lost = max(0, run.spans_created - received)
    reported = reported_drops(run.worker.get("extension_report"))
    freshness = collector.get("freshness_ms") or {}
    before = collector.get("freshness_before_ms") or {}  # cold start and warm-up: held across the harness's wait
    return {
        "spans_created": run.spans_created, "spans_received": received,
        "duplicates": collector["received"] - collector["distinct"], "lost": lost,
        "unexpected": max(0, received - run.spans_created), "reported_dropped": reported,
        "silent_lost": max(0, lost - (reported or 0)), "log_records": collector.get("log_records"),
        "freshness_p50_ms": _r(freshness.get("p50"), 1), "freshness_p99_ms": _r(freshness.get("p99"), 1),
        "freshness_max_ms": _r(freshness.get("max"), 1), "freshness_before_max_ms": _r(before.get("max"), 1),
        "freshness_before_n": before.get("n"),
    }


def _common(run: CostRun, series: dict[str, list[float]], base: dict[str, list[float]] | None) -> dict[str, Any]:
    measured = run.worker.get("measured") or []
    wall = run.worker.get("wall_s")
    base = base or {}
    has_extension = any(key.startswith("extension:") for key in series)
    row: dict[str, Any] = {
        "config": run.config,
        "n": len(measured),
        "errors": run.worker.get("errors", 0),
        "rate_per_s": _r(len(measured) / wall, 1) if wall else None,
        "busy_share": _r(sum(series["billed_ms"]) / 1000.0 / wall) if wall else None,
        "cpu_env_mean_ms": _r(_mean(series["env"])),
        "cpu_env_p99_ms": _r(percentile(series["env"], 0.99)),
        "cpu_runtime_mean_ms": _r(_mean(series["runtime"])),
        "cpu_runtime_p99_ms": _r(percentile(series["runtime"], 0.99)),
        # None, not 0, for a configuration without an extension
        "cpu_extension_mean_ms": _r(_mean(series["extensions"])) if has_extension else None,
        "cpu_extension_p99_ms": _r(percentile(series["extensions"], 0.99)) if has_extension else None,
        "cpu_by_extension": {key.partition(":")[2]: {"mean_ms": _r(_mean(values)),
                                                     "p99_ms": _r(percentile(values, 0.99))}
                             for key, values in series.items() if key.startswith("extension:")},
        "added_cpu_env_mean_ms": _r(_minus(_mean(series["env"]), _mean(base.get("env", [])))),
        "added_cpu_env_p99_ms": _r(_minus(percentile(series["env"], 0.99), percentile(base.get("env", []), 0.99))),
        "added_cpu_runtime_mean_ms": _r(_minus(_mean(series["runtime"]), _mean(base.get("runtime", [])))),
        "billed_mean_ms": _r(_mean(series["billed_ms"])),
        "billed_p99_ms": _r(percentile(series["billed_ms"], 0.99)),
        "added_billed_mean_ms": _r(_minus(_mean(series["billed_ms"]), _mean(base.get("billed_ms", [])))),
        "added_billed_p99_ms": _r(_minus(percentile(series["billed_ms"], 0.99),
                                         percentile(base.get("billed_ms", []), 0.99))),
        "duration_mean_ms": _r(_mean(series["duration_ms"])),
        "post_runtime_mean_ms": _r(_mean(series["post_runtime_ms"])),
        "post_runtime_p99_ms": _r(percentile(series["post_runtime_ms"], 0.99)),
        "latency_p50_ms": _r(percentile(series["latency_ms"], 0.5)),
        "latency_p99_ms": _r(percentile(series["latency_ms"], 0.99)),
        "added_latency_p50_ms": _r(_minus(percentile(series["latency_ms"], 0.5),
                                          percentile(base.get("latency_ms", []), 0.5))),
        "added_latency_p99_ms": _r(_minus(percentile(series["latency_ms"], 0.99),
                                          percentile(base.get("latency_ms", []), 0.99))),
        "runtime_p50_ms": _r(percentile(series["runtime_ms"], 0.5)),
        "added_runtime_p50_ms": _r(_minus(percentile(series["runtime_ms"], 0.5),
                                          percentile(base.get("runtime_ms", []), 0.5))),
    }
    rss = measured[-1].get("rss_mb", {}) if measured else {}
    row["runtime_rss_mb"] = rss.get("runtime")
    row["extension_rss_mb"] = max((value for name, value in rss.items() if name != "runtime"), default=None)
    row.update(_delivery(run))
    row["failure"] = run.failure
    row["error_examples"] = run.worker.get("error_examples", [])
    row["extension_report"] = run.worker.get("extension_report")
    return row


def steady_rows(results: CostResults, configs: Sequence[Config]) -> list[dict[str, Any]]:
    """One row per configuration and collector delay (the baselines once per delay: they ran in every phase)."""
    rows: list[dict[str, Any]] = []
    plan = results.plan
    delays = [phase.collector_delay_ms for phase in plan.steady] if plan else []
    for delay in delays:
        phase_runs = [run for run in results.runs if run.kind == "steady" and run.phase_delay_ms == delay]
        bases: dict[str, dict[str, list[float]] | None] = {}
        phase_rows: list[dict[str, Any]] = []
        for config in configs:
            run = next((run for run in phase_runs if run.config == config.name), None)
            if run is None:
                continue
            if run.failure is not None:
                phase_rows.append({"config": config.name, "collector_delay_ms": delay, "exports": config.exports,
                                   "failure": run.failure, "n": 0})
                continue
            if config.baseline not in bases:  # untraced on the same runtime: bare, or bare-python3.12 for a peer
                base_run = next((run for run in phase_runs if run.config == config.baseline and run.failure is None),
                                None)
                bases[config.baseline] = _series(base_run) if base_run else None
            base = bases[config.baseline]
            row = {"collector_delay_ms": delay, "exports": config.exports, **_common(run, _series(run), base)}
            first = run.worker.get("first_warm") or {}
            row["first_warm_post_runtime_ms"] = first.get("post_runtime_ms")
            row["first_warm_billed_ms"] = first.get("billed_ms")
            row["first_warm_cpu_ms"] = _r(sum((first.get("cpu_ms") or {}).values())) if first.get("cpu_ms") else None
            row["init_ms"] = (run.worker.get("cold") or {}).get("init_ms")
            phase_rows.append(row)
        reference = next((row for row in phase_rows if row["config"] == REFERENCE and not row.get("failure")), None)
        for row in phase_rows:
            row["cpu_ratio_to_reference"] = _ratio(reference, row, "added_cpu_env_mean_ms")
            row["billed_ratio_to_reference"] = _ratio(reference, row, "added_billed_mean_ms")
        rows += phase_rows
    return rows


def _ratio(reference: dict[str, Any] | None, row: dict[str, Any], key: str) -> float | None:
    """How many times ``reference``'s figure is ``row``'s (None where either is missing or not positive)."""
    if reference is None or row is reference:
        return None
    theirs, ours = reference.get(key), row.get(key)
    if theirs is None or ours is None or ours <= 0 or theirs <= 0:
        return None
    return round(float(theirs) / float(ours), 1)


def scaling_rows(results: CostResults, configs: Sequence[Config]) -> list[dict[str, Any]]:
    """One row per configuration and spans per invocation, back to back: what each span costs, what was lost."""
    rows: list[dict[str, Any]] = []
    for phase in results.plan.scaling if results.plan else ():
        phase_runs = [run for run in results.runs if run.kind == "scaling" and run.spans == phase.spans]
        base_run = next((run for run in phase_runs if run.config == BASELINE and run.failure is None), None)
        base = _series(base_run) if base_run else None
        for config in configs:
            run = next((run for run in phase_runs if run.config == config.name), None)
            if run is None:
                continue
            if run.failure is not None:
                rows.append({"config": config.name, "spans": phase.spans, "failure": run.failure, "n": 0})
                continue
            row = {"spans": phase.spans, **_common(run, _series(run), base)}
            per_invocation = phase.spans * config.child_spans + config.invocation_span
            row["spans_per_invocation"] = per_invocation
            for key, source in (("us_per_span", "added_cpu_env_mean_ms"),
                                ("runtime_us_per_span", "added_cpu_runtime_mean_ms"),
                                ("extension_us_per_span", "cpu_extension_mean_ms")):
                value = row[source]
                if value is None and source == "cpu_extension_mean_ms":
                    value = 0.0  # no extension
                row[key] = _r(value * 1000.0 / per_invocation, 2) if value is not None and per_invocation else None
            rows.append(row)
    return rows


# --- targets -----------------------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str = " ms", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "met" if ok else "missed"


def _find(rows: Sequence[dict[str, Any]], config: str, **keys: Any) -> dict[str, Any] | None:
    for row in rows:
        if row["config"] == config and all(row.get(key) == value for key, value in keys.items()) \
                and not row.get("failure"):
            return row
    return None


def check_targets(steady: Sequence[dict[str, Any]], scaling: Sequence[dict[str, Any]],
                  latency_rows: Sequence[dict[str, Any]], delays: Sequence[float]) -> list[TargetCheck]:
    """The owner's targets for afterglow (10 child spans and one log line, steady load), judged from this run."""
    checks: list[TargetCheck] = []
    first = delays[0] if delays else 0.0
    ours, theirs, floor = (_find(steady, name, collector_delay_ms=first) for name in (SUBJECT, REFERENCE, FLOOR))
    added = ours["added_cpu_env_mean_ms"] if ours else None
    floor_text = (f"; the floor extension: +{_fmt(floor['added_cpu_env_mean_ms'])}"
                  if floor and floor["added_cpu_env_mean_ms"] is not None else "")
    never_woken = _find(steady, SHUTDOWN_FLOOR, collector_delay_ms=first)
    if never_woken and never_woken["added_cpu_env_mean_ms"] is not None:
        floor_text += f", registered for SHUTDOWN alone: +{_fmt(never_woken['added_cpu_env_mean_ms'])}"
    split = (f" (runtime +{_fmt(ours['added_cpu_runtime_mean_ms'])}, extension {_fmt(ours['cpu_extension_mean_ms'])})"
             if ours else "")
    checks.append(TargetCheck(
        f"environment CPU per invocation beyond untraced at most {TARGET_CPU_MS} ms (mean, collector {first:g} ms)",
        f"{_fmt(added)}{split}{floor_text}", _verdict(None if added is None else added <= TARGET_CPU_MS)))
    if ours and theirs and theirs["added_cpu_env_mean_ms"] is not None and added is not None:
        reference = theirs["added_cpu_env_mean_ms"]
        ratio = reference / added if added > 0 else None
        measured = (f"{ratio:.1f}x ({_fmt(added)} vs {_fmt(reference)})" if ratio is not None
                    else f"{_fmt(added)} vs {_fmt(reference)} (ours within noise of untraced)")
        checks.append(TargetCheck(f"environment CPU beyond untraced at least {TARGET_CPU_RATIO:g}x below "
                                  f"{REFERENCE}'s", measured, _verdict(ratio is None or ratio >= TARGET_CPU_RATIO)))
    else:
        checks.append(TargetCheck(f"environment CPU beyond untraced at least {TARGET_CPU_RATIO:g}x below "
                                  f"{REFERENCE}'s", "n/a", "n/a"))
    for delay in delays:
        row = _find(steady, SUBJECT, collector_delay_ms=delay)
        reference_row = _find(steady, REFERENCE, collector_delay_ms=delay)
        value = row["added_billed_mean_ms"] if row else None
        n = row["n"] if row else 0
        note = ("" if n >= TARGET_BILLED_INVOCATIONS
                else f" (over {n:,} invocations, fewer than {TARGET_BILLED_INVOCATIONS:,})")
        theirs_text = (f"; {REFERENCE}: +{_fmt(reference_row['added_billed_mean_ms'])}"
                       if reference_row and reference_row["added_billed_mean_ms"] is not None else "")
        p99 = f", p99 +{_fmt(row['added_billed_p99_ms'])}" if row else ""
        checks.append(TargetCheck(
            f"billed duration beyond untraced at most {TARGET_BILLED_MS:g} ms, mean, collector {delay:g} ms",
            f"+{_fmt(value)}{p99}{note}{theirs_text}", _verdict(None if value is None else value <= TARGET_BILLED_MS)))
    for spans in sorted({row["spans"] for row in scaling}):
        row = _find(scaling, SUBJECT, spans=spans)
        value = row["us_per_span"] if row else None
        split = (f" (runtime {_fmt(row['runtime_us_per_span'], ' us')}, extension "
                 f"{_fmt(row['extension_us_per_span'], ' us')})" if row else "")
        reference_row = _find(scaling, REFERENCE, spans=spans)
        theirs_text = (f"; {REFERENCE}: {_fmt(reference_row['us_per_span'], ' us')}"
                       if reference_row and reference_row.get("us_per_span") is not None else "")
        checks.append(TargetCheck(f"environment CPU per span at {spans:,} spans per invocation at most "
                                  f"{TARGET_US_PER_SPAN:g} us (runtime + extension, beyond untraced)",
                                  f"{_fmt(value, ' us')}{split}{theirs_text}",
                                  _verdict(None if value is None else value <= TARGET_US_PER_SPAN)))
    checks.append(_nothing_dropped(scaling))
    checks.append(_first_warm(steady, latency_rows, first))
    checks.append(_freshness(steady))
    checks.append(_duplicates(steady, scaling))
    checks.append(_silent_losses(steady, scaling))
    checks.append(_latency_independent(steady, delays))
    checks.append(_cold_start(latency_rows, steady, first))
    checks.append(_extension_rss(steady, scaling))
    return checks


def _afterglow_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if row["config"].startswith("afterglow")]


def _nothing_dropped(scaling: Sequence[dict[str, Any]]) -> TargetCheck:
    biggest = max((row["spans"] for row in scaling), default=None)
    target = "nothing dropped by any flush policy at 1,000 spans per invocation, back to back"
    rows = [row for row in _afterglow_rows(scaling) if row["spans"] == biggest and row["config"] != "afterglow-wrapper"]
    if not rows:
        return TargetCheck(target, "not measured", "n/a")
    parts, ok = [], True
    for row in rows:
        if row.get("failure"):
            parts.append(f"`{row['config']}` did not run")
            ok = False
            continue
        lost = row["lost"]
        ok = ok and lost == 0
        reported = f", {row['reported_dropped']:,} reported by the extension" if row["reported_dropped"] else ""
        parts.append(f"`{row['config']}` {lost:,} of {row['spans_created']:,} lost{reported}")
    note = "" if biggest == 1000 else f" (measured at {biggest:,} spans per invocation)"
    return TargetCheck(target, "; ".join(parts) + note, _verdict(ok))


def _first_warm(steady: Sequence[dict[str, Any]], latency_rows: Sequence[dict[str, Any]], first: float
                ) -> TargetCheck:
    """From the dedicated cold starts (one environment at a time) when they ran, else the cost phases' one each."""
    target = f"first warm invocation after a cold start: post-runtime time at most {TARGET_FIRST_WARM_MS:g} ms"
    phases = ", ".join(f"{row['collector_delay_ms']:g} ms: {_fmt(row['first_warm_post_runtime_ms'])}"
                       for row in steady if row["config"] == SUBJECT and not row.get("failure")
                       and row.get("first_warm_post_runtime_ms") is not None)
    dedicated = next((row for row in latency_rows if row["config"] == SUBJECT
                      and row.get("first_warm_post_runtime_p50_ms") is not None), None)
    at_first = next((row["first_warm_post_runtime_ms"] for row in steady if row["config"] == SUBJECT
                     and row.get("collector_delay_ms") == first and not row.get("failure")), None)
    if dedicated is not None:
        # judged on both: the dedicated cold starts' median and the one beside every other environment starting
        value = dedicated["first_warm_post_runtime_p50_ms"]
        measured = (f"{_fmt(value)} median over {dedicated['first_warm_samples']} dedicated cold starts (max "
                    f"{_fmt(dedicated['first_warm_post_runtime_max_ms'])}); in the cost phases, all environments "
                    f"starting at once, by collector delay: {phases or 'n/a'}")
        worst = max(value, at_first if at_first is not None else value)
        return TargetCheck(target + f" (the median and the collector-{first:g}-ms cost phase's)", measured,
                           _verdict(worst <= TARGET_FIRST_WARM_MS))
    if at_first is None:
        return TargetCheck(target, "n/a", "n/a")
    return TargetCheck(target, f"{_fmt(at_first)} with the collector at {first:g} ms (one cold start per cost phase, "
                               f"all environments starting at once; by collector delay: {phases})",
                       _verdict(at_first <= TARGET_FIRST_WARM_MS))


def _freshness(steady: Sequence[dict[str, Any]]) -> TargetCheck:
    rows = [row for row in _afterglow_rows(steady)
            if not row.get("failure") and row.get("freshness_p99_ms") is not None]
    target = (f"freshness (span end to arrival at the collector) p99 at most {TARGET_FRESHNESS_S:g} s, spans made at "
              "steady load (the measured invocations)")
    if not rows:
        return TargetCheck(target, "n/a", "n/a")
    worst = max(rows, key=lambda row: row["freshness_p99_ms"])
    subject = [row for row in rows if row["config"] == SUBJECT]
    listed = ", ".join(f"{row['collector_delay_ms']:g} ms: p50 {row['freshness_p50_ms'] / 1000:.3f} s / p99 "
                       f"{row['freshness_p99_ms'] / 1000:.3f} s" for row in subject)
    held = [row for row in subject if row.get("freshness_before_max_ms") is not None]
    apart = "" if not held else (
        "; apart: the cold start's and warm-up's spans, held while the frozen environment waited for the phase's "
        "other configurations to warm up, arrived at most " + ", ".join(
            f"{row['freshness_before_max_ms'] / 1000:.3f} s ({row['collector_delay_ms']:g} ms)" for row in held)
        + " after their end")
    return TargetCheck(target, f"`{SUBJECT}` by collector delay {listed}; worst of every afterglow configuration: "
                               f"`{worst['config']}` at {worst['collector_delay_ms']:g} ms, p99 "
                               f"{worst['freshness_p99_ms'] / 1000:.3f} s{apart}",
                       _verdict(worst["freshness_p99_ms"] <= TARGET_FRESHNESS_S * 1000))


def _duplicates(steady: Sequence[dict[str, Any]], scaling: Sequence[dict[str, Any]]) -> TargetCheck:
    rows = [row for row in _afterglow_rows([*steady, *scaling]) if row.get("duplicates") is not None]
    total = sum(row["duplicates"] for row in rows)
    spans = sum(row["spans_received"] or 0 for row in rows)
    where = "; ".join(f"`{row['config']}` {_where(row)}: {row['duplicates']:,}" for row in rows if row["duplicates"])
    return TargetCheck("zero duplicates (every afterglow configuration, every phase)",
                       f"{total:,} among {spans:,} spans received" + (f" ({where})" if where else ""),
                       _verdict(total == 0 if rows else None))


def _silent_losses(steady: Sequence[dict[str, Any]], scaling: Sequence[dict[str, Any]]) -> TargetCheck:
    rows = [row for row in _afterglow_rows([*steady, *scaling]) if row.get("lost") is not None]
    silent = sum(row["silent_lost"] for row in rows)
    lost = sum(row["lost"] for row in rows)
    created = sum(row["spans_created"] for row in rows)
    where = "; ".join(f"`{row['config']}` {_where(row)}: {row['silent_lost']:,} of {row['lost']:,} lost unreported"
                      for row in rows if row["silent_lost"])
    return TargetCheck("zero silent losses (every span lost is counted in the extension's self-report)",
                       f"{silent:,} silent of {lost:,} lost among {created:,} spans made"
                       + (f" ({where})" if where else ""),
                       _verdict(silent == 0 if rows else None))


def _where(row: dict[str, Any]) -> str:
    return f"{row['spans']:,} spans" if "spans" in row else f"collector {row['collector_delay_ms']:g} ms"


def _latency_independent(steady: Sequence[dict[str, Any]], delays: Sequence[float]) -> TargetCheck:
    target = (f"added caller latency independent of the collector (the slowest collector adds less than "
              f"{TARGET_LATENCY_SHIFT_MS:g} ms to the caller's p50 beyond untraced, against the fastest)")
    if len(delays) < 2:
        return TargetCheck(target, "only one collector delay measured", "n/a")
    fast, slow = (_find(steady, SUBJECT, collector_delay_ms=delay) for delay in (min(delays), max(delays)))
    if not fast or not slow or fast["added_latency_p50_ms"] is None or slow["added_latency_p50_ms"] is None:
        return TargetCheck(target, "n/a", "n/a")
    shift = slow["added_latency_p50_ms"] - fast["added_latency_p50_ms"]
    low, high = min(delays), max(delays)
    their_fast, their_slow = (_find(steady, REFERENCE, collector_delay_ms=delay) for delay in (low, high))
    theirs = ""
    if their_fast and their_slow and None not in (their_fast["added_latency_p50_ms"],
                                                  their_slow["added_latency_p50_ms"]):
        theirs = f"; {REFERENCE}: {_fmt(their_slow['added_latency_p50_ms'] - their_fast['added_latency_p50_ms'])}"
    return TargetCheck(target, f"`{SUBJECT}` moved by {_fmt(shift)} ({_fmt(fast['added_latency_p50_ms'])} at "
                               f"{low:g} ms, {_fmt(slow['added_latency_p50_ms'])} at {high:g} ms){theirs}",
                       _verdict(shift < TARGET_LATENCY_SHIFT_MS))


def _cold_start(latency_rows: Sequence[dict[str, Any]], steady: Sequence[dict[str, Any]], first: float) -> TargetCheck:
    """Added init (REPORT Init Duration beyond bare's): from the dedicated cold starts when they ran, else from the
    cost phases' one cold start per configuration."""
    target = f"cold start (added init) at most 1/{1 / TARGET_INIT_FRACTION:g} of {REFERENCE}'s"
    parts, ok = [], True
    by_config = {row["config"]: row for row in latency_rows if row.get("added_init_ms") is not None}
    source = "the dedicated cold starts"
    values: dict[str, float] = {name: row["added_init_ms"] for name, row in by_config.items()}
    if REFERENCE not in values:
        source = "one cold start per cost phase (median)"
        values = {}
        for name in {row["config"] for row in steady}:
            inits = [row["init_ms"] for row in steady if row["config"] == name and row.get("init_ms") is not None]
            base = [row["init_ms"] for row in steady if row["config"] == BASELINE and row.get("init_ms") is not None]
            if inits and base:
                values[name] = statistics.median(inits) - statistics.median(base)
    theirs = values.get(REFERENCE)
    if not theirs or theirs <= 0:
        return TargetCheck(target, "n/a", "n/a")
    for name in (SUBJECT, "afterglow-wrapper"):
        if name in values:
            fraction = values[name] / theirs
            ok = ok and fraction <= TARGET_INIT_FRACTION
            parts.append(f"`{name}` {_fmt(values[name], ' ms', 1)} vs {_fmt(theirs, ' ms', 1)} ({fraction:.2f})")
    if not parts:
        return TargetCheck(target, "n/a", "n/a")
    return TargetCheck(target, "; ".join(parts) + f", from {source}", _verdict(ok))


def _extension_rss(steady: Sequence[dict[str, Any]], scaling: Sequence[dict[str, Any]]) -> TargetCheck:
    rows = [row for row in [*steady, *scaling] if row["config"] == SUBJECT and row.get("extension_rss_mb") is not None]
    target = f"extension resident memory under {TARGET_EXTENSION_RSS_MB:g} MB (peak)"
    if not rows:
        return TargetCheck(target, "n/a", "n/a")
    worst = max(rows, key=lambda row: row["extension_rss_mb"])
    return TargetCheck(target, f"{worst['extension_rss_mb']:.1f} MB (`{SUBJECT}`, {_where(worst)}; the most of "
                               f"{len(rows)} phases)", _verdict(worst["extension_rss_mb"] < TARGET_EXTENSION_RSS_MB))
