"""requests: one CLIENT span per ``Session.send`` (redirect hops included; ``requests.get`` goes through it).

The span covers the layers below it (urllib3, http.client), which see the suppression key and stay out.
Trace context goes into a copy of the prepared request, so the caller's object is never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from tracer._safe import swallowed

from . import _http, _spans
from ._base import Instrumentor


class RequestsInstrumentor(Instrumentor):
    name = "requests"
    module = "requests.sessions"
    supported = ((2, 20), (3,))

    def _patch(self, module: ModuleType) -> None:
        self._tracer = _spans.tracer("requests")
        self._wrap(module.Session, "send", self._send)

    def _send(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _spans.http_suppressed():
            return wrapped(*args, **kwargs)
        request: Any = args[0] if args else kwargs.get("request")
        if not isinstance(getattr(request, "url", None), str) or not isinstance(getattr(request, "method", None), str):
            return wrapped(*args, **kwargs)  # not a PreparedRequest: requests raises its own error
        span = token = None
        try:
            name, attributes = _http.method_attributes(request.method)
            url = request.url
            attributes["url.full"] = _http.redact_url(url)
            host, port = _address(url)
            if host:
                attributes["server.address"] = host
            if port:
                attributes["server.port"] = port
            span, token = _spans.start_client(self._tracer, name, attributes)
            call_args, call_kwargs = args, kwargs
            if not _http.has_traceparent(request.headers):
                request = request.copy()
                _http.inject(request.headers)
                if args:
                    call_args = (request, *args[1:])
                else:
                    call_kwargs = {**kwargs, "request": request}
        except Exception as error:
            _spans.abandon(span, token)
            swallowed("requests instrumentation", error)
            return wrapped(*args, **kwargs)
        return _spans.call_http(span, token, wrapped, call_args, call_kwargs, _status, "requests response")


def _status(response: Any) -> object:
    return getattr(response, "status_code", None)


def _address(url: str) -> tuple[str | None, int | None]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname, port or _http.DEFAULT_PORTS.get(parts.scheme)
