"""``bare``: the work without any tracing (the OpenTelemetry API is not even imported)."""

from __future__ import annotations

from typing import Any

from work import do_work, no_span


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return do_work(event, no_span)
