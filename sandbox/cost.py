"""The COST line printed after each REPORT, and the summary over many invocations.

``COST runtime 0.61 ms CPU 41 MB | afterglow 0.38 ms CPU 27 MB | billed 3 ms``: CPU time each process of the
environment used from thaw to freeze, its peak resident memory, and the billed duration. Below 1,769 MB a
Lambda environment has a fraction of one vCPU, so every process's CPU is the function owner's bill.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sandbox.records import Cost


def cost_line(cost: Cost) -> str:
    parts = [f"{process.name} {process.cpu_ms:.2f} ms CPU {process.peak_rss_mb:.0f} MB" for process in cost.processes]
    if cost.post_runtime_extensions_ms is not None and len(cost.processes) > 1:
        parts.append(f"post-runtime {cost.post_runtime_extensions_ms:.2f} ms")
    parts.append(f"billed {cost.billed_duration_ms} ms")
    return "COST " + " | ".join(parts)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _stats(values: Sequence[float]) -> str:
    return (f"mean {sum(values) / len(values):.2f} p50 {percentile(values, 0.5):.2f} "
            f"p99 {percentile(values, 0.99):.2f} ms")


def summary_lines(costs: Sequence[Cost]) -> list[str]:
    """Per process and for the billed duration: mean, p50 and p99 over ``costs`` (warm and cold alike)."""
    if not costs:
        return []
    lines = [f"COST SUMMARY over {len(costs)} invocation(s)"]
    names: list[str] = []
    for cost in costs:
        names.extend(process.name for process in cost.processes if process.name not in names)
    for name in names:
        values = [process.cpu_ms for cost in costs if (process := cost.process(name)) is not None]
        lines.append(f"  {name} CPU: {_stats(values)}")
    lines.append(f"  environment CPU: {_stats([cost.cpu_ms for cost in costs])}")
    lines.append(f"  billed: {_stats([float(cost.billed_duration_ms) for cost in costs])}")
    return lines
