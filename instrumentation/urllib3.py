"""urllib3: one CLIENT span per ``HTTPConnectionPool.urlopen``, retries and same-host redirects included.

Every urllib3 request (``PoolManager``, ``request()``, requests, botocore) passes through a pool's
``urlopen``; its own recursive calls for retries see the suppression key and add nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from tracer._safe import swallowed

from . import _http, _spans
from ._base import Instrumentor


class Urllib3Instrumentor(Instrumentor):
    name = "urllib3"
    module = "urllib3.connectionpool"
    supported = ((1, 26), (3,))

    def _patch(self, module: ModuleType) -> None:
        self._tracer = _spans.tracer("urllib3")
        self._wrap(module.HTTPConnectionPool, "urlopen", self._urlopen)

    def _urlopen(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if _spans.http_suppressed():
            return wrapped(*args, **kwargs)
        # urlopen(method, url, body=None, headers=None, ...)
        method = args[0] if args else kwargs.get("method")
        target = args[1] if len(args) > 1 else kwargs.get("url")
        headers = args[3] if len(args) > 3 else kwargs.get("headers")
        if not isinstance(method, str) or not isinstance(target, str):
            return wrapped(*args, **kwargs)
        span = token = None
        try:
            name, attributes = _http.method_attributes(method)
            port = instance.port or _http.DEFAULT_PORTS.get(instance.scheme)
            attributes["url.full"] = _http.full_url(instance.scheme, instance.host, port, target)
            attributes["server.address"] = instance.host
            if port is not None:
                attributes["server.port"] = port
            span, token = _spans.start_client(self._tracer, name, attributes)
            if headers is None:
                headers = instance.headers  # what urlopen itself falls back to
            call_args, call_kwargs = args, kwargs
            if isinstance(headers, Mapping) and not _http.has_traceparent(headers):
                headers = dict(headers)  # never the caller's (or the pool's) dict in place
                _http.inject(headers)
                if len(args) > 3:
                    call_args = (*args[:3], headers, *args[4:])
                else:
                    call_kwargs = {**kwargs, "headers": headers}
        except Exception as error:
            _spans.abandon(span, token)
            swallowed("urllib3 instrumentation", error)
            return wrapped(*args, **kwargs)
        return _spans.call_http(span, token, wrapped, call_args, call_kwargs, _status, "urllib3 response")


def _status(response: Any) -> object:
    return getattr(response, "status", None)
