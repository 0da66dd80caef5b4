"""The one loopback listener: Runtime API, Extensions API, Telemetry/Logs API and the invoke endpoint.

This module only speaks HTTP (paths, headers, status codes, bodies); the state lives in
``Instance`` (the environment's APIs) and ``Platform`` (invokes). aiohttp's low-level server is used
without a router: a dict lookup per request keeps the per-invoke cost small.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

from sandbox.errors import ApiError
from sandbox.instance import GONE, Instance, Invoke
from sandbox.jobs import Job, new_trace_header
from sandbox.platform import Platform

MAX_REQUEST_BYTES = 64 * 1024 * 1024  # bodies are read whole; the APIs apply their own, smaller limits
MAX_EVENT_BYTES = 6 * 1024 * 1024
_JSON = "application/json"
_ACCEPTED = b'{"status":"OK"}'
_RUNTIME = "/2018-06-01/runtime/"
_INVOCATION = "/2018-06-01/runtime/invocation/"
_EXTENSION = "/2020-01-01/extension/"
_FUNCTIONS = "/2015-03-31/functions/"

Handler = Callable[[BaseRequest], Awaitable[web.StreamResponse]]


def _json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type=_JSON, headers=headers)


def _error(status: int, error_type: str, message: str) -> web.Response:
    return _json_response(status, ApiError(status, error_type, message).body())


def _invoke_error(status: int, error_type: str, message: str) -> web.Response:
    """An error of the Invoke API itself, in the shape AWS SDKs parse (X-Amzn-ErrorType, Type/message)."""
    body = {"Type": "User", "message": message, "errorType": error_type, "errorMessage": message}
    return _json_response(status, json.dumps(body).encode(),
                          {"X-Amzn-ErrorType": error_type, "X-Amzn-RequestId": str(uuid.uuid4())})


class Listener:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", _INVOCATION + "next"): self.runtime_next,
            ("POST", _RUNTIME + "init/error"): self.runtime_init_error,
            ("GET", _RUNTIME + "restore/next"): self.restore,
            ("POST", _RUNTIME + "restore/error"): self.restore,
            ("POST", _EXTENSION + "register"): self.extension_register,
            ("GET", _EXTENSION + "event/next"): self.extension_next,
            ("POST", _EXTENSION + "init/error"): self.extension_init_error,
            ("POST", _EXTENSION + "exit/error"): self.extension_exit_error,
            ("PUT", "/2022-07-01/telemetry"): self.telemetry_subscribe,
            ("PUT", "/2020-08-15/logs"): self.logs_subscribe,
        }
        self._known_paths = {path for _, path in self._routes}
        self._server: web.Server | None = None
        self._listener: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()

        def make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> BaseRequest:
            return BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=MAX_REQUEST_BYTES)

        # long polls: idle keep-alive connections stay open as long as the runtime's libcurl wants
        self._server = web.Server(self.dispatch, request_factory=make_request, access_log=None,
                                  keepalive_timeout=3600)
        self._listener = await loop.create_server(self._server, host, port, reuse_address=True)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._server is not None:
            await self._server.shutdown(0.5)
        if self._listener is not None:
            await self._listener.wait_closed()

    async def dispatch(self, request: BaseRequest) -> web.StreamResponse:
        method, path = request.method, request.path
        try:
            handler = self._routes.get((method, path))
            if handler is not None:
                return await handler(request)
            if path.startswith(_INVOCATION) and path.count("/") == 5:
                if method != "POST":
                    return _error(405, "MethodNotAllowed", f"{method} {path}: use POST")
                return await self.runtime_result(request)
            if path.startswith(_FUNCTIONS) and path.endswith("/invocations"):
                if method != "POST":
                    return _error(405, "MethodNotAllowed", f"{method} {path}: use POST")
                return await self.invoke(request)
            if path in self._known_paths:
                return _error(405, "MethodNotAllowed", f"{method} is not allowed on {path}")
            return _error(404, "NotFound", f"no such API: {method} {path}")
        except ApiError as error:
            return _json_response(error.status, error.body())

    def _instance(self) -> Instance:
        instance = self.platform.instance
        if instance is None:
            raise ApiError(403, "InvalidStateTransition", "no execution environment is running")
        return instance

    # --- Runtime API -----------------------------------------------------------------------------

    async def runtime_next(self, request: BaseRequest) -> web.StreamResponse:
        instance = self._instance()
        invoke = await instance.runtime_next()
        if invoke is GONE:
            return _error(500, "Runtime.ExitError", "the execution environment is shutting down")
        assert isinstance(invoke, Invoke)
        job = invoke.job
        headers = {
            "Lambda-Runtime-Aws-Request-Id": job.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invoke.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invoke.function_arn,
            "Lambda-Runtime-Trace-Id": job.trace_id,
        }
        if job.client_context:
            headers["Lambda-Runtime-Client-Context"] = job.client_context
        # exactly "application/json": awslambdaric decodes nothing else
        return web.Response(status=200, body=job.event, headers={**headers, "Content-Type": _JSON})

    async def runtime_result(self, request: BaseRequest) -> web.StreamResponse:
        request_id, action = request.path.split("/")[4:6]
        instance = self._instance()
        body = await request.read()
        if action == "response":
            mode = request.headers.get("Lambda-Runtime-Function-Response-Mode")
            if mode is not None and mode.lower() != "streaming":
                raise ApiError(400, "InvalidFunctionResponseMode", f"unknown response mode {mode!r}")
            content_type = request.headers.get("Content-Type") or "application/octet-stream"
            instance.runtime_response(request_id, body, content_type)
        elif action == "error":
            instance.runtime_error(request_id, body, request.headers.get("Lambda-Runtime-Function-Error-Type"))
        else:
            raise ApiError(404, "NotFound", f"no such API: POST {request.path}")
        return _json_response(202, _ACCEPTED)

    async def runtime_init_error(self, request: BaseRequest) -> web.StreamResponse:
        instance = self._instance()
        body = await request.read()
        instance.runtime_init_error(body, request.headers.get("Lambda-Runtime-Function-Error-Type"))
        return _json_response(202, _ACCEPTED)

    async def restore(self, request: BaseRequest) -> web.StreamResponse:
        raise ApiError(403, "InvalidStateTransition", "SnapStart is not enabled for this function")

    # --- Extensions API --------------------------------------------------------------------------

    async def extension_register(self, request: BaseRequest) -> web.StreamResponse:
        instance = self.platform.instance
        if instance is None or instance.stopping:
            raise ApiError(403, "Extension.RegistrationClosed", "no execution environment is initialising")
        body = await request.read()
        identifier, answer = instance.register(request.headers.get("Lambda-Extension-Name"), body,
                                               request.headers.get("Lambda-Extension-Accept-Feature"))
        return _json_response(200, json.dumps(answer).encode(), {"Lambda-Extension-Identifier": identifier})

    def _extension_instance(self) -> Instance:
        instance = self.platform.instance
        if instance is None:
            raise ApiError(403, "Extension.UnknownExtensionIdentifier", "no execution environment is running")
        return instance

    async def extension_next(self, request: BaseRequest) -> web.StreamResponse:
        instance = self._extension_instance()
        event = await instance.extension_next(request.headers.get("Lambda-Extension-Identifier"))
        if event is GONE:
            return _error(500, "Extension.Shutdown", "the execution environment is shutting down")
        return _json_response(200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})

    async def extension_init_error(self, request: BaseRequest) -> web.StreamResponse:
        return await self._extension_error(request, "init")

    async def extension_exit_error(self, request: BaseRequest) -> web.StreamResponse:
        return await self._extension_error(request, "exit")

    async def _extension_error(self, request: BaseRequest, kind: str) -> web.StreamResponse:
        instance = self._extension_instance()
        body = await request.read()
        instance.extension_error(request.headers.get("Lambda-Extension-Identifier"), kind,
                                 request.headers.get("Lambda-Extension-Function-Error-Type"), body)
        return _json_response(202, _ACCEPTED)

    # --- Telemetry and Logs API ------------------------------------------------------------------

    async def telemetry_subscribe(self, request: BaseRequest) -> web.StreamResponse:
        return await self._subscribe(request, legacy=False)

    async def logs_subscribe(self, request: BaseRequest) -> web.StreamResponse:
        return await self._subscribe(request, legacy=True)

    async def _subscribe(self, request: BaseRequest, legacy: bool) -> web.StreamResponse:
        instance = self._extension_instance()
        body = await request.read()
        instance.subscribe(request.headers.get("Lambda-Extension-Identifier"), body, legacy)
        return _json_response(200, b'"OK"')

    # --- invoke endpoint (RIE's, and the shape of Lambda's Invoke API) ---------------------------

    async def invoke(self, request: BaseRequest) -> web.StreamResponse:
        name = request.path[len(_FUNCTIONS) : -len("/invocations")].rstrip("/")
        config = self.platform.config
        if name not in ("function", config.function_name, config.function_arn):
            return _invoke_error(404, "ResourceNotFoundException", f"Function not found: {name}")
        body = await request.read()
        if len(body) > MAX_EVENT_BYTES:
            return _invoke_error(413, "RequestTooLargeException",
                          f"Request must be smaller than {MAX_EVENT_BYTES} bytes for the InvokeFunction operation")
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            return _invoke_error(400, "InvalidParameterValueException",
                                 f"unknown X-Amz-Invocation-Type {invocation_type!r}")
        client_context = request.headers.get("X-Amz-Client-Context")
        if client_context:
            try:
                client_context = base64.b64decode(client_context, validate=True).decode()
                json.loads(client_context)
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return _invoke_error(400, "InvalidRequestContentException",
                              "X-Amz-Client-Context must be base64-encoded JSON")
        if invocation_type == "DryRun":
            return web.Response(status=204)
        log_type = request.headers.get("X-Amz-Log-Type", "None")
        if log_type not in ("None", "Tail"):
            return _invoke_error(400, "InvalidParameterValueException", f"unknown X-Amz-Log-Type {log_type!r}")
        tail = log_type == "Tail" and invocation_type == "RequestResponse"
        job = Job(event=body or b"{}", trace_id=request.headers.get("X-Amzn-Trace-Id") or new_trace_header(),
                  client_context=client_context or None, tail=tail)
        self.platform.submit(job)
        if invocation_type == "Event":
            return web.Response(status=202, headers={"X-Amzn-RequestId": job.request_id})
        reply = await job.reply
        headers = {"X-Amzn-RequestId": job.request_id, "X-Amz-Executed-Version": config.version}
        if tail:  # no early return for a caller that tails the log: it waits for the extensions too
            await job.finished
            headers["X-Amz-Log-Result"] = job.log_tail()
        if reply.function_error:
            headers["X-Amz-Function-Error"] = reply.function_error
        return web.Response(status=200, body=reply.body, headers={**headers, "Content-Type": reply.content_type})
