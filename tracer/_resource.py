"""The resource: who produced the spans (sent once per connection in HELLO, and used by the fallback).

Lambda's facts come from the context object of the first invocation (awslambdaric fills it from the
``AWS_LAMBDA_*`` variables), so nothing here reads the platform's environment directly except the region
when the invoked ARN is missing.
"""

from __future__ import annotations

import os

from tracer import __version__, config
from tracer._safe import warn_once


def parse_arn(arn: object) -> tuple[str, str, str] | None:
    """``(region, account, function ARN without qualifier)`` from a Lambda function ARN, or None."""
    if not isinstance(arn, str):
        return None
    parts = arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda" or parts[5] != "function":
        return None
    return parts[3], parts[4], ":".join(parts[:7])


def _text(context: object, name: str) -> str | None:
    value = getattr(context, name, None)
    return value if isinstance(value, str) and value else None


def lambda_resource(context: object, function_name: str | None = None) -> dict[str, object]:
    """Resource attributes for this execution environment, with ``OTEL_RESOURCE_ATTRIBUTES`` and
    ``OTEL_SERVICE_NAME`` applied on top (the SDK's precedence)."""
    name = _text(context, "function_name") or function_name or "unknown_service"
    attributes: dict[str, object] = {
        "service.name": name,
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "faas.name": name,
        "telemetry.sdk.name": "afterglow",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": __version__,
        "process.pid": os.getpid(),
    }
    arn = parse_arn(getattr(context, "invoked_function_arn", None))
    region = arn[0] if arn else config.raw("AWS_REGION")
    if region:
        attributes["cloud.region"] = region
    if arn:
        attributes["cloud.account.id"] = arn[1]
    version = _text(context, "function_version")
    if version:
        attributes["faas.version"] = version
    stream = _text(context, "log_stream_name")
    if stream:
        attributes["faas.instance"] = stream
    memory = getattr(context, "memory_limit_in_mb", None)
    try:
        if memory is not None and not isinstance(memory, bool):
            attributes["faas.max_memory"] = int(memory) * 1024 * 1024  # semantic conventions: bytes
    except (TypeError, ValueError):
        pass
    group = _text(context, "log_group_name")
    if group:
        attributes["aws.log.group.names"] = [group]
    attributes.update(parse_resource_attributes(config.raw("OTEL_RESOURCE_ATTRIBUTES")))
    service = config.raw("OTEL_SERVICE_NAME")
    if service:
        attributes["service.name"] = service
    return attributes


def parse_resource_attributes(text: str | None) -> dict[str, object]:
    """``key=value,key2=value2`` with percent-encoded values (the W3C Baggage form the spec uses).

    A malformed entry is skipped with one warning; the rest are kept.
    """
    if not text:
        return {}
    from urllib.parse import unquote

    parsed: dict[str, object] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        key, separator, value = entry.partition("=")
        key = key.strip()
        if not separator or not key:
            warn_once("resource_attributes", "afterglow: ignoring malformed OTEL_RESOURCE_ATTRIBUTES entry %r", entry)
            continue
        parsed[unquote(key)] = unquote(value.strip())
    return parsed
