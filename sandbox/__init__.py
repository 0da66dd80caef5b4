"""A local AWS Lambda execution environment: real runtime (awslambdaric), real extensions, the Runtime,
Extensions and Telemetry APIs, and Lambda's lifecycle, early return included.

``from sandbox import Sandbox``; imports nothing from the rest of afterglow, so it runs any function with
any vendor's extension. Names load lazily, so ``import sandbox`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.box import Sandbox
    from sandbox.records import Invocation, LogLine, Report, Shutdown

__all__ = ["Invocation", "LogLine", "Report", "Sandbox", "Shutdown"]

_HOMES = {"Sandbox": "sandbox.box", "Invocation": "sandbox.records", "LogLine": "sandbox.records",
          "Report": "sandbox.records", "Shutdown": "sandbox.records"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
