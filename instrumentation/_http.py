"""What the HTTP client instrumentors share: ``url.full`` without secrets, and trace-context injection."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from tracer import propagation

# Query parameters whose values are credentials (semantic conventions' list plus common token names).
SENSITIVE_QUERY_KEYS = frozenset(
    key.lower()
    for key in (
        "AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature", "X-Amz-Signature", "X-Amz-Credential",
        "X-Amz-Security-Token", "X-Goog-Credential", "token", "access_token", "id_token", "refresh_token",
        "api_key", "apikey", "api-key", "key", "password", "passwd", "secret", "client_secret", "auth",
    )
)  # fmt: skip
REDACTED = "REDACTED"
DEFAULT_PORTS = {"http": 80, "https": 443}


def redact_url(url: str) -> str:
    """The URL with user:password and sensitive query values replaced by ``REDACTED``."""
    if "@" not in url and "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}:{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = []
        for pair in query.split("&"):
            name, sep, _value = pair.partition("=")
            if sep and unquote(name).lower() in SENSITIVE_QUERY_KEYS:
                pair = f"{name}={REDACTED}"
            pairs.append(pair)
        query = "&".join(pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def full_url(scheme: str, host: str, port: int | None, target: str) -> str:
    """``url.full`` from a connection's address and a request target (a path, or absolute through a proxy)."""
    if target.startswith(("http://", "https://")):
        return redact_url(target)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    authority = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if not target.startswith("/"):
        target = "/" + target
    return redact_url(f"{scheme}://{authority}{quote(target, safe=_SAFE_TARGET)}")


_SAFE_TARGET = "/?&=%:@!$'()*+,;~-._"


_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def method_attributes(method: str) -> tuple[str, dict[str, Any]]:
    """(span name, attributes) for a request method; unknown methods are ``_OTHER`` (semantic conventions)."""
    upper = method.upper()
    if upper in _KNOWN_METHODS:
        return upper, {"http.request.method": upper}
    return "HTTP", {"http.request.method": "_OTHER", "http.request.method_original": method}


def has_traceparent(headers: Mapping[Any, Any]) -> bool:
    for name in headers:
        text = name.decode("latin-1") if isinstance(name, bytes) else name
        if isinstance(text, str) and text.lower() == "traceparent":
            return True
    return False


def inject(headers: MutableMapping[str, str]) -> None:
    """Write W3C ``traceparent``/``tracestate`` for the current span into ``headers`` (already a copy)."""
    propagation.inject(headers)
