"""Client of the Lambda Extensions API (``/2020-01-01``) and the Telemetry API subscription (``/2022-07-01``)."""

from __future__ import annotations

from tracer.export.diagnostics import log
from tracer.export.http11 import Client, HttpError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any


EXTENSION_NAME = "afterglow"  # must equal the launcher's file name, /opt/extensions/afterglow


def _json() -> Any:
    """``json``, loaded at its first use: it costs the extension's start 10 to 15 ms (``re``), and the registration,
    which the function's cold start waits for, does not need it."""
    import json

    return json


class LambdaApiError(RuntimeError):
    """The platform refused a call or could not be reached."""

    def __init__(self, what: str, status: int | None, detail: str) -> None:
        super().__init__(f"{what} failed" + (f" with HTTP {status}" if status else "") + f": {detail}")
        self.status = status


class ExtensionsApi:
    def __init__(self, address: str) -> None:
        self._client = Client(address)
        self.extension_id: str | None = None
        self.registered_for: tuple[str, ...] | None = None  # the events registered for, once registered
        self.registration: dict[str, Any] = {}  # the answer to the registration (function name, version, handler)

    def close(self) -> None:
        self._client.close()

    def _call(self, what: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              timeout: float | None = 10.0, expect: tuple[int, ...] = (200,),
              payload: bytes | None = None) -> tuple[int, dict[str, str], Any]:
        """``payload``: the body already encoded; ``json`` then loads only once the answer is in (``register``)."""
        all_headers = {"Content-Type": "application/json"}
        if self.extension_id:
            all_headers["Lambda-Extension-Identifier"] = self.extension_id
        all_headers.update(headers or {})
        if payload is None:
            payload = b"" if body is None else _json().dumps(body).encode()
        try:
            response = self._client.request(method, path, all_headers, payload, timeout=timeout)
        except (HttpError, OSError) as error:
            raise LambdaApiError(what, None, str(error) or type(error).__name__) from error
        try:
            decoded = _json().loads(response.body) if response.body else None
        except ValueError:
            decoded = None
        if response.status not in expect:
            detail = decoded.get("errorType", "") if isinstance(decoded, dict) else response.body[:200].decode(
                "utf-8", "replace")
            raise LambdaApiError(what, response.status, detail or "unexpected answer")
        return response.status, response.headers, decoded

    def register(self, events: tuple[str, ...] = ("INVOKE", "SHUTDOWN")) -> dict[str, Any]:
        """Lambda starts the function's runtime only once every extension has registered, so this is called as early
        as the process can (``extension.main``): the request's body is written out (the event names are fixed
        words), so sending it waits for nothing but a socket."""
        payload = ('{"events":[' + ",".join(f'"{event}"' for event in events) + "]}").encode()
        _, headers, body = self._call("register", "POST", "/2020-01-01/extension/register",
                                      headers={"Lambda-Extension-Name": EXTENSION_NAME}, payload=payload)
        identifier = headers.get("lambda-extension-identifier")
        if not identifier:
            raise LambdaApiError("register", 200, "no Lambda-Extension-Identifier in the answer")
        self.extension_id = identifier
        self.registered_for = tuple(events)
        self.registration = body if isinstance(body, dict) else {}
        return self.registration

    def next_event(self) -> dict[str, Any]:
        """Block until the next INVOKE or SHUTDOWN (a long poll without timeout)."""
        _, _, body = self._call("event/next", "GET", "/2020-01-01/extension/event/next", timeout=None)
        if not isinstance(body, dict) or not isinstance(body.get("eventType"), str):
            raise LambdaApiError("event/next", 200, "the event is not a JSON object with an eventType")
        return body

    def report_error(self, phase: str, error_type: str, message: str) -> None:
        """``phase`` is ``init`` or ``exit``. Best effort: the extension is exiting anyway."""
        try:
            self._call(f"{phase}/error", "POST", f"/2020-01-01/extension/{phase}/error",
                       {"errorMessage": message, "errorType": error_type},
                       headers={"Lambda-Extension-Function-Error-Type": error_type}, expect=(200, 202))
        except LambdaApiError as error:
            log.error("could not report the %s error to Lambda: %s", phase, error)

    def subscribe_telemetry(self, uri: str, types: tuple[str, ...], timeout_ms: int = 25) -> bool:
        """Subscribe ``uri`` to the Telemetry API; False when the platform does not offer it."""
        body = {
            "schemaVersion": "2022-12-13",
            "types": list(types),
            "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": timeout_ms},
            "destination": {"protocol": "HTTP", "URI": uri},
        }
        try:
            status, _, answer = self._call("telemetry subscribe", "PUT", "/2022-07-01/telemetry", body,
                                           expect=(200, 202))
        except LambdaApiError as error:
            log.info("Telemetry API unavailable (%s): falling back to bounded waits", error)
            return False
        if isinstance(answer, dict) and answer.get("errorType"):  # the emulator's 202 "NotSupported"
            log.info("Telemetry API unavailable (%s): falling back to bounded waits", answer.get("errorType"))
            return False
        return status in (200, 202)
