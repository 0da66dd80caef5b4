"""``http.client``: one CLIENT span from ``HTTPConnection.request`` to ``getresponse``.

This is the layer under urllib.request, urllib3, requests and botocore; when one of those (or a contrib
instrumentation) already traces the request, it sets the HTTP suppression key and this layer stays out.
The low-level ``putrequest``/``putheader`` API is not traced.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from tracer._safe import swallowed

from . import _http, _spans
from ._base import Instrumentor

_SPAN_ATTRIBUTE = "_afterglow_span"


class HttpClientInstrumentor(Instrumentor):
    name = "http.client"
    module = "http.client"

    def _patch(self, module: ModuleType) -> None:
        self._tracer = _spans.tracer("http.client")
        connection = module.HTTPConnection
        self._wrap(connection, "request", self._request)
        self._wrap(connection, "getresponse", self._getresponse)

    def _request(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if _spans.http_suppressed():
            return wrapped(*args, **kwargs)
        parts = _request_parts(args, kwargs)
        if parts is None:  # a call http.client itself will reject
            return wrapped(*args, **kwargs)
        span = token = None
        try:
            _end_leftover(instance)
            method, target, headers = parts
            name, attributes = _http.method_attributes(method)
            attributes.update(_attributes(instance, target))
            span, token = _spans.start_client(self._tracer, name, attributes)
            call_args, call_kwargs = args, kwargs
            if headers is None:
                headers = {}
            if not _http.has_traceparent(headers):
                headers = dict(headers)  # the caller's dict stays as it was
                _http.inject(headers)
                call_args, call_kwargs = _with_headers(args, kwargs, headers)
        except Exception as error:
            _spans.abandon(span, token)
            swallowed("http.client request instrumentation", error)
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*call_args, **call_kwargs)
        except BaseException as error:
            _spans.detach(token)
            _spans.fail(span, error)
            raise
        _spans.detach(token)
        setattr(instance, _SPAN_ATTRIBUTE, span)
        return result

    def _getresponse(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        span = instance.__dict__.pop(_SPAN_ATTRIBUTE, None)
        if span is None:
            return wrapped(*args, **kwargs)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as error:
            _spans.fail(span, error)
            raise
        try:
            _spans.set_http_status(span, response.status)
            span.end()
        except Exception as error:
            swallowed("http.client response instrumentation", error)
        return response


def _request_parts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str, Mapping[Any, Any] | None] | None:
    # request(method, url, body=None, headers={}, *, encode_chunked=False)
    method = args[0] if args else kwargs.get("method")
    target = args[1] if len(args) > 1 else kwargs.get("url")
    headers = args[3] if len(args) > 3 else kwargs.get("headers")
    if not isinstance(method, str) or not isinstance(target, str):
        return None
    if headers is not None and not isinstance(headers, Mapping):
        return None
    return method, target, headers


def _with_headers(
    args: tuple[Any, ...], kwargs: dict[str, Any], headers: Mapping[Any, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if len(args) > 3:
        return (*args[:3], headers, *args[4:]), kwargs
    return args, {**kwargs, "headers": headers}


def _attributes(connection: http.client.HTTPConnection, target: str) -> dict[str, Any]:
    scheme = "https" if isinstance(connection, http.client.HTTPSConnection) else "http"
    # Through a CONNECT proxy the request goes to the tunnelled host, not the proxy.
    host = getattr(connection, "_tunnel_host", None) or connection.host
    port = (getattr(connection, "_tunnel_port", None) if getattr(connection, "_tunnel_host", None) else None) or (
        connection.port
    )
    return {
        "url.full": _http.full_url(scheme, host, port, target),
        "server.address": host,
        "server.port": port,
    }


def _end_leftover(connection: Any) -> None:
    """A request whose response was never read: its span ends now rather than never."""
    span = connection.__dict__.pop(_SPAN_ATTRIBUTE, None)
    if span is not None:
        span.end()
