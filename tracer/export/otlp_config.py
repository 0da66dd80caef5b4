"""Where and how to export, from the standard ``OTEL_EXPORTER_OTLP_*`` variables (signal-specific ones first).

One ``OtlpSettings`` per signal: ``traces`` (``OTEL_EXPORTER_OTLP_TRACES_*``, ``/v1/traces``) and ``logs``
(``OTEL_EXPORTER_OTLP_LOGS_*``, ``/v1/logs``), each falling back to the shared ``OTEL_EXPORTER_OTLP_*``.
No endpoint configured means the embedded default: traces are printed as a waterfall instead of exported.
Header values are kept for the requests only; ``describe()`` shows header *names*, never values.

Transport security follows the OTLP exporter spec for both protocols: TLS unless the endpoint says ``http://``
or, for an endpoint without a scheme (``host:port``), ``OTEL_EXPORTER_OTLP_INSECURE`` is true; the endpoint is
resolved here to ``https://`` or ``http://`` so the transports read the scheme only. ``..._CERTIFICATE`` (CA
bundle), ``..._CLIENT_CERTIFICATE`` and ``..._CLIENT_KEY`` (mutual TLS) are file paths.

Everything is checked once, at the extension's start, without a DNS lookup or an import: a value that cannot
work (an endpoint that is not a URL, a certificate file that cannot be read) becomes a ``problem``; the
extension then exports nothing of that signal, says why in one line per value (``report_problems``) and counts
what it drops. Values that have a working default (protocol, compression, a header item) warn and fall back.
"""

from __future__ import annotations

import os
from collections import namedtuple

from tracer import config
from tracer.export.diagnostics import log

HTTP, GRPC = "http/protobuf", "grpc"
_PREFIX = "OTEL_EXPORTER_OTLP_"
_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
_warned: set[str] = set()


class OtlpSettings(namedtuple("OtlpSettings", "protocol endpoint headers compression timeout_s certificate client_key "
                                              "client_certificate problems",
                              defaults=(None, None, None, ()))):
    """``protocol`` http/protobuf or grpc; ``endpoint`` the full URL, always with its scheme (https: TLS; for grpc,
    scheme and authority only matter); ``headers`` ((name, value), ...); ``compression`` gzip or none;
    ``timeout_s`` per request; ``certificate`` / ``client_key`` / ``client_certificate`` PEM file paths or None;
    ``problems`` what makes these settings unusable (one line each), empty when they can work."""

    __slots__ = ()

    @property
    def tls(self) -> bool:
        return bool(self.endpoint.startswith("https://"))

    def describe(self) -> str:
        names = ", ".join(name for name, _ in self.headers) or "none"
        security = ("TLS" + (", own CA" if self.certificate else "") + (", client certificate"
                    if self.client_certificate else "")) if self.tls else "no TLS"
        return f"OTLP {self.protocol} to {self.where()} ({security}; headers: {names}; " \
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


def _first(*names: str) -> tuple[str, str] | tuple[None, None]:
    """The first of ``names`` that is set, as (name, value)."""
    for name in names:
        value = config.raw(name)
        if value is not None:
            return name, value
    return None, None


def _warn_once(message: str, *args: object) -> None:
    text = message % args
    if text not in _warned:
        _warned.add(text)
        log.warning("%s", text)


def parse_headers(text: str, name: str = _PREFIX + "HEADERS") -> tuple[tuple[str, str], ...]:
    """``k=v,k2=v2`` with URL-encoded parts, as the OpenTelemetry spec defines it; an item that does not parse is
    skipped with one warning that names its position (never its value: it may hold a secret)."""
    from urllib.parse import unquote

    headers = []
    for position, item in enumerate(text.split(","), 1):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = unquote(key).strip().lower()
        if sep and key and all(c.isalnum() or c in "-_." for c in key):
            headers.append((key, unquote(value).strip()))
        else:
            _warn_once("ignoring entry %d of %s: not key=value with a header name (letters, digits, - _ .)",
                       position, name)
    return tuple(headers)


def check_endpoint(endpoint: str) -> str | None:
    """Why ``endpoint`` is not a usable OTLP endpoint (None when it is): ``http(s)://host[:port][/path]``, or
    ``host:port`` (the form gRPC users write). Parsed by hand: ``urllib.parse`` costs the extension's start 10 ms."""
    scheme, sep, rest = endpoint.partition("://")
    if sep and scheme.lower() not in ("http", "https"):
        return f"the scheme is {scheme!r}, not http or https"
    authority = rest if sep else endpoint
    for end in "/?#":
        authority = authority.split(end, 1)[0]
    authority = authority.rsplit("@", 1)[-1]
    if authority.startswith("["):  # an IPv6 literal
        host, bracket, port = authority[1:].partition("]")
        port = port[1:] if port.startswith(":") else ("" if not port else "?")
        host_ok = bool(bracket) and bool(host) and all(c in "0123456789abcdefABCDEF:." for c in host)
    else:
        host, _, port = authority.partition(":")
        host_ok = bool(host) and all(c in _HOST_CHARACTERS for c in host)
    if not host_ok:
        return "it is not a URL (expected http://host:port or https://host:port, with an optional path)"
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return f"the port {port!r} is not a number from 1 to 65535"
    if not sep and not port:
        return "it is not a URL (expected http://host:port or https://host:port, with an optional path)"
    return None


def _check_file(name: str, path: str) -> str | None:
    if not os.path.isfile(path):
        return f"{name}={path!r}: no such file"
    if not os.access(path, os.R_OK):
        return f"{name}={path!r}: the file cannot be read"
    return None


def read_otlp_settings(signal: str = "traces") -> OtlpSettings | None:
    """The export settings of ``signal`` (``traces`` or ``logs``), or None when no endpoint is configured."""
    own = _PREFIX + signal.upper() + "_"  # e.g. OTEL_EXPORTER_OTLP_LOGS_
    problems: list[str] = []
    protocol_name, protocol = _first(own + "PROTOCOL", _PREFIX + "PROTOCOL")
    protocol = (protocol or HTTP).lower()
    if protocol not in (HTTP, GRPC):
        _warn_once("ignoring %s=%r: afterglow sends %s or %s; using %s", protocol_name, protocol, HTTP, GRPC, HTTP)
        protocol = HTTP
    endpoint_name, endpoint = _first(own + "ENDPOINT", _PREFIX + "ENDPOINT")
    if endpoint is None or endpoint_name is None:
        return None
    why = check_endpoint(endpoint)
    if why is not None:
        problems.append(f"{endpoint_name}={_without_credentials(endpoint)!r} cannot be used: {why}")
    elif "://" not in endpoint:
        insecure = config.read_bool(own + "INSECURE", False) if config.raw(own + "INSECURE") else \
            config.read_bool(_PREFIX + "INSECURE", False)
        endpoint = ("http://" if insecure else "https://") + endpoint
    if endpoint_name == _PREFIX + "ENDPOINT" and protocol == HTTP and why is None:
        endpoint = endpoint.rstrip("/") + "/v1/" + signal
    headers_name, headers_text = _first(own + "HEADERS", _PREFIX + "HEADERS")
    headers = parse_headers(headers_text or "", headers_name or _PREFIX + "HEADERS")
    compression_name, compression = _first(own + "COMPRESSION", _PREFIX + "COMPRESSION")
    compression = (compression or "none").lower()
    if compression not in ("gzip", "none"):
        _warn_once("ignoring %s=%r: not gzip or none; using none", compression_name, compression)
        compression = "none"
    timeout_name = own + "TIMEOUT" if config.raw(own + "TIMEOUT") else _PREFIX + "TIMEOUT"
    timeout_ms = config.read_int(timeout_name, 10000, minimum=1)
    files: dict[str, str | None] = {}
    for part in ("CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"):
        name, path = _first(own + part, _PREFIX + part)
        files[part] = path
        if name is not None and path is not None:
            unreadable = _check_file(name, path)
            if unreadable is not None:
                problems.append(unreadable)
    if bool(files["CLIENT_KEY"]) != bool(files["CLIENT_CERTIFICATE"]):
        problems.append(f"{own}CLIENT_KEY and {own}CLIENT_CERTIFICATE (or their {_PREFIX}* forms) go together: "
                        "mutual TLS needs both")
    return OtlpSettings(protocol, endpoint, headers, compression, timeout_ms / 1000, files["CERTIFICATE"],
                        files["CLIENT_KEY"], files["CLIENT_CERTIFICATE"], tuple(problems))


def report_problems(by_signal: dict[str, OtlpSettings | None]) -> None:
    """One error line per unusable value, naming the signals it stops (a shared variable stops both)."""
    stopped: dict[str, list[str]] = {}
    for signal, settings in by_signal.items():
        for problem in settings.problems if settings is not None else ():
            stopped.setdefault(problem, []).append(signal)
    for problem, signals in stopped.items():
        log.error("%s; not exporting %s: they are dropped and counted", problem, " or ".join(signals))
