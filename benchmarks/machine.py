"""What the results were measured on, printed and stored with them."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> dict[str, str]:
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or "?"),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "load": load(),
    }


def load() -> str:
    """The 1-minute load average: other work on the machine shifts every figure (ratios less so)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
