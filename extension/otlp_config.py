"""Where and how to export, from the standard ``OTEL_EXPORTER_OTLP_*`` variables (signal-specific ones first).

One ``OtlpSettings`` per signal: ``traces`` (``OTEL_EXPORTER_OTLP_TRACES_*``, ``/v1/traces``) and ``logs``
(``OTEL_EXPORTER_OTLP_LOGS_*``, ``/v1/logs``), each falling back to the shared ``OTEL_EXPORTER_OTLP_*``.
No endpoint configured means the embedded default: traces are printed as a waterfall instead of exported.
Header values are kept for the requests only; ``describe()`` shows header *names*, never values.
"""

from __future__ import annotations

from collections import namedtuple

from extension.log import log
from tracer import config

HTTP, GRPC = "http/protobuf", "grpc"


class OtlpSettings(namedtuple("OtlpSettings", "protocol endpoint headers compression timeout_s")):
    """``protocol`` http/protobuf or grpc; ``endpoint`` the full traces URL (http) or the URL as given (grpc: its
    scheme decides TLS); ``headers`` ((name, value), ...); ``compression`` gzip or none; ``timeout_s`` per request."""

    __slots__ = ()

    def describe(self) -> str:
        names = ", ".join(name for name, _ in self.headers) or "none"
        return f"OTLP {self.protocol} to {self.where()} (headers: {names}; " \
               f"compression {self.compression}; timeout {self.timeout_s:g}s)"

    def where(self) -> str:
        """The endpoint, without credentials."""
        return _without_credentials(self.endpoint)

    def __repr__(self) -> str:  # keep header values out of any accidental log line
        return f"OtlpSettings({self.describe()})"


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = "***@" + host.rsplit("@", 1)[1]
    return (scheme + sep if sep else "") + host + slash + path


def _first(*names: str) -> str | None:
    for name in names:
        value = config.raw(name)
        if value is not None:
            return value
    return None


def parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v,k2=v2`` with URL-encoded parts, as the OpenTelemetry spec defines it; bad items are skipped."""
    from urllib.parse import unquote

    headers = []
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = unquote(name).strip().lower()
        if sep and name and all(c.isalnum() or c in "-_." for c in name):
            headers.append((name, unquote(value).strip()))
    return tuple(headers)


def read_otlp_settings(signal: str = "traces") -> OtlpSettings | None:
    """The export settings of ``signal`` (``traces`` or ``logs``), or None when no endpoint is configured."""
    own = "OTEL_EXPORTER_OTLP_" + signal.upper() + "_"  # e.g. OTEL_EXPORTER_OTLP_LOGS_
    protocol = (_first(own + "PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") or HTTP).lower()
    if protocol not in (HTTP, GRPC):
        log.warning("ignoring OTLP protocol %r: not one of %s, %s; using %s", protocol, HTTP, GRPC, HTTP)
        protocol = HTTP
    signal_endpoint = config.raw(own + "ENDPOINT")
    base_endpoint = config.raw("OTEL_EXPORTER_OTLP_ENDPOINT")
    if signal_endpoint:
        endpoint = signal_endpoint
    elif base_endpoint:
        endpoint = base_endpoint if protocol == GRPC else base_endpoint.rstrip("/") + "/v1/" + signal
    else:
        return None
    if protocol == HTTP and "://" not in endpoint:
        endpoint = "http://" + endpoint
    headers = parse_headers(_first(own + "HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") or "")
    compression = (_first(own + "COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION") or "none").lower()
    if compression not in ("gzip", "none"):
        log.warning("ignoring OTLP compression %r: not gzip or none; using none", compression)
        compression = "none"
    timeout_name = own + "TIMEOUT" if config.raw(own + "TIMEOUT") else "OTEL_EXPORTER_OTLP_TIMEOUT"
    timeout_ms = config.read_int(timeout_name, 10000, minimum=1)
    return OtlpSettings(protocol, endpoint, headers, compression, timeout_ms / 1000)
